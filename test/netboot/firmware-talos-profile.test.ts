/**
 * Real firmware boots a Talos-form profile (`talos: {version, arch,
 * extraArgs}`) end to end: the daemon downloads the release files from a
 * stand-in mirror, verifies them against the release's checksum lists,
 * caches them, and serves them to SeaBIOS + QEMU's iPXE ROM with the Talos
 * 1.14 PXE command line.
 *
 * The mirror (test/helpers/static-mirror-fixture.ts) runs inside the lab's
 * daemon namespace on its 127.0.0.1 — the only loopback the daemon can
 * reach — with a Talos release layout, `v1.14.7/vmlinuz-amd64` and
 * `initramfs-amd64.xz`, holding the suite's Debian kernel and test initramfs
 * (names are just names: the initramfs is gzip), plus real `sha256sum.txt`
 * and `sha512sum.txt`. The oracle for the command line is DESIGN §4's 1.14
 * amd64 line, written out here, never taken from the code under test.
 *
 * TCG by default; TALOS_NETBOOT_KVM=1 switches KVM on. TALOS_NETBOOT_KEEP=1 keeps the logs.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { assertFreshBuild, CLI } from "../helpers/daemon-process.js";
import { LAB, NetbootLab, entriesSince, formatTimeline, labPrerequisites, matchSteps, type TimelineEntry, type Vm } from "../helpers/netboot-lab.js";
import { runIn } from "../helpers/netns.js";
import { repoRoot } from "../helpers/reference.js";
import { debianKernel, parseSerial, writeBootProfile, type BootProfileFiles } from "../helpers/test-initramfs.js";
import type { MirrorRequestLine } from "../helpers/static-mirror-fixture.js";

const ready = labPrerequisites();

const FIXTURE = join(repoRoot(), "dist", "test", "helpers", "static-mirror-fixture.js");
const TOKEN = randomBytes(16).toString("hex");
/** Upper bound for the machine from power-on to power-off (TCG), download of the release included. */
const BOOT_LIMIT_MS = 180_000;
const TEST_TIMEOUT_MS = 240_000;

const VERSION = "1.14.7";
const ARCH = "amd64";
const RELEASE_FILES = { kernel: `vmlinuz-${ARCH}`, initramfs: `initramfs-${ARCH}.xz` } as const;
/** The profile's PXE-only arguments: the console the test initramfs reports on, less kernel chatter, reboot (= power-off under -no-reboot) on panic. */
const EXTRA_ARGS = ["console=ttyS0", "quiet", "panic=5"];
/** DESIGN §4: the 1.14 amd64 PXE line (the 1.13 line without init_on_alloc=1 and nvme_core.io_timeout). */
const TALOS_114_AMD64 =
  "talos.platform=metal console=tty0 slab_nomerge pti=on consoleblank=0 printk.devkmsg=on selinux=1 module.sig_enforce=1 proc_mem.force_override=never";

const MAC = "52:54:00:77:07:01";
const dashed = (mac: string) => mac.replaceAll(":", "-");
const scriptUrl = `http://${LAB.server}:${LAB.httpPort}/boot/${dashed(MAC)}/boot.ipxe`;
const configUrlPrefix = `talos.config=http://${LAB.server}:${LAB.httpPort}/boot/${dashed(MAC)}/config/`;

const listEntry = z.object({
  source: z.enum(["release", "factory", "import"]),
  version: z.string(),
  arch: z.string(),
  schematic: z.string().nullable(),
  file: z.enum(["kernel", "initramfs"]),
  path: z.string(),
  sha256: z.string(),
  size: z.number(),
});

interface MirrorFile {
  name: string;
  bytes: Buffer;
  sha256: string;
  sha512: string;
}

interface Mirror {
  child: ChildProcess;
  port: number;
  requests: MirrorRequestLine[];
  stderr: () => string;
}

let lab: NetbootLab;
let files: BootProfileFiles;
let mirror: Mirror | undefined;
let mirrorFiles: Record<keyof typeof RELEASE_FILES, MirrorFile>;
let configPath: string;

/** A Talos release directory: the two boot files under Talos's names and `<hex>  <file>` checksum lists of both. */
function writeRelease(dir: string, f: BootProfileFiles): Record<keyof typeof RELEASE_FILES, MirrorFile> {
  const release = join(dir, `v${VERSION}`);
  mkdirSync(release, { recursive: true });
  const one = (src: string, name: string): MirrorFile => {
    copyFileSync(src, join(release, name));
    const bytes = readFileSync(join(release, name));
    return { name, bytes, sha256: createHash("sha256").update(bytes).digest("hex"), sha512: createHash("sha512").update(bytes).digest("hex") };
  };
  const out = { kernel: one(f.kernel, RELEASE_FILES.kernel), initramfs: one(f.initrd, RELEASE_FILES.initramfs) };
  const list = (algo: "sha256" | "sha512") => Object.values(out).map((m) => `${m[algo]}  ${m.name}\n`).join("");
  writeFileSync(join(release, "sha256sum.txt"), list("sha256"));
  writeFileSync(join(release, "sha512sum.txt"), list("sha512"));
  return out;
}

/** Starts the mirror in the lab's daemon namespace; resolves once it has bound a port there. */
async function startMirror(ns: string, root: string): Promise<Mirror> {
  const child = spawn("ip", ["netns", "exec", ns, process.execPath, FIXTURE, "--root", root, "--address", "127.0.0.1", "--port", "0"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  if (child.pid === undefined) throw new Error("could not start the mirror fixture");
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const requests: MirrorRequestLine[] = [];
  const lines = createInterface({ input: child.stdout! });
  const m: Mirror = { child, port: 0, requests, stderr: () => stderr };
  mirror = m;
  m.port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`mirror fixture not ready within 15 s:\n${stderr}`)), 15_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`mirror fixture exited with ${code}:\n${stderr}`));
    });
    lines.on("line", (line) => {
      const msg = JSON.parse(line) as { ready?: boolean; port?: number; request?: MirrorRequestLine };
      if (msg.request) requests.push(msg.request);
      else if (msg.ready && typeof msg.port === "number") {
        clearTimeout(timer);
        resolve(msg.port);
      }
    });
  });
  return m;
}

/** SIGTERM by PID, SIGKILL after 3 s; resolves when it is gone. */
async function stopMirror(): Promise<void> {
  const child = mirror?.child;
  if (!child?.pid || child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((resolve) => child.once("close", () => resolve()));
  process.kill(child.pid, "SIGTERM");
  const timer = setTimeout(() => {
    try {
      process.kill(child.pid!, "SIGKILL");
    } catch {
      // gone meanwhile
    }
  }, 3_000);
  await gone;
  clearTimeout(timer);
}

const killMirrorNow = () => {
  const child = mirror?.child;
  if (child?.pid && child.exitCode === null && child.signalCode === null) {
    try {
      process.kill(child.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
};

async function context(vm: Vm): Promise<string> {
  let timeline = "(timeline unavailable)";
  try {
    timeline = formatTimeline((await lab.machine(TOKEN, MAC)).timeline);
  } catch (err) {
    timeline = String(err);
  }
  const requests = mirror ? mirror.requests.map((r) => `  ${r.method} ${r.path} ${r.status} ${r.bytes}`).join("\n") : "(no mirror)";
  return `${vm.tail()}\n--- timeline of ${MAC} ---\n${timeline}\n--- mirror requests ---\n${requests}\n${lab.daemon?.tail(25) ?? ""}`;
}

describe.skipIf(!ready)("real firmware boots a Talos-form profile from the asset cache, fed by a release mirror", () => {
  beforeAll(async () => {
    assertFreshBuild();
    if (!existsSync(FIXTURE)) throw new Error(`${FIXTURE} is missing: run \`npm run build\` (npm run test:netboot does)`);
    process.once("exit", killMirrorNow);
    lab = await NetbootLab.create(`tnbt-${process.pid}`);
    const kernel = await debianKernel();
    files = writeBootProfile(join(lab.dir, "boot"), kernel, "talos");
    const mirrorRoot = join(lab.dir, "mirror");
    mirrorFiles = writeRelease(mirrorRoot, files);
    const { port } = await startMirror(lab.ns.lab, mirrorRoot);
    const mirrorUrl = `http://127.0.0.1:${port}`;
    await lab.startSiteDhcp();
    const config = {
      ...lab.daemonConfig({
        token: TOKEN,
        profiles: {
          talos: { talos: { version: VERSION, arch: ARCH, extraArgs: EXTRA_ARGS }, config: files.config },
        },
        machines: [{ mac: MAC, profile: "talos", hostname: "talos-1" }],
        unknownMachines: "ignore",
      }),
      // Both base URLs at the mirror: nothing may reach an outside address (the profile names no schematic, so the factory is never asked).
      talos: { releasesUrl: mirrorUrl, factoryUrl: `${mirrorUrl}/factory` },
    };
    await lab.startDaemon(config);
    // NetbootLab.startDaemon writes the config here; the assets CLI reads the very same file.
    configPath = join(lab.dir, "talos-netboot.yaml");
    if (!existsSync(configPath)) throw new Error(`the lab wrote no daemon config at ${configPath}`);
  }, 600_000);

  afterAll(async () => {
    await stopMirror();
    process.off("exit", killMirrorNow);
    await lab?.teardown();
  });

  it(
    "7. SeaBIOS + iPXE boots talos {version: 1.14.7, arch: amd64}: mirror → verified cache → kernel, initramfs, Talos 1.14 command line, config",
    async () => {
      const vm = lab.powerOn({ name: "talos-1", mac: MAC, firmware: "bios", uuid: "8f2a9c1e-4b3d-4e5f-9a6b-7c8d9e0f1a07", timeoutMs: BOOT_LIMIT_MS + 10_000 });
      const exitedInTime = await vm.exitWithin(BOOT_LIMIT_MS);
      expect(exitedInTime, `VM did not power off within ${BOOT_LIMIT_MS} ms\n${await context(vm)}`).toBe(true);
      const ctx = await context(vm);

      // The guest: the mirror's initramfs ran under the mirror's kernel, with Talos 1.14's PXE line, and fetched its config.
      const report = parseSerial(vm.serial());
      expect(report.booted, `which initramfs ran\n${ctx}`).toBe(files.tag);
      expect(report.errors, `guest errors\n${ctx}`).toEqual([]);
      const words = (report.cmdline ?? "").split(/\s+/).filter(Boolean);
      const configArgs = words.filter((w) => w.startsWith("talos.config="));
      expect(configArgs, `one talos.config, the machine's own URL\n${ctx}`).toHaveLength(1);
      expect(configArgs[0], ctx).toMatch(new RegExp(`^${configUrlPrefix.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}[A-Za-z0-9_-]+$`));
      // iPXE prepends `initrd=<name>` so an EFI stub finds the initramfs; the profile's extra args follow Talos's own.
      const talosWords = words.filter((w) => !w.startsWith("initrd=") && !w.startsWith("talos.config=") && !EXTRA_ARGS.includes(w));
      expect(talosWords.join(" "), `Talos 1.14 amd64 PXE arguments (DESIGN §4), in order\n${ctx}`).toBe(TALOS_114_AMD64);
      for (const arg of EXTRA_ARGS) expect(words, `profile extraArgs ${arg}\n${ctx}`).toContain(arg);
      expect(words.indexOf("proc_mem.force_override=never"), ctx).toBeLessThan(words.indexOf(EXTRA_ARGS[2]!));
      expect(words.at(-1), `talos.config comes last\n${ctx}`).toBe(configArgs[0]);
      expect(report.address, `address from the site DHCP server\n${ctx}`).toMatch(/^192\.168\.77\.1\d\d$/);
      expect(report.config?.toString("latin1"), `the config the guest fetched\n${ctx}`).toBe(files.configBytes.toString("latin1"));
      expect(report.poweredOff, ctx).toBe(true);

      // The daemon: script → kernel → initrd → config, each file the size of the mirror's.
      const since: TimelineEntry[] = entriesSince((await lab.machine(TOKEN, MAC)).timeline, vm.poweredOnAt);
      const want = [
        { step: "dhcp-offer", details: { arch: 0, firmware: "ipxe", bootFile: scriptUrl } },
        { step: "script", details: { via: "ipxe", profile: "talos" } },
        { step: "kernel", details: { bytes: mirrorFiles.kernel.bytes.length } },
        { step: "initrd", details: { index: 0, bytes: mirrorFiles.initramfs.bytes.length } },
        { step: "config" },
      ];
      const m = matchSteps(since, want);
      expect(m.ok ? "in order" : `missing ${JSON.stringify(want[m.missing])}`, `timeline since power-on\n${formatTimeline(since)}\n${ctx}`).toBe("in order");
      for (const e of since) expect(e.details.incomplete, `${e.step} cut short\n${ctx}`).toBeUndefined();
      expect(since.filter((e) => e.step === "assets-pending"), `the files were not ready when asked for\n${ctx}`).toEqual([]);

      // The mirror: each release file went out whole, exactly once (the start-up prefetch and an on-demand fetch share one download; after it the cache answers).
      for (const f of Object.values(mirrorFiles)) {
        const gets = mirror!.requests.filter((r) => r.method === "GET" && r.path === `/v${VERSION}/${f.name}`);
        expect(gets, `downloads of ${f.name}\n${ctx}`).toEqual([{ method: "GET", path: `/v${VERSION}/${f.name}`, status: 200, bytes: f.bytes.length }]);
      }
      expect(mirror!.requests.filter((r) => !r.path.startsWith(`/v${VERSION}/`)), `requests outside the release\n${ctx}`).toEqual([]);

      // The cache, as the CLI sees it with the daemon's own config: both files, verified, with the mirror's digests.
      const listed = await runIn(lab.ns.lab, process.execPath, [CLI, "assets", "list", "--json", "--config", configPath], 60_000);
      expect(listed.code, `assets list --json: ${listed.stderr}`).toBe(0);
      const entries = z.array(listEntry).parse(JSON.parse(listed.stdout.toString("utf8")));
      const byFile = (file: "kernel" | "initramfs") => entries.filter((e) => e.file === file);
      for (const file of ["kernel", "initramfs"] as const) {
        const src = mirrorFiles[file];
        expect(byFile(file), JSON.stringify(entries, null, 2)).toEqual([
          { source: "release", version: VERSION, arch: ARCH, schematic: null, file, path: expect.any(String), sha256: src.sha256, size: src.bytes.length },
        ]);
        expect(createHash("sha256").update(readFileSync(byFile(file)[0]!.path)).digest("hex"), `cached ${file} bytes`).toBe(src.sha256);
      }
      expect(entries, JSON.stringify(entries, null, 2)).toHaveLength(2);

      lab.recordBootTime("BIOS Talos-form profile (1.14.7 amd64 from the mirror)", vm.poweredOnAt, since.find((e) => e.step === "config")!.time);
    },
    TEST_TIMEOUT_MS,
  );
});

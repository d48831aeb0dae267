/**
 * The local QEMU provider end to end, through the daemon's control API: the
 * daemon runs in the firmware lab's namespace with `providers.qemu` on the
 * lab's bridge (SeaBIOS), and two VMs are created with
 * `POST /api/v1/providers/qemu/vms {…, profile}` — each MAC chosen by the
 * provider and registered with its profile before the VM powers on. Both
 * netboot against the daemon beside the PXE-unaware site DHCP server into
 * their own profile (own kernel, initramfs and config), which is checked from
 * the guest (the provider's per-VM serial log) and from the daemon (the
 * machine's timeline, up to "config"). Then the boot order is switched to
 * disk (SeaBIOS tries the disk first at the next start), both VMs are
 * destroyed, and no QEMU process, disk, VM directory or tap is left.
 *
 * TCG unless TALOS_NETBOOT_KVM=1; TALOS_NETBOOT_KEEP=1 keeps the lab's logs.
 */
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseMac } from "../../src/boot/mac.js";
import { isLocallyAdministeredMac } from "../../src/providers/mac.js";
import { tapName } from "../../src/providers/qemu/args.js";
import { ourQemuPid, processArgv, terminate } from "../../src/providers/qemu/process.js";
import { assertFreshBuild } from "../helpers/daemon-process.js";
import { LAB, NetbootLab, entriesSince, formatTimeline, labPrerequisites, matchSteps, useKvm, type TimelineEntry } from "../helpers/netboot-lab.js";
import { runIn, waitUntil } from "../helpers/netns.js";
import { debianKernel, parseSerial, writeBootProfile, type BootProfileFiles } from "../helpers/test-initramfs.js";
import { requireTool } from "../helpers/tools.js";

const ready = labPrerequisites() && requireTool("qemu-img", "qemu-utils");

const TOKEN = randomBytes(16).toString("hex");
const CMDLINE = "console=ttyS0 quiet panic=5";
const CLUSTER = "tnbp";
/** Power-on → config fetched, per VM (both boot at once under TCG, possibly beside other work). */
const BOOT_LIMIT_MS = 240_000;

interface Node {
  name: string;
  profile: "alpha" | "beta";
}
const NODES: readonly Node[] = [
  { name: "alpha-1", profile: "alpha" },
  { name: "beta-1", profile: "beta" },
];

const dashed = (mac: string) => mac.replaceAll(":", "-");
const scriptUrl = (mac: string) => `http://${LAB.server}:${LAB.httpPort}/boot/${dashed(mac)}/boot.ipxe`;
const configUrlPrefix = (mac: string) => `talos.config=http://${LAB.server}:${LAB.httpPort}/boot/${dashed(mac)}/config/`;
const readText = (path: string) => (existsSync(path) ? readFileSync(path, "latin1") : "");

let lab: NetbootLab;
let files: Record<Node["profile"], BootProfileFiles>;

/** Where the provider keeps its VMs: the default `<stateDir>/qemu` of the lab's daemon config. */
const providerDir = () => join(lab.dir, "state", "qemu");
/** The provider's files of one VM (same layout as QemuProvider.files). */
function vmFiles(name: string) {
  const dir = join(providerDir(), CLUSTER, name);
  return { dir, disk: join(dir, "disk0.qcow2"), serialLog: join(dir, "serial.log"), firmwareLog: join(dir, "firmware.log"), pidFile: join(dir, "qemu.pid") };
}

/** Live QEMU processes whose PID file lies under the provider's directory: only this lab's VMs. */
function labQemuPids(): number[] {
  const dir = `${providerDir()}/`;
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const argv = processArgv(Number(entry));
    const i = argv?.indexOf("-pidfile") ?? -1;
    if (argv && i >= 0 && argv[i + 1]?.startsWith(dir)) pids.push(Number(entry));
  }
  return pids;
}

/** A control API call with an optional JSON body, from inside the lab (curl in the lab namespace). */
/** The API from inside the lab; creating a VM runs qemu-img and starts QEMU, hence the long timeout. */
const call = (method: string, path: string, body?: unknown) => lab.api(TOKEN, method, path, body, 120);

async function timelineOf(mac: string): Promise<TimelineEntry[]> {
  return (await lab.machine(TOKEN, mac)).timeline;
}

function serialTail(name: string, lines = 25): string {
  const text = readText(vmFiles(name).serialLog).replace(/\x1b\[[0-9;=?]*[A-Za-z]/g, "").replace(/[\r\b]/g, "");
  return `--- serial of ${name} (last ${lines} lines) ---\n${text.split("\n").filter((l) => l.trim()).slice(-lines).join("\n")}`;
}

async function context(name: string, mac: string): Promise<string> {
  let timeline: string;
  try {
    timeline = formatTimeline(await timelineOf(mac));
  } catch (err) {
    timeline = String(err);
  }
  return `${serialTail(name)}\n--- SeaBIOS of ${name} ---\n${readText(vmFiles(name).firmwareLog).slice(-800)}\n--- timeline of ${mac} ---\n${timeline}\n${lab.daemon?.tail(25) ?? ""}`;
}

const vmSummary = (body: unknown) => body as { provider: string; cluster: string; name: string; role: string; vmid: number | null; node: string | null; mac: string; status: string };

describe.skipIf(!ready)("local QEMU provider VMs netboot against the daemon (API-created, profile registered first)", () => {
  beforeAll(async () => {
    assertFreshBuild();
    lab = await NetbootLab.create(`tnbp-${process.pid}`);
    const kernel = await debianKernel();
    const boot = join(lab.dir, "boot");
    files = {
      alpha: writeBootProfile(boot, kernel, "alpha"),
      // Its own kernel (a padded copy: other size, other bytes), initramfs and config.
      beta: writeBootProfile(boot, kernel, "beta", { kernelPadding: 4093 }),
    };
    const profile = (f: BootProfileFiles) => ({ kernel: f.kernel, initrd: [f.initrd], cmdline: CMDLINE, config: f.config });
    await lab.startSiteDhcp();
    await lab.startDaemon({
      ...lab.daemonConfig({ token: TOKEN, profiles: { alpha: profile(files.alpha), beta: profile(files.beta) }, machines: [], unknownMachines: "ignore" }),
      // The daemon runs in the lab namespace: its taps join the lab's bridge there, no netns key needed.
      providers: { qemu: { bridge: LAB.bridge, firmware: "bios", accel: useKvm() ? "kvm" : "tcg" } },
    });
  }, 600_000);

  afterAll(async () => {
    // Whatever the test left running: only QEMUs started with this lab's PID files, by PID.
    if (lab) for (const pid of labQemuPids()) await terminate(pid, 1_000);
    await lab?.teardown();
  });

  it("creates two VMs with profiles, watches them reach config, switches boot order, destroys them without a trace", { timeout: 900_000 }, async () => {
    // ---- create: MAC chosen by the provider and registered with the profile before power-on
    const startedAt = Date.now();
    const created = new Map<string, { mac: string; at: number }>();
    for (const n of NODES) {
      const at = Date.now();
      const r = await call("POST", "/providers/qemu/vms", { cluster: CLUSTER, name: n.name, role: "worker", cores: 1, memoryMB: 512, disks: [{ sizeGB: 1 }], profile: n.profile });
      expect(r.status, r.text).toBe(201);
      const vm = vmSummary(r.body);
      expect(vm).toMatchObject({ provider: "qemu", cluster: CLUSTER, name: n.name, role: "worker", vmid: null, node: null, status: "running" });
      const mac = parseMac(vm.mac);
      expect(mac, `${vm.mac} is a MAC in canonical form`).not.toBeNull();
      expect(mac, "canonical form").toBe(vm.mac);
      expect(isLocallyAdministeredMac(mac!), vm.mac).toBe(true);
      created.set(n.name, { mac: vm.mac, at });
    }
    const macOf = (n: Node) => created.get(n.name)!.mac;
    expect(new Set(NODES.map(macOf)).size).toBe(2);

    for (const n of NODES) {
      const f = vmFiles(n.name);
      expect(readFileSync(f.disk).subarray(0, 4).toString("latin1"), `${f.disk} is a qcow2 image`).toBe("QFI\xfb");
      const pid = ourQemuPid(f.pidFile);
      expect(pid, `QEMU of ${n.name} runs with its PID file`).not.toBeNull();
      const argv = processArgv(pid!)!.join(" ");
      expect(argv).toContain(`mac=${macOf(n)},bootindex=1`);
      expect(argv).toContain(`ifname=${tapName(macOf(n))}`);
      expect((await runIn(lab.ns.lab, "ip", ["-o", "link", "show", "dev", tapName(macOf(n))])).stdout.toString()).toContain(`master ${LAB.bridge}`);
      const m = await lab.machine(TOKEN, macOf(n));
      expect(m).toMatchObject({ profile: n.profile, source: "api", next: "profile" });
    }
    const listed = await call("GET", `/providers/qemu/vms?cluster=${CLUSTER}`);
    expect(listed.status, listed.text).toBe(200);
    expect((listed.body as Array<{ name: string }>).map((v) => v.name).sort()).toEqual(NODES.map((n) => n.name).sort());

    // ---- both netboot at once into their own profile, up to "config"
    const booted = await Promise.all(
      NODES.map(async (n) => {
        const mac = macOf(n);
        const f = vmFiles(n.name);
        await waitUntil(
          `${n.name} to fetch its config and power off`,
          () => (parseSerial(readText(f.serialLog)).poweredOff ? true : undefined),
          BOOT_LIMIT_MS,
          () => `${serialTail(n.name)}\n${lab.daemon?.tail(15) ?? ""}`,
        );
        const ctx = await context(n.name, mac);
        const report = parseSerial(readText(f.serialLog));
        const want = files[n.profile];
        expect(report.booted, `${n.name}: which initramfs ran\n${ctx}`).toBe(want.tag);
        expect(report.errors, `${n.name}: guest errors\n${ctx}`).toEqual([]);
        expect(report.cmdline, ctx).toContain(CMDLINE);
        expect(report.cmdline, ctx).toContain(configUrlPrefix(mac));
        expect(report.address, `${n.name}: address from the site DHCP server\n${ctx}`).toMatch(/^192\.168\.77\.1\d\d$/);
        expect(report.config?.toString("latin1"), `${n.name}: the config the guest fetched\n${ctx}`).toBe(want.configBytes.toString("latin1"));

        const since = entriesSince(await timelineOf(mac), created.get(n.name)!.at);
        const steps = [
          { step: "dhcp-offer", details: { firmware: "ipxe", bootFile: scriptUrl(mac) } },
          { step: "script", details: { via: "ipxe", profile: n.profile } },
          { step: "kernel", details: { bytes: statSync(want.kernel).size } },
          { step: "initrd", details: { index: 0, bytes: statSync(want.initrd).size } },
          { step: "config" },
        ];
        const m = matchSteps(since, steps);
        expect(m.ok ? "in order" : `missing ${JSON.stringify(steps[m.missing])}`, `${n.name}: timeline since creation\n${formatTimeline(since)}\n${ctx}`).toBe("in order");
        for (const e of since) expect(e.details.incomplete, `${n.name}: ${e.step} cut short\n${ctx}`).toBeUndefined();
        const configAt = since.find((e) => e.step === "config")!.time;
        console.info(`[qemu-provider] ${n.name} (${n.profile}, ${useKvm() ? "KVM" : "TCG"}): create request → config fetched in ${((Date.parse(configAt) - created.get(n.name)!.at) / 1000).toFixed(1)} s`);
        return since;
      }),
    );
    // Registered before power-on: never an unknown machine, the first thing the daemon recorded was an offer.
    const unknown = await lab.unknownMachines(TOKEN);
    for (const n of NODES) {
      expect(unknown.map((u) => u.mac), `${macOf(n)} was never unknown`).not.toContain(macOf(n));
    }
    for (const since of booted) expect(since[0]?.step, formatTimeline(since)).toBe("dhcp-offer");
    expect(statSync(files.alpha.kernel).size).not.toBe(statSync(files.beta.kernel).size);

    // The guest powered itself off: QEMU exits, the provider reports the VM stopped.
    for (const n of NODES) {
      await waitUntil(
        `${n.name} to be reported stopped after the guest's poweroff`,
        async () => {
          const r = await call("GET", `/providers/qemu/vms/${CLUSTER}/${n.name}`);
          if (r.status !== 200) throw new Error(`GET vm ${n.name}: ${r.status} ${r.text}`);
          return vmSummary(r.body).status === "stopped" ? true : undefined;
        },
        60_000,
        () => serialTail(n.name),
      );
    }

    // ---- boot order: disk first from the next start
    for (const n of NODES) {
      const r = await call("POST", `/providers/qemu/vms/${CLUSTER}/${n.name}/boot-order`, { order: "disk" });
      expect(r.status, r.text).toBe(200);
      expect(r.body).toEqual({ pendingUntilRestart: false });
    }
    const firmwareFrom = new Map(NODES.map((n) => [n.name, readText(vmFiles(n.name).firmwareLog).length]));
    for (const n of NODES) {
      const r = await call("POST", `/providers/qemu/vms/${CLUSTER}/${n.name}/start`);
      expect(r.status, r.text).toBe(200);
      expect(vmSummary(r.body).status).toBe("running");
      const pid = ourQemuPid(vmFiles(n.name).pidFile)!;
      const argv = processArgv(pid)!.join(" ");
      expect(argv).toContain(`mac=${macOf(n)},bootindex=2`);
      expect(argv).toContain("id=disk0,bootindex=1");
    }
    for (const n of NODES) {
      const log = vmFiles(n.name).firmwareLog;
      const first = await waitUntil(
        `SeaBIOS of ${n.name} to try its first boot device after the switch`,
        () => /Booting from ([^\n.]+)/.exec(readText(log).slice(firmwareFrom.get(n.name)))?.[1],
        BOOT_LIMIT_MS,
        () => readText(log).slice(-1500),
      );
      expect(first, `${n.name}: first boot device after the switch`).toBe("Hard Disk");
    }

    // ---- destroy both (running): no process, no disk, no tap, no record
    const pids = NODES.map((n) => ourQemuPid(vmFiles(n.name).pidFile)).filter((p): p is number => p !== null);
    for (const n of NODES) {
      const r = await call("DELETE", `/providers/qemu/vms/${CLUSTER}/${n.name}`);
      expect(r.status, r.text).toBe(204);
    }
    for (const pid of pids) expect(processArgv(pid), `QEMU ${pid} is gone`).toBeNull();
    expect(labQemuPids()).toEqual([]);
    for (const n of NODES) {
      const f = vmFiles(n.name);
      expect(existsSync(f.disk), `${f.disk} removed`).toBe(false);
      expect(existsSync(f.dir), `${f.dir} removed`).toBe(false);
      expect((await runIn(lab.ns.lab, "ip", ["link", "show", "dev", tapName(macOf(n))])).code, `tap of ${n.name} removed`).not.toBe(0);
      expect((await call("GET", `/providers/qemu/vms/${CLUSTER}/${n.name}`)).status).toBe(404);
      expect((await call("DELETE", `/providers/qemu/vms/${CLUSTER}/${n.name}`)).status).toBe(404);
    }
    const after = await call("GET", `/providers/qemu/vms?cluster=${CLUSTER}`);
    expect(after.body).toEqual([]);
    const left = existsSync(providerDir()) ? readdirSync(providerDir(), { recursive: true }).map(String) : [];
    expect(left.filter((p) => p.endsWith(".qcow2")), "no disk left anywhere under the provider's directory").toEqual([]);
    console.info(`[qemu-provider] whole scenario: ${((Date.now() - startedAt) / 1000).toFixed(1)} s`);
  });
});

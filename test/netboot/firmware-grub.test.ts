/**
 * Real firmware with `bootloader: grub`: OVMF's UEFI PXE fetches
 * grubnetx64.efi from us over TFTP — the image `bootloaders.grubEfi: build`
 * makes with grub-mkimage (src/boot/grub-image.ts): http built in, prefix
 * `(http,<us>:8080)/grub`. GRUB then reads /grub/grub.cfg from us over HTTP,
 * chains to its per-MAC config and loads the kernel and initrd over HTTP,
 * into the busybox initramfs that fetches its talos.config (see
 * test/helpers/netboot-lab.ts).
 *
 * Twice: beside a site DHCP server that knows nothing of network boot (its
 * ACK names itself as next-server, as dnsmasq does), and beside one that
 * names the boot host as next-server (still no boot file, no PXE options).
 * GRUB takes its own address from the firmware's cached DHCP ACK, which came
 * from the site server; it must not depend on that ACK's next-server. When a
 * run fails, the message lists where GRUB sent its TFTP requests.
 *
 * Debian's signed grubnetx64.efi cannot pass here: it has no `http` module,
 * and it takes its TFTP server from the site ACK (no proxyDHCP support), so
 * beside a PXE-unaware site DHCP server it never finds us (README, "GRUB").
 */
import { randomBytes } from "node:crypto";
import { statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildGrubImage } from "../../src/boot/grub-image.js";
import { silentLogger } from "../../src/log.js";
import { assertFreshBuild } from "../helpers/daemon-process.js";
import {
  LAB,
  NetbootLab,
  entriesSince,
  formatTimeline,
  labPrerequisites,
  matchSteps,
  type SiteDhcpOptions,
  type TimelineEntry,
} from "../helpers/netboot-lab.js";
import { waitUntil } from "../helpers/netns.js";
import { debianKernel, parseSerial, writeBootProfile, type BootProfileFiles } from "../helpers/test-initramfs.js";
import { requireTool } from "../helpers/tools.js";

const ready = labPrerequisites() && requireTool("tcpdump", "tcpdump") && requireTool("grub-mkimage", "grub-efi-amd64-bin");

const TOKEN = randomBytes(16).toString("hex");
const CMDLINE = "console=ttyS0 quiet panic=5";
const BOOT_LIMIT_MS = 150_000;
/** GRUB asks for its config within a second of starting here; this long without is a failure. */
const GRUB_CONFIG_WAIT_MS = 45_000;
const TEST_TIMEOUT_MS = 175_000;

const M = { pxeUnaware: "52:54:00:77:02:03", nextServer: "52:54:00:77:02:04" } as const;

let lab: NetbootLab;
let files: BootProfileFiles;
let tftpRequests: () => string;
let grubImage: string;

/** TFTP read requests seen on the bridge after line `fromLine` of the capture: "client asked server for name". */
function tftpRequestSummary(fromLine: number): string {
  const seen = new Set<string>();
  for (const line of tftpRequests().split("\n").slice(fromLine)) {
    const m = /IP (\d+\.\d+\.\d+\.\d+)\.\d+ > (\d+\.\d+\.\d+\.\d+)\.69: .*RRQ "([^"]*)"/.exec(line);
    if (m) seen.add(`${m[1]} asked ${m[2]}${m[2] === LAB.server ? " (us)" : m[2] === LAB.site ? " (the site DHCP server)" : ""} for "${m[3]}"`);
  }
  return seen.size ? [...seen].join("\n") : "(no TFTP read requests seen)";
}

async function bootWithGrub(name: string, mac: string, site: SiteDhcpOptions, label: string): Promise<void> {
  await lab.startSiteDhcp(site);
  const captureMark = tftpRequests().split("\n").length - 1;
  const vm = lab.powerOn({ name, mac, firmware: "uefi", timeoutMs: BOOT_LIMIT_MS });
  const timeline = async (): Promise<TimelineEntry[]> => entriesSince((await lab.machine(TOKEN, mac)).timeline, vm.poweredOnAt);
  const context = async () =>
    `${vm.tail(40)}\n--- timeline since power-on ---\n${formatTimeline(await timeline())}\n--- TFTP read requests on the bridge ---\n${tftpRequestSummary(captureMark)}\n${lab.daemon?.tail(25) ?? ""}`;
  try {
    // GRUB is running once its image was fetched; it must come back to us for its config.
    const started = await waitUntil(
      "the firmware to fetch grubnetx64.efi",
      async () => (await timeline()).find((e) => e.step === "tftp" && e.details.file === "grubnetx64.efi"),
      90_000,
      () => vm.tail(),
    );
    await waitUntil(
      `GRUB (started ${started.time}) to ask us for its config`,
      async () => ((await timeline()).some((e) => e.step === "script") ? true : undefined),
      GRUB_CONFIG_WAIT_MS,
    ).catch(async (err: Error) => {
      throw new Error(`${label}: ${err.message.split("\n")[0]}\n${await context()}`);
    });
    const poweredOff = await vm.exitWithin(Math.max(0, BOOT_LIMIT_MS - (Date.now() - vm.poweredOnAt)));
    expect(poweredOff, `${label}: VM did not power off\n${await context()}`).toBe(true);
  } finally {
    await vm.stop();
  }

  const ctx = await context();
  const report = parseSerial(vm.serial());
  expect(report.booted, `${label}: which initramfs ran\n${ctx}`).toBe(files.tag);
  expect(report.errors, ctx).toEqual([]);
  expect(report.cmdline, ctx).toContain(CMDLINE);
  expect(report.cmdline, ctx).toContain(`talos.config=http://${LAB.server}:${LAB.httpPort}/boot/${mac.replaceAll(":", "-")}/config/`);
  expect(report.config?.toString("latin1"), ctx).toBe(files.configBytes.toString("latin1"));

  const since = await timeline();
  const m = matchSteps(since, [
    { step: "dhcp-offer", details: { arch: 7, firmware: "uefi", bootFile: "grubnetx64.efi" } },
    { step: "dhcp-4011", details: { arch: 7, firmware: "uefi", bootFile: "grubnetx64.efi" } },
    { step: "tftp", details: { file: "grubnetx64.efi", bytes: statSync(grubImage).size } },
    { step: "script", details: { via: "grub", profile: "gamma" } },
    { step: "kernel", details: { bytes: statSync(files.kernel).size } },
    { step: "initrd", details: { index: 0, bytes: statSync(files.initrd).size } },
    { step: "config" },
  ]);
  expect(m.ok, `${label}: DHCP → grubnetx64.efi → GRUB config → kernel → initrd → config, in order\n${ctx}`).toBe(true);
  for (const e of since) expect(e.details.incomplete, `${e.step} cut short\n${ctx}`).toBeUndefined();
  lab.recordBootTime(label, vm.poweredOnAt, since.find((e) => e.step === "config")!.time);
}

describe.skipIf(!ready)("OVMF + bootloader: grub — the grub-mkimage grubnetx64.efi boots the profile", () => {
  beforeAll(async () => {
    assertFreshBuild();
    lab = await NetbootLab.create(`tnbg-${process.pid}`);
    files = writeBootProfile(join(lab.dir, "boot"), await debianKernel(), "gamma");
    tftpRequests = lab.capture("tftp", "udp dst port 69");
    // The same build the daemon makes for `grubEfi: build` (identical bytes: the cache key is the inputs), so the test knows the size to expect.
    grubImage = await buildGrubImage({ address: LAB.server, httpPort: LAB.httpPort, outDir: join(lab.dir, "grub"), log: silentLogger() });
    const config = lab.daemonConfig({
      token: TOKEN,
      profiles: { gamma: { kernel: files.kernel, initrd: [files.initrd], cmdline: CMDLINE, config: files.config, bootloader: "grub" } },
      machines: [
        { mac: M.pxeUnaware, profile: "gamma", hostname: "grub-1" },
        { mac: M.nextServer, profile: "gamma", hostname: "grub-2" },
      ],
    });
    await lab.startDaemon({ ...config, bootloaders: { dir: "/usr/lib/ipxe", grubEfi: "build" } });
  }, 600_000);

  afterAll(async () => {
    await lab?.teardown();
  });

  it(
    "3. beside a PXE-unaware site DHCP server (its ACK names itself as next-server)",
    () => bootWithGrub("grub-1", M.pxeUnaware, {}, "UEFI GRUB, PXE-unaware site DHCP"),
    TEST_TIMEOUT_MS,
  );

  it(
    "3b. beside a site DHCP server that names the boot host as next-server (no boot file, no PXE options)",
    () => bootWithGrub("grub-2", M.nextServer, { nextServer: LAB.server }, "UEFI GRUB, site next-server = boot host"),
    TEST_TIMEOUT_MS,
  );
});

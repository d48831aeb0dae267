/**
 * Real firmware, end to end: QEMU machines (SeaBIOS with QEMU's iPXE ROM, and
 * OVMF's own UEFI PXE) boot from the daemon beside a PXE-unaware site DHCP
 * server, into a Debian kernel and a busybox initramfs that fetches its
 * talos.config and reports it on the serial console (see
 * test/helpers/netboot-lab.ts and test-initramfs.ts).
 *
 * Every scenario is checked twice, independently: from the guest (the serial
 * console shows which initramfs ran, its command line, and the config bytes
 * it fetched) and from the daemon (the machine's timeline, read over the
 * control API). Times power-on → config are printed, never asserted.
 *
 * TCG by default (KVM guests fail on the machines this was written on);
 * TALOS_NETBOOT_KVM=1 switches KVM on. TALOS_NETBOOT_KEEP=1 keeps the logs.
 */
import { randomBytes } from "node:crypto";
import { realpathSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertFreshBuild } from "../helpers/daemon-process.js";
import {
  FIRMWARE_FILES,
  LAB,
  NetbootLab,
  entriesSince,
  formatTimeline,
  labPrerequisites,
  matchSteps,
  type TimelineEntry,
  type Vm,
} from "../helpers/netboot-lab.js";
import { waitUntil } from "../helpers/netns.js";
import { debianKernel, parseSerial, writeBootProfile, type BootProfileFiles } from "../helpers/test-initramfs.js";

const ready = labPrerequisites();

const TOKEN = randomBytes(16).toString("hex");
/** Upper bound for one machine from power-on to power-off (TCG). */
const BOOT_LIMIT_MS = 150_000;
const TEST_TIMEOUT_MS = 175_000;
const CMDLINE = "console=ttyS0 quiet panic=5";

const M = {
  bios: "52:54:00:77:01:01",
  uefi: "52:54:00:77:01:02",
  pairA: "52:54:00:77:01:05",
  pairB: "52:54:00:77:01:06",
  once: "52:54:00:77:01:07",
  /** Never registered. */
  stranger: "52:54:00:77:01:99",
} as const;
const dashed = (mac: string) => mac.replaceAll(":", "-");
const scriptUrl = (mac: string) => `http://${LAB.server}:${LAB.httpPort}/boot/${dashed(mac)}/boot.ipxe`;
const configUrlPrefix = (mac: string) => `talos.config=http://${LAB.server}:${LAB.httpPort}/boot/${dashed(mac)}/config/`;

/** SeaBIOS printed that it moved past the NIC's option ROM: the network boot gave up or exited. */
const FELL_THROUGH = /Booting from ROM[\s\S]*(Booting from (Hard Disk|Floppy|DVD\/CD)|No bootable device)/;

let lab: NetbootLab;
let files: Record<"alpha" | "beta" | "once", BootProfileFiles>;

async function timelineOf(mac: string): Promise<TimelineEntry[]> {
  return (await lab.machine(TOKEN, mac)).timeline;
}

async function context(vm: Vm, mac: string): Promise<string> {
  let timeline = "(timeline unavailable)";
  try {
    timeline = formatTimeline(await timelineOf(mac));
  } catch (err) {
    timeline = String(err);
  }
  return `${vm.tail()}\n--- timeline of ${mac} ---\n${timeline}\n${lab.daemon?.tail(25) ?? ""}`;
}

interface BootExpectation {
  vm: Vm;
  mac: string;
  profile: string;
  files: BootProfileFiles;
  /** Timeline steps from power-on up to (not including) the script, in order. */
  before: Array<{ step: string; details?: Record<string, unknown> }>;
  label: string;
}

/**
 * Waits for the VM to power itself off, then checks the serial console and
 * the timeline: DHCP → (bootloader →) script → kernel → initrd → config.
 * Returns the timeline entries since power-on.
 */
async function expectBootToConfig(x: BootExpectation): Promise<TimelineEntry[]> {
  const exitedInTime = await x.vm.exitWithin(BOOT_LIMIT_MS);
  expect(exitedInTime, `${x.label}: VM did not power off within ${BOOT_LIMIT_MS} ms\n${await context(x.vm, x.mac)}`).toBe(true);
  const ctx = await context(x.vm, x.mac);

  const report = parseSerial(x.vm.serial());
  expect(report.booted, `${x.label}: which initramfs ran\n${ctx}`).toBe(x.files.tag);
  expect(report.errors, `${x.label}: guest errors\n${ctx}`).toEqual([]);
  expect(report.cmdline, ctx).toContain(CMDLINE);
  expect(report.cmdline, ctx).toContain(configUrlPrefix(x.mac));
  expect(report.address, `${x.label}: address from the site DHCP server\n${ctx}`).toMatch(/^192\.168\.77\.1\d\d$/);
  expect(report.config?.toString("latin1"), `${x.label}: the config the guest fetched\n${ctx}`).toBe(x.files.configBytes.toString("latin1"));
  expect(report.poweredOff, ctx).toBe(true);

  const since = entriesSince(await timelineOf(x.mac), x.vm.poweredOnAt);
  const want = [
    ...x.before,
    { step: "script", details: { via: "ipxe", profile: x.profile } },
    { step: "kernel", details: { bytes: statSync(x.files.kernel).size } },
    { step: "initrd", details: { index: 0, bytes: statSync(x.files.initrd).size } },
    { step: "config" },
  ];
  const m = matchSteps(since, want);
  expect(m.ok ? "in order" : `missing ${JSON.stringify(want[m.missing])}`, `${x.label}: timeline since power-on\n${formatTimeline(since)}\n${ctx}`).toBe(
    "in order",
  );
  for (const e of since) expect(e.details.incomplete, `${x.label}: ${e.step} cut short\n${ctx}`).toBeUndefined();

  lab.recordBootTime(x.label, x.vm.poweredOnAt, since.find((e) => e.step === "config")!.time);
  return since;
}

describe.skipIf(!ready)("real firmware boots from the daemon beside a PXE-unaware site DHCP server", () => {
  beforeAll(async () => {
    assertFreshBuild();
    lab = await NetbootLab.create(`tnbf-${process.pid}`);
    const kernel = await debianKernel();
    const boot = join(lab.dir, "boot");
    files = {
      alpha: writeBootProfile(boot, kernel, "alpha"),
      // Its own kernel (a padded copy: other size, other bytes), initramfs and config.
      beta: writeBootProfile(boot, kernel, "beta", { kernelPadding: 4093 }),
      once: writeBootProfile(boot, kernel, "once"),
    };
    const profile = (f: BootProfileFiles, extra: Record<string, unknown> = {}) => ({
      kernel: f.kernel,
      initrd: [f.initrd],
      cmdline: CMDLINE,
      config: f.config,
      ...extra,
    });
    await lab.startSiteDhcp();
    await lab.startDaemon(
      lab.daemonConfig({
        token: TOKEN,
        profiles: { alpha: profile(files.alpha), beta: profile(files.beta), once: profile(files.once, { once: true }) },
        machines: [
          { mac: M.bios, profile: "alpha", hostname: "bios-1" },
          { mac: M.uefi, profile: "alpha", hostname: "uefi-1" },
          { mac: M.pairA, profile: "alpha", hostname: "pair-a" },
          { mac: M.pairB, profile: "beta", hostname: "pair-b" },
          { mac: M.once, profile: "once", hostname: "once-1" },
        ],
        unknownMachines: "ignore",
      }),
    );
  }, 600_000);

  afterAll(async () => {
    await lab?.teardown();
  });

  it(
    "1. SeaBIOS with QEMU's iPXE ROM: iPXE from the first packet, straight to the script",
    async () => {
      const vm = lab.powerOn({ name: "bios-1", mac: M.bios, firmware: "bios", uuid: "8f2a9c1e-4b3d-4e5f-9a6b-7c8d9e0f1a01" });
      const since = await expectBootToConfig({
        vm,
        mac: M.bios,
        profile: "alpha",
        files: files.alpha,
        before: [{ step: "dhcp-offer", details: { arch: 0, firmware: "ipxe", bootFile: scriptUrl(M.bios) } }],
        label: "BIOS (SeaBIOS + iPXE ROM)",
      });
      // The ROM is iPXE already: no boot file over TFTP, never an offer for undionly.kpxe.
      expect(since.filter((e) => e.step === "tftp"), formatTimeline(since)).toEqual([]);
      expect(since.filter((e) => e.step === "dhcp-offer" && e.details.firmware !== "ipxe"), formatTimeline(since)).toEqual([]);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "2. OVMF UEFI PXE → TFTP ipxe.efi (boot server REQUEST on 4011) → iPXE → HTTP script",
    async () => {
      const vm = lab.powerOn({ name: "uefi-1", mac: M.uefi, firmware: "uefi", uuid: "8f2a9c1e-4b3d-4e5f-9a6b-7c8d9e0f1a02" });
      const ipxeEfiBytes = statSync(realpathSync(FIRMWARE_FILES.ipxeEfi.path)).size;
      await expectBootToConfig({
        vm,
        mac: M.uefi,
        profile: "alpha",
        files: files.alpha,
        before: [
          { step: "dhcp-offer", details: { arch: 7, firmware: "uefi", bootFile: "ipxe.efi" } },
          { step: "dhcp-4011", details: { arch: 7, firmware: "uefi", bootFile: "ipxe.efi" } },
          { step: "tftp", details: { file: "ipxe.efi", bytes: ipxeEfiBytes } },
          { step: "dhcp-offer", details: { arch: 7, firmware: "ipxe", bootFile: scriptUrl(M.uefi) } },
        ],
        label: "UEFI (OVMF PXE → ipxe.efi)",
      });
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "4. an unknown machine with unknownMachines: ignore gets no offer; its firmware gives up and moves on",
    async () => {
      const vm = lab.powerOn({ name: "stranger", mac: M.stranger, firmware: "bios", timeoutMs: 90_000 });
      try {
        await waitUntil("SeaBIOS to move past the network boot", () => (FELL_THROUGH.test(vm.debugcon()) ? true : undefined), 75_000, () =>
          `${vm.tail()}\n--- SeaBIOS debug ---\n${vm.debugcon()}\n${lab.daemon?.tail(20) ?? ""}`,
        );
      } finally {
        await vm.stop();
      }
      const ctx = `${vm.tail()}\n--- SeaBIOS debug ---\n${vm.debugcon()}\n${lab.daemon?.tail(30) ?? ""}`;
      // We heard it (so silence is policy, not deafness) ...
      const unknown = (await lab.unknownMachines(TOKEN)).find((u) => u.mac === M.stranger);
      expect(unknown, `unknown-machines lists ${M.stranger}\n${ctx}`).toBeDefined();
      expect(unknown!.count).toBeGreaterThanOrEqual(1);
      expect(unknown!.lastFacts).toMatchObject({ arch: 0, ipxe: true });
      // ... and sent nothing, recorded no machine.
      expect((await lab.api(TOKEN, "GET", `/machines/${M.stranger}`)).status).toBe(404);
      const forIt = lab.daemon!.logs.filter((l) => l.mac === M.stranger);
      expect(forIt.some((l) => l.reason === "unknown-machine" || /unknown machine/i.test(String(l.msg))), ctx).toBe(true);
      expect(forIt.filter((l) => /offer sent|ack sent/i.test(String(l.msg))), ctx).toEqual([]);
      // The site server did give it an address: only we stayed silent.
      expect(lab.siteDhcpLogText()).toMatch(new RegExp(`DHCPACK\\(vsite\\) \\S+ ${M.stranger}`));
      expect(parseSerial(vm.serial()).booted, ctx).toBeUndefined();
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "5. two machines booting at once with different profiles each get their own kernel, initramfs and config",
    async () => {
      const a = lab.powerOn({ name: "pair-a", mac: M.pairA, firmware: "bios" });
      const b = lab.powerOn({ name: "pair-b", mac: M.pairB, firmware: "bios" });
      const before = (mac: string) => [{ step: "dhcp-offer", details: { firmware: "ipxe", bootFile: scriptUrl(mac) } }];
      const [sa, sb] = await Promise.all([
        expectBootToConfig({ vm: a, mac: M.pairA, profile: "alpha", files: files.alpha, before: before(M.pairA), label: "concurrent BIOS A (alpha)" }),
        expectBootToConfig({ vm: b, mac: M.pairB, profile: "beta", files: files.beta, before: before(M.pairB), label: "concurrent BIOS B (beta)" }),
      ]);
      // The two boots overlapped: each began (first DHCP answer) before the other had its config.
      const begin = (s: TimelineEntry[]) => Date.parse(s[0]!.time);
      const end = (s: TimelineEntry[]) => Date.parse(s.find((e) => e.step === "config")!.time);
      expect(begin(sa), `${formatTimeline(sa)}\n${formatTimeline(sb)}`).toBeLessThan(end(sb));
      expect(begin(sb), `${formatTimeline(sa)}\n${formatTimeline(sb)}`).toBeLessThan(end(sa));
      expect(statSync(files.alpha.kernel).size).not.toBe(statSync(files.beta.kernel).size);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "6. once: true — boots the profile and fetches its config, then the next power-on is told to boot locally",
    async () => {
      const first = lab.powerOn({ name: "once-1", mac: M.once, firmware: "bios" });
      const since = await expectBootToConfig({
        vm: first,
        mac: M.once,
        profile: "once",
        files: files.once,
        before: [{ step: "dhcp-offer", details: { firmware: "ipxe", bootFile: scriptUrl(M.once) } }],
        label: "BIOS once: first boot",
      });
      const m = matchSteps(since, [{ step: "config", details: { checkIn: true } }, { step: "boot-set", details: { next: "local", by: "once" } }]);
      expect(m.ok, formatTimeline(since)).toBe(true);
      expect((await lab.machine(TOKEN, M.once)).next).toBe("local");

      const second = lab.powerOn({ name: "once-1", mac: M.once, firmware: "bios", timeoutMs: 90_000 });
      try {
        await waitUntil(
          "the second power-on to be told to boot locally and the firmware to move on",
          async () => {
            const s = entriesSince(await timelineOf(M.once), second.poweredOnAt);
            return s.some((e) => e.step === "local-boot") && FELL_THROUGH.test(second.debugcon()) ? s : undefined;
          },
          75_000,
          () => `${second.tail()}\n--- SeaBIOS debug ---\n${second.debugcon()}`,
        );
      } finally {
        await second.stop();
      }
      const after = entriesSince(await timelineOf(M.once), second.poweredOnAt);
      const ctx = `${formatTimeline(after)}\n${second.tail()}`;
      expect(
        matchSteps(after, [
          { step: "dhcp-offer", details: { firmware: "ipxe", bootFile: scriptUrl(M.once) } },
          { step: "local-boot", details: { via: "ipxe", method: "exit" } },
        ]).ok,
        ctx,
      ).toBe(true);
      expect(after.filter((e) => ["script", "kernel", "initrd", "config"].includes(e.step)), ctx).toEqual([]);
      expect(parseSerial(second.serial()).booted, ctx).toBeUndefined();
    },
    TEST_TIMEOUT_MS,
  );
});

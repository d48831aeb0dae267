/**
 * Real firmware, power-on → config fetched, one BIOS (SeaBIOS + QEMU's iPXE
 * ROM) and one UEFI (OVMF PXE → TFTP ipxe.efi → iPXE) boot in the QEMU
 * netboot lab (test/helpers/netboot-lab.ts, the real-firmware tests' lab),
 * one after the other so they do not share the CPU. Times are read from the
 * daemon's machine timeline; the guest's serial console must show it fetched
 * the very config served, or the boot does not count.
 *
 * The reference is DESIGN §8's measurement with dnsmasq in our place on this
 * machine kind (not repeated in this run: it needs a second boot stack).
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { LogLine } from "../helpers/daemon-process.js";
import { NetbootLab, entriesSince, formatTimeline, labPrerequisites, type Firmware, type TimelineEntry } from "../helpers/netboot-lab.js";
import { debianKernel, parseSerial, writeBootProfile } from "../helpers/test-initramfs.js";
import { fixed, ratio, unavailable, type Row } from "./table.js";

export const FIRMWARE_ROWS = ["Firmware BIOS (SeaBIOS + iPXE ROM): power-on → config", "Firmware UEFI (OVMF PXE → ipxe.efi): power-on → config"];

/** DESIGN §8: power-on → config with dnsmasq serving, TCG, on this machine kind. */
const DNSMASQ_SECONDS: Record<Firmware, number> = { bios: 23, uefi: 35 };
const BOOT_LIMIT_MS = 150_000;
/** SeaBIOS's debug port: it tried the disks after the NIC, so the network boot is over. */
const NO_NETWORK_BOOT = /Booting from (Hard Disk|Floppy|DVD\/CD)|No bootable device/;
const CMDLINE = "console=ttyS0 quiet panic=5";
const MACHINES: Array<{ firmware: Firmware; name: string; mac: string; uuid: string; row: string }> = [
  { firmware: "bios", name: "bench-bios", mac: "52:54:00:77:0b:01", uuid: "8f2a9c1e-4b3d-4e5f-9a6b-7c8d9e0f1b01", row: FIRMWARE_ROWS[0]! },
  { firmware: "uefi", name: "bench-uefi", mac: "52:54:00:77:0b:02", uuid: "8f2a9c1e-4b3d-4e5f-9a6b-7c8d9e0f1b02", row: FIRMWARE_ROWS[1]! },
];

export function labReady(): boolean {
  return labPrerequisites();
}

export async function benchFirmware(notes: string[]): Promise<Row[]> {
  const token = randomBytes(16).toString("hex");
  const lab = await NetbootLab.create(`tnbbf-${process.pid}`);
  try {
    const kernel = await debianKernel();
    const files = writeBootProfile(join(lab.dir, "boot"), kernel, "bench");
    await lab.startSiteDhcp();
    const daemon = await lab.startDaemon(
      lab.daemonConfig({
        token,
        profiles: { bench: { kernel: files.kernel, initrd: [files.initrd], cmdline: CMDLINE, config: files.config } },
        machines: MACHINES.map((m) => ({ mac: m.mac, profile: "bench", hostname: m.name })),
      }),
    );
    const rows: Row[] = [];
    for (const m of MACHINES) {
      try {
        rows.push(await bootOnce(lab, m, token, files.configBytes, daemon.logs, kernel.package, notes));
      } catch (err) {
        notes.push(`Firmware ${m.firmware.toUpperCase()} FAILED: ${(err as Error).message}`);
        rows.push({ ...unavailable(m.row, "failed, see notes"), verdict: "FAILED" });
      }
    }
    notes.push("Firmware: the dnsmasq figures were measured earlier on this machine kind (DESIGN §8) and include ~13 s of iPXE waiting for IPv6 autoconfiguration that the lab's router advertisement removes; compare phases, not only totals.");
    return rows;
  } finally {
    await lab.teardown();
  }
}

/** Powers one machine on, waits for it to power itself off, and reads its timeline. */
async function bootOnce(
  lab: NetbootLab,
  m: (typeof MACHINES)[number],
  token: string,
  configBytes: Buffer,
  logs: readonly LogLine[],
  kernelPackage: string,
  notes: string[],
): Promise<Row> {
  const vm = lab.powerOn({ name: m.name, mac: m.mac, firmware: m.firmware, uuid: m.uuid, timeoutMs: BOOT_LIMIT_MS + 10_000 });
  const lines = () => vm.tail(6).replace(/\n/g, " | ");
  // Powered off by the initramfs, or given up by SeaBIOS (no point waiting out the limit then).
  const deadline = Date.now() + BOOT_LIMIT_MS;
  let exited = false;
  while (!exited && Date.now() < deadline && !NO_NETWORK_BOOT.test(vm.debugcon())) exited = await vm.exitWithin(500);
  if (!exited) {
    await vm.stop();
    const why = NO_NETWORK_BOOT.test(vm.debugcon()) ? "SeaBIOS moved past the network boot" : `the VM did not power off within ${BOOT_LIMIT_MS / 1000} s`;
    throw new Error(`${why}; last serial lines: ${lines()}`);
  }
  const report = parseSerial(vm.serial());
  if (!report.config?.equals(configBytes)) throw new Error(`the guest did not report the config served; last serial lines: ${lines()}`);
  const since = entriesSince((await lab.machine(token, m.mac)).timeline, vm.poweredOnAt);
  const p = phases(since, vm.poweredOnAt);
  if (!p) throw new Error(`the timeline lacks a step: ${formatTimeline(since)}`);
  const tftp = tftpSeconds(logs, vm.poweredOnAt);
  const ours = tftp + p.downloads;
  notes.push(
    `Firmware ${m.firmware.toUpperCase()} (QEMU TCG, ${kernelPackage}, busybox initramfs): power-on → first offer ${p.toOffer.toFixed(1)} s, ` +
      `offer → script ${p.toScript.toFixed(1)} s${tftp > 0 ? ` (TFTP of the boot file ${tftp.toFixed(2)} s)` : ""}, ` +
      `script → kernel + initrd received ${p.downloads.toFixed(1)} s, → config fetched ${p.toConfig.toFixed(1)} s (the guest's kernel booting). ` +
      `Our servers on the critical path (TFTP transfers + HTTP downloads as paced by the emulated guest) ≤ ${ours.toFixed(1)} s, ${((100 * ours) / p.total).toFixed(0)} % of the total.`,
  );
  return {
    measurement: m.row,
    ours: fixed(p.total, 1, "s"),
    reference: `dnsmasq ≈ ${DNSMASQ_SECONDS[m.firmware]} s (DESIGN §8, not this run)`,
    ratio: ratio(p.total, DNSMASQ_SECONDS[m.firmware]),
    target: "—",
    verdict: "",
  };
}

interface Phases {
  total: number;
  toOffer: number;
  toScript: number;
  downloads: number;
  toConfig: number;
}

/** Seconds between the timeline's milestones since power-on; undefined when one is missing. */
export function phases(timeline: readonly TimelineEntry[], poweredOnAt: number): Phases | undefined {
  const at = (step: string, after = 0) => {
    const e = timeline.find((x) => x.step === step && Date.parse(x.time) >= after);
    return e ? Date.parse(e.time) : undefined;
  };
  const offer = at("dhcp-offer");
  const script = offer !== undefined ? at("script", offer) : undefined;
  const initrd = script !== undefined ? at("initrd", script) : undefined;
  const config = initrd !== undefined ? at("config", initrd) : undefined;
  if (offer === undefined || script === undefined || initrd === undefined || config === undefined) return undefined;
  const s = (a: number, b: number) => (b - a) / 1000;
  return { total: s(poweredOnAt, config), toOffer: s(poweredOnAt, offer), toScript: s(offer, script), downloads: s(script, initrd), toConfig: s(initrd, config) };
}

/** Seconds of TFTP transfers (started → ended, from the daemon's debug log) since a moment. */
function tftpSeconds(logs: readonly LogLine[], since: number): number {
  let total = 0;
  const started = new Map<string, number>();
  for (const l of logs) {
    const t = typeof l.time === "string" ? Date.parse(l.time) : Number.NaN;
    if (!(t >= since)) continue;
    if (l.msg === "tftp transfer started" && typeof l.client === "string") started.set(l.client, t);
    if (l.msg === "tftp transfer ended" && typeof l.client === "string" && started.has(l.client)) {
      total += t - started.get(l.client)!;
      started.delete(l.client);
    }
  }
  return total / 1000;
}

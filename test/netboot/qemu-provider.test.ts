/**
 * The local QEMU provider with a real QEMU under TCG, its tap in a bridge
 * inside a network namespace this test creates (no other network): create
 * (disk, OVMF vars, MAC recorded), start (OVMF tries to netboot with our MAC,
 * as its serial log shows), boot order switched through QMP, a stop that has
 * to be forced (firmware ignores the ACPI power button), destroy leaving no
 * process, no disk and no tap.
 *
 * The end-to-end netboot against the daemon (timeline reaching "config") is
 * not here: it needs the netboot suite's site DHCP and boot assets.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/log.js";
import { qemuProviderSchema } from "../../src/providers/config.js";
import { isLocallyAdministeredMac } from "../../src/providers/mac.js";
import { tapName } from "../../src/providers/qemu/args.js";
import { ourQemuPid, processArgv, run, terminate } from "../../src/providers/qemu/process.js";
import { QemuProvider } from "../../src/providers/qemu/provider.js";
import { qmpCommand } from "../../src/providers/qemu/qmp.js";
import { parseVmSpec } from "../../src/providers/spec.js";
import { openMemoryDatabase } from "../../src/store/db.js";
import { VMS_FAMILY, VmStore } from "../../src/store/vms.js";
import { deleteNamespaces, ip, waitUntil } from "../helpers/netns.js";
import { requireRoot, requireTool, unmet } from "../helpers/tools.js";

const OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd";
const ready =
  requireRoot() &&
  requireTool("ip", "iproute2") &&
  requireTool("qemu-system-x86_64", "qemu-system-x86") &&
  requireTool("qemu-img", "qemu-utils") &&
  (existsSync(OVMF_CODE) || unmet(`${OVMF_CODE} not found — apt-get install ovmf`));

const NS = `tnbq-${process.pid}`;
const KEY = { cluster: "lab", name: "n1" };

const rawLog = (path: string): string => (existsSync(path) ? readFileSync(path, "latin1") : "");

/** The serial log without terminal escapes, from raw offset `from` on. */
function serial(path: string, from = 0): string {
  return rawLog(path)
    .slice(from)
    .replace(/\x1b\[[0-9;=?]*[A-Za-z]/g, "")
    .replace(/[\r\b]/g, "");
}

describe.skipIf(!ready)("local QEMU provider (TCG, tap in a test namespace)", () => {
  let dir: string;
  let provider: QemuProvider;
  let store: VmStore;

  beforeAll(() => {
    deleteNamespaces([NS]);
    ip("netns", "add", NS);
    ip("-n", NS, "link", "add", "br0", "type", "bridge");
    ip("-n", NS, "link", "set", "br0", "up");
    dir = mkdtempSync(join(tmpdir(), "tnb-qemu-"));
    store = new VmStore(openMemoryDatabase([VMS_FAMILY]));
    const config = qemuProviderSchema.parse({ bridge: "br0", netns: NS, accel: "tcg", firmware: "uefi", stateDir: dir });
    provider = new QemuProvider({ config, dir, store, log: silentLogger() });
  });

  afterAll(async () => {
    // Whatever the test left running: only the QEMU that wrote our PID file.
    for (const name of [KEY.name, "b1"]) {
      const pid = provider ? ourQemuPid(provider.files(KEY.cluster, name).pidFile) : null;
      if (pid !== null) await terminate(pid, 1_000);
    }
    deleteNamespaces([NS]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("BIOS: SeaBIOS boots the NIC's ROM first, then the disk after the switch", { timeout: 240_000 }, async () => {
    const key = { cluster: "lab", name: "b1" };
    const spec = parseVmSpec({ ...key, role: "worker", cores: 1, memoryMB: 512, firmware: "bios", disks: [{ sizeGB: 1 }] });
    await provider.create(spec);
    const files = provider.files(key.cluster, key.name);
    const firstBoot = (from: number) => /Booting from ([^\n.]+)/.exec(rawLog(files.firmwareLog).slice(from))?.[1];
    try {
      await provider.start(key);
      expect(await waitUntil("SeaBIOS to boot", () => firstBoot(0), 60_000, () => rawLog(files.firmwareLog).slice(-1500))).toBe("ROM");
      await provider.setBootOrder(key, "disk");
      await provider.stop(key, { timeoutSec: 1 });
      const before = rawLog(files.firmwareLog).length;
      await provider.start(key);
      expect(await waitUntil("SeaBIOS to boot again", () => firstBoot(before), 60_000, () => rawLog(files.firmwareLog).slice(-1500))).toBe("Hard Disk");
    } finally {
      await provider.destroy(key);
    }
    expect(existsSync(files.dir)).toBe(false);
  });

  it("creates, netboots with our MAC, switches boot order, forces a stop, and destroys without a trace", { timeout: 420_000 }, async () => {
    const spec = parseVmSpec({ ...KEY, role: "worker", cores: 1, memoryMB: 512, disks: [{ sizeGB: 1 }] });
    const made = await provider.create(spec);
    expect(made.created).toBe(true);
    const mac = made.vm.mac!;
    expect(isLocallyAdministeredMac(mac)).toBe(true);
    expect(store.get("qemu", KEY.cluster, KEY.name)).toMatchObject({ mac, state: "created" });
    const files = provider.files(KEY.cluster, KEY.name);
    expect(existsSync(files.disk) && existsSync(files.vars)).toBe(true);
    expect(readFileSync(files.disk).subarray(0, 4).toString("latin1")).toBe("QFI\xfb");
    await expect(provider.create(spec)).resolves.toMatchObject({ created: false, vm: { mac } });

    const started = await provider.start(KEY);
    expect(started.status).toBe("running");
    const pid = ourQemuPid(files.pidFile)!;
    expect(processArgv(pid)!.join(" ")).toContain(`mac=${mac},bootindex=1`);
    const tap = tapName(mac);
    expect(ip("-n", NS, "-o", "link", "show", "dev", tap)).toContain("master br0");
    // OVMF names the NIC it netboots from by our MAC.
    const macHex = mac.replaceAll(":", "").toUpperCase();
    await waitUntil("OVMF to try PXE with our MAC", () => (serial(files.serialLog).includes(`PXEv4 (MAC:${macHex})`) ? true : undefined), 180_000, () => serial(files.serialLog).slice(-2000));

    await expect(provider.setBootOrder(KEY, "disk")).resolves.toEqual({ pendingUntilRestart: true });
    const idx = async (dev: string) => qmpCommand(files.qmpSocket, "qom-get", { path: `/machine/peripheral/${dev}`, property: "bootindex" });
    expect([await idx("disk0"), await idx("nic0")]).toEqual([1, 2]);

    // Firmware does not act on the ACPI power button: the stop is forced after the timeout.
    await expect(provider.stop(KEY, { timeoutSec: 2 })).resolves.toMatchObject({ status: "stopped" });
    expect(processArgv(pid)).toBeNull();

    const before = rawLog(files.serialLog).length;
    await provider.start(KEY);
    const pid2 = ourQemuPid(files.pidFile)!;
    expect(processArgv(pid2)!.join(" ")).toContain(`mac=${mac},bootindex=2`);
    // Disk first now: OVMF's first boot attempt is the (empty) disk, not PXE.
    const firstTry = await waitUntil(
      "OVMF's first boot attempt after the switch",
      () => /BdsDxe: (?:failed to load|loading) Boot\d+ "([^"]+)"/.exec(serial(files.serialLog, before))?.[1],
      180_000,
      () => serial(files.serialLog, before).slice(-2000),
    );
    expect(firstTry).not.toMatch(/PXE|iPXE|HTTP/);

    await expect(provider.destroy(KEY)).resolves.toEqual({ destroyed: true });
    expect(processArgv(pid2)).toBeNull();
    expect(existsSync(files.dir)).toBe(false);
    expect((await run("ip", ["-n", NS, "link", "show", "dev", tap])).code).not.toBe(0);
    expect(store.get("qemu", KEY.cluster, KEY.name)).toBeUndefined();
    await expect(provider.listByCluster("lab")).resolves.toEqual([]);
    await expect(provider.destroy(KEY)).resolves.toEqual({ destroyed: false });
  });
});

import { describe, expect, it } from "vitest";
import type { Mac } from "../../src/boot/mac.js";
import { allocateMac, DEFAULT_MAC_PREFIX, isLocallyAdministeredMac, MacExhaustedError, macInRange, parseMacPrefix, randomMac } from "../../src/providers/mac.js";
import { openMemoryDatabase } from "../../src/store/db.js";
import { VMS_FAMILY, VmStore } from "../../src/store/vms.js";

/** A deterministic byte source: the sequence given, repeated. */
function bytes(seq: number[]): (n: number) => Uint8Array {
  let i = 0;
  return (n) => Uint8Array.from({ length: n }, () => seq[i++ % seq.length]!);
}

describe("MAC prefixes", () => {
  it("accepts locally administered unicast prefixes only", () => {
    expect(parseMacPrefix(DEFAULT_MAC_PREFIX)).toEqual(Uint8Array.from([0x02, 0x74, 0x6e]));
    expect(parseMacPrefix("0A-BB")).toEqual(Uint8Array.from([0x0a, 0xbb]));
    expect(parseMacPrefix("52:54:00")).not.toBeNull(); // QEMU's own range is locally administered too
    expect(parseMacPrefix("00:50:56")).toBeNull(); // a vendor OUI (VMware)
    expect(parseMacPrefix("bc:24:11")).toBeNull(); // Proxmox's OUI
    expect(parseMacPrefix("03:00:00")).toBeNull(); // multicast
    expect(parseMacPrefix("02:00:00:00:00:00")).toBeNull(); // a whole MAC leaves nothing to allocate
    expect(parseMacPrefix("02:0")).toBeNull();
    expect(parseMacPrefix("")).toBeNull();
  });
});

describe("allocation", () => {
  const prefix = parseMacPrefix(DEFAULT_MAC_PREFIX)!;

  it("gives MACs in the range, locally administered and unicast", () => {
    for (let i = 0; i < 200; i++) {
      const mac = allocateMac(prefix, () => false);
      expect(macInRange(mac, prefix)).toBe(true);
      expect(isLocallyAdministeredMac(mac)).toBe(true);
      expect(parseInt(mac.slice(0, 2), 16) & 1).toBe(0);
    }
  });

  it("skips MACs already taken", () => {
    const taken = new Set<Mac>([randomMac(prefix, bytes([1, 2, 3]))]);
    const mac = allocateMac(prefix, (m) => taken.has(m), bytes([1, 2, 3, 4, 5, 6]));
    expect(mac).toBe("02:74:6e:04:05:06");
  });

  it("fails after a bounded number of tries when the range is full", () => {
    const tiny = parseMacPrefix("02:74:6e:00:00")!;
    expect(() => allocateMac(tiny, () => true, undefined, 50)).toThrow(MacExhaustedError);
  });

  it("never hands out the same MAC twice when every MAC is recorded (256-address range)", () => {
    const store = new VmStore(openMemoryDatabase([VMS_FAMILY]));
    const tiny = parseMacPrefix("02:74:6e:00:00")!;
    const macs = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const res = store.reserve({
        provider: "qemu",
        cluster: "c",
        name: `vm${i}`,
        role: "worker",
        spec: {},
        mac: (taken) => allocateMac(tiny, taken, undefined, 10_000),
        chooseNode: () => null,
      });
      expect(res.kind).toBe("reserved");
      if (res.kind === "reserved") macs.add(res.record.mac);
    }
    expect(macs.size).toBe(200);
  });
});

describe("recorded before creation", () => {
  it("reserve writes the MAC and host once; a repeat returns the same record", () => {
    const store = new VmStore(openMemoryDatabase([VMS_FAMILY]));
    const prefix = parseMacPrefix(DEFAULT_MAC_PREFIX)!;
    const input = {
      provider: "proxmox" as const,
      cluster: "demo",
      name: "cp1",
      role: "controlplane" as const,
      spec: { cores: 2 },
      mac: (taken: (m: Mac) => boolean) => allocateMac(prefix, taken),
      chooseNode: () => "pve2",
    };
    const first = store.reserve(input);
    expect(first.kind).toBe("reserved");
    const rec = store.get("proxmox", "demo", "cp1")!;
    expect(rec).toMatchObject({ node: "pve2", vmid: null, state: "reserved", spec: { cores: 2 } });
    const again = store.reserve({ ...input, chooseNode: () => "pve3" });
    expect(again).toEqual({ kind: "existing", record: rec });
  });

  it("a MAC given by the caller that another VM holds is refused", () => {
    const store = new VmStore(openMemoryDatabase([VMS_FAMILY]));
    const mac = "02:74:6e:00:00:01" as Mac;
    const base = { provider: "proxmox" as const, cluster: "demo", role: "worker" as const, spec: {}, chooseNode: () => "pve1" };
    expect(store.reserve({ ...base, name: "a", mac }).kind).toBe("reserved");
    const res = store.reserve({ ...base, name: "b", mac });
    expect(res.kind).toBe("mac-in-use");
    expect(store.get("proxmox", "demo", "b")).toBeUndefined();
  });

  it("placement sees the siblings already recorded, in the same transaction", () => {
    const store = new VmStore(openMemoryDatabase([VMS_FAMILY]));
    const prefix = parseMacPrefix(DEFAULT_MAC_PREFIX)!;
    const seen: number[] = [];
    for (const name of ["a", "b", "c"]) {
      store.reserve({
        provider: "proxmox",
        cluster: "demo",
        name,
        role: "controlplane",
        spec: {},
        mac: (t) => allocateMac(prefix, t),
        chooseNode: (siblings) => {
          seen.push(siblings.length);
          return `pve${siblings.length + 1}`;
        },
      });
    }
    expect(seen).toEqual([0, 1, 2]);
    expect(store.listCluster("proxmox", "demo").map((r) => r.node)).toEqual(["pve1", "pve2", "pve3"]);
  });
});

import { describe, expect, it } from "vitest";
import { openDatabase, openMemoryDatabase } from "../../src/store/db.js";
import { MAX_UNKNOWN, MachineStore } from "../../src/store/machines.js";
import { macFromBytes } from "../../src/boot/mac.js";
import { statSync } from "node:fs";
import { join } from "node:path";
import { mac, tempDir } from "../helpers/fixtures.js";

const A = mac("52:54:00:00:00:0a");
const B = mac("52:54:00:00:00:0b");

describe("MachineStore", () => {
  it("syncs config machines: adds, keeps runtime state, removes what the file dropped, leaves API machines alone", () => {
    const store = new MachineStore(openMemoryDatabase());
    store.upsert({ mac: B, profile: "p", hostname: null, bootfile: null, source: "api" });
    expect(store.syncFromConfig([{ mac: A, profile: "p", hostname: "a" }])).toEqual({ added: 1, removed: 0 });
    store.setNext(A, "local");
    const token = store.get(A)!.configToken;
    store.syncFromConfig([{ mac: A, profile: "p", hostname: "a2" }]);
    expect(store.get(A)).toMatchObject({ hostname: "a2", next: "local", configToken: token, source: "config" });
    expect(store.syncFromConfig([])).toEqual({ added: 0, removed: 1 });
    expect(store.list().map((m) => m.mac)).toEqual([B]);
  });

  it("rotates the config token when a machine is re-provisioned, not otherwise", () => {
    const store = new MachineStore(openMemoryDatabase());
    const t0 = store.upsert({ mac: A, profile: "p", hostname: null, bootfile: null, source: "api" }).configToken;
    expect(t0).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(store.upsert({ mac: A, profile: "p", hostname: "x", bootfile: null, source: "api" }).configToken).toBe(t0);
    expect(store.setNext(A, "local")!.configToken).toBe(t0);
    const t1 = store.setNext(A, "profile")!.configToken;
    expect(t1).not.toBe(t0);
    const t2 = store.upsert({ mac: A, profile: "other", hostname: "x", bootfile: null, source: "api" }).configToken;
    expect(t2).not.toBe(t1);
  });

  it("keeps only the newest timeline entries", () => {
    const store = new MachineStore(openMemoryDatabase(), 10);
    store.upsert({ mac: A, profile: "p", hostname: null, bootfile: null, source: "api" });
    for (let i = 0; i < 25; i++) store.record(A, "script", { i });
    const tl = store.timeline(A);
    expect(tl).toHaveLength(10);
    expect(tl[0]!.details).toEqual({ i: 15 });
    expect(tl[9]!.details).toEqual({ i: 24 });
    expect(store.get(A)!.lastSeen).not.toBeNull();
  });

  it("persists machines across reopen, in a database only its owner can read", () => {
    const dir = tempDir();
    const db = openDatabase(dir);
    new MachineStore(db).upsert({ mac: A, profile: "p", hostname: "a", bootfile: null, source: "api" });
    db.close();
    expect(statSync(join(dir, "talos-netboot.db")).mode & 0o777).toBe(0o600);
    const again = new MachineStore(openDatabase(dir));
    expect(again.get(A)).toMatchObject({ hostname: "a", source: "api" });
  });

  it("remembers at most MAX_UNKNOWN unknown MACs, forgetting the least recently seen", () => {
    let t = 0;
    const store = new MachineStore(openMemoryDatabase(), 200, () => new Date(1_700_000_000_000 + t++ * 1000));
    const macOf = (i: number) => macFromBytes(Buffer.from([0x02, 0, (i >> 16) & 255, (i >> 8) & 255, i & 255, 0]));
    for (let i = 0; i <= MAX_UNKNOWN; i++) store.recordUnknown(macOf(i), {});
    const unknown = store.listUnknown();
    expect(unknown).toHaveLength(MAX_UNKNOWN);
    expect(unknown.some((u) => u.mac === macOf(0))).toBe(false);
    expect(unknown[0]!.mac).toBe(macOf(MAX_UNKNOWN));
  });

  it("answers the newest recorded architecture and whether a step happened", () => {
    const store = new MachineStore(openMemoryDatabase());
    store.upsert({ mac: A, profile: "p", hostname: null, bootfile: null, source: "api" });
    expect(store.lastArch(A)).toBeUndefined();
    store.record(A, "dhcp-offer", { arch: 7 });
    store.record(A, "dhcp-offer", { arch: 11 });
    store.record(A, "script", { via: "ipxe" });
    store.record(A, "dhcp-ignored", { arch: null });
    expect(store.lastArch(A)).toBe(11);
    expect(store.hasStep(A, "script")).toBe(true);
    expect(store.hasStep(A, "config")).toBe(false);
  });
});

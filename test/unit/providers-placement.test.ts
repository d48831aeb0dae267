import { describe, expect, it } from "vitest";
import { KeyedLimiter } from "../../src/providers/limiter.js";
import { choosePlacement, type PlacementInput } from "../../src/providers/placement.js";

const base: PlacementInput = {
  hosts: ["pve1", "pve2", "pve3"],
  role: "controlplane",
  siblings: [],
  antiAffinity: "SOFT",
  preferredNodes: [],
  avoidNodes: [],
  targetHost: undefined,
};
const place = (over: Partial<PlacementInput>) => choosePlacement({ ...base, ...over });

describe("placement", () => {
  it("spreads a role across hosts, counting only the same role first", () => {
    expect(place({})).toEqual({ ok: true, node: "pve1" });
    expect(place({ siblings: [{ node: "pve1", role: "controlplane" }] })).toEqual({ ok: true, node: "pve2" });
    const siblings = [
      { node: "pve1", role: "controlplane" },
      { node: "pve2", role: "controlplane" },
      { node: "pve3", role: "worker" },
      { node: "pve3", role: "worker" },
    ];
    expect(place({ siblings })).toEqual({ ok: true, node: "pve3" });
    expect(place({ siblings, role: "worker" })).toEqual({ ok: true, node: "pve1" });
  });

  it("NONE balances the cluster's VM count only", () => {
    const siblings = [
      { node: "pve1", role: "worker" },
      { node: "pve2", role: "controlplane" },
      { node: "pve2", role: "worker" },
    ];
    expect(place({ antiAffinity: "NONE", siblings })).toEqual({ ok: true, node: "pve3" });
    expect(place({ antiAffinity: "NONE", siblings: [...siblings, { node: "pve3", role: "controlplane" }] })).toEqual({ ok: true, node: "pve1" });
  });

  it("HARD refuses to double up", () => {
    const siblings = base.hosts.map((h) => ({ node: h, role: "controlplane" }));
    expect(place({ antiAffinity: "HARD", siblings: siblings.slice(0, 2) })).toEqual({ ok: true, node: "pve3" });
    const r = place({ antiAffinity: "HARD", siblings });
    expect(r.ok).toBe(false);
    expect(place({ antiAffinity: "SOFT", siblings }).ok).toBe(true);
  });

  it("targetHost wins, but must be usable and not avoided", () => {
    expect(place({ targetHost: "pve3", siblings: [{ node: "pve1", role: "worker" }] })).toEqual({ ok: true, node: "pve3" });
    expect(place({ targetHost: "pve9" })).toMatchObject({ ok: false, reason: expect.stringContaining("pve9") });
    expect(place({ targetHost: "pve2", avoidNodes: ["pve2"] }).ok).toBe(false);
  });

  it("avoids, and prefers when a preferred host is usable", () => {
    expect(place({ avoidNodes: ["pve1"] })).toEqual({ ok: true, node: "pve2" });
    expect(place({ preferredNodes: ["pve3"] })).toEqual({ ok: true, node: "pve3" });
    expect(place({ preferredNodes: ["pve3"], avoidNodes: ["pve3"] })).toEqual({ ok: true, node: "pve1" });
    expect(place({ preferredNodes: ["gone"] })).toEqual({ ok: true, node: "pve1" });
    expect(place({ avoidNodes: base.hosts.slice() }).ok).toBe(false);
    expect(place({ hosts: [] }).ok).toBe(false);
  });

  it("HARD takes a non-preferred host rather than doubling up on a preferred one", () => {
    expect(place({ antiAffinity: "HARD", preferredNodes: ["pve1"], siblings: [{ node: "pve1", role: "controlplane" }] })).toEqual({ ok: true, node: "pve2" });
  });
});

describe("KeyedLimiter", () => {
  it("runs at most max per key, the rest in order, keys independent", async () => {
    const lim = new KeyedLimiter(2);
    const running = new Map<string, number>();
    const peak = new Map<string, number>();
    const order: number[] = [];
    const gates: Array<() => void> = [];
    const job = (key: string, i: number) =>
      lim.run(key, async () => {
        running.set(key, (running.get(key) ?? 0) + 1);
        peak.set(key, Math.max(peak.get(key) ?? 0, running.get(key)!));
        order.push(i);
        await new Promise<void>((r) => gates.push(r));
        running.set(key, running.get(key)! - 1);
        return i;
      });
    const all = [job("a", 0), job("a", 1), job("a", 2), job("a", 3), job("b", 4)];
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual([0, 1, 4]);
    expect(lim.running("a")).toBe(2);
    // Release gates one by one until everything ran (bounded).
    for (let i = 0; i < 20 && gates.length > 0; i++) {
      gates.shift()!();
      await new Promise((r) => setImmediate(r));
    }
    expect(await Promise.all(all)).toEqual([0, 1, 2, 3, 4]);
    expect(order).toEqual([0, 1, 4, 2, 3]);
    expect(peak.get("a")).toBe(2);
    expect(lim.running("a")).toBe(0);
  });

  it("frees the slot when the job throws", async () => {
    const lim = new KeyedLimiter(1);
    await expect(lim.run("k", () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    await expect(lim.run("k", async () => 7)).resolves.toBe(7);
  });
});

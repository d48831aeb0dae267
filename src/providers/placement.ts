/**
 * Which hypervisor host a new VM goes to. Pure: the caller passes the hosts
 * that are up and the cluster's VMs already placed (recorded or in flight).
 *
 * Rules, in order: `targetHost` wins (and must be a usable host); avoided
 * hosts are never used; preferred hosts are used when any is usable;
 * anti-affinity spreads VMs of the same role (control planes first of all)
 * across hosts — SOFT picks the host with the fewest same-role siblings, HARD
 * fails rather than doubling up, NONE only balances the cluster's VM count.
 * Ties go to the host with fewer cluster VMs, then to the configured order.
 */
import type { AntiAffinity, VmRole } from "./types.js";

export interface PlacementInput {
  /** Usable hosts, in configured order. */
  hosts: readonly string[];
  role: VmRole;
  /** The cluster's other VMs with a host. */
  siblings: ReadonlyArray<{ node: string | null; role: string }>;
  antiAffinity: AntiAffinity;
  preferredNodes: readonly string[];
  avoidNodes: readonly string[];
  targetHost: string | undefined;
}

export type PlacementDecision = { ok: true; node: string } | { ok: false; reason: string };

export function choosePlacement(input: PlacementInput): PlacementDecision {
  const { hosts } = input;
  if (input.targetHost !== undefined) {
    if (!hosts.includes(input.targetHost)) {
      return { ok: false, reason: `targetHost ${input.targetHost} is not a usable host (usable: ${hosts.join(", ") || "none"})` };
    }
    if (input.avoidNodes.includes(input.targetHost)) {
      return { ok: false, reason: `targetHost ${input.targetHost} is also in avoidNodes` };
    }
    return { ok: true, node: input.targetHost };
  }
  const candidates = hosts.filter((h) => !input.avoidNodes.includes(h));
  if (candidates.length === 0) {
    return { ok: false, reason: `no usable host left after avoidNodes (usable: ${hosts.join(", ") || "none"})` };
  }
  const preferred = candidates.filter((h) => input.preferredNodes.includes(h));
  const sameRole = countBy(input.siblings.filter((s) => s.role === input.role));
  const all = countBy(input.siblings);

  const pick = (pool: string[]): string => {
    const score = (h: string): number[] =>
      input.antiAffinity === "NONE" ? [all.get(h) ?? 0, pool.indexOf(h)] : [sameRole.get(h) ?? 0, all.get(h) ?? 0, pool.indexOf(h)];
    return [...pool].sort((a, b) => compareTuples(score(a), score(b)))[0]!;
  };

  if (input.antiAffinity === "HARD") {
    for (const pool of [preferred, candidates]) {
      const free = pool.filter((h) => (sameRole.get(h) ?? 0) === 0);
      if (free.length > 0) return { ok: true, node: pick(free) };
    }
    return { ok: false, reason: `anti-affinity HARD: every usable host already runs a ${input.role} of this cluster` };
  }
  return { ok: true, node: pick(preferred.length > 0 ? preferred : candidates) };
}

function countBy(items: ReadonlyArray<{ node: string | null }>): Map<string, number> {
  const m = new Map<string, number>();
  for (const i of items) if (i.node !== null) m.set(i.node, (m.get(i.node) ?? 0) + 1);
  return m;
}

function compareTuples(a: number[], b: number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i]! - b[i]!;
  }
  return 0;
}

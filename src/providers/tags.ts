/**
 * Ownership by tags, and safe mode. A VM is ours when it carries
 * `cluster-<name>` (Moxxie's convention: `moxxie;cluster-<name>;role-<role>`).
 * Safe mode: a VM without that tag is never modified or deleted, whatever the
 * request says — an operator's hand-made VM that happens to share a name or
 * a VMID is left alone.
 */
import { SafeModeError } from "./errors.js";
import type { VmRole } from "./types.js";

export const OWNER_TAG = "moxxie";
export const clusterTag = (cluster: string): string => `cluster-${cluster}`;
export const roleTag = (role: VmRole): string => `role-${role}`;

/** The tags a new VM gets, in PVE's order (sorted, unique). */
export function vmTags(cluster: string, role: VmRole, extra: readonly string[]): string[] {
  return normaliseTags([OWNER_TAG, clusterTag(cluster), roleTag(role), ...extra]);
}

/** PVE stores tags lower-cased, sorted and de-duplicated; it splits lists on `;`, `,` and spaces. */
export function parseTagList(text: string | undefined | null): string[] {
  if (!text) return [];
  return normaliseTags(text.split(/[;, ]+/));
}

export function normaliseTags(tags: readonly string[]): string[] {
  return [...new Set(tags.map((t) => t.trim().toLowerCase()).filter((t) => t.length > 0))].sort();
}

/** The clusters a VM's tags name (normally exactly one). */
export function clustersOf(tags: readonly string[]): string[] {
  return tags.filter((t) => t.startsWith("cluster-")).map((t) => t.slice("cluster-".length));
}

export function roleOf(tags: readonly string[]): VmRole | null {
  if (tags.includes(roleTag("controlplane"))) return "controlplane";
  if (tags.includes(roleTag("worker"))) return "worker";
  return null;
}

/**
 * Throws SafeModeError unless the VM carries the cluster's tag. Without a
 * cluster (an operation by VMID), the VM must name exactly one cluster, which
 * is returned.
 */
export function assertOwned(tags: readonly string[], cluster: string | undefined, vm: string, action: string): string {
  const owners = clustersOf(tags);
  if (cluster !== undefined) {
    if (owners.includes(cluster)) return cluster;
    throw new SafeModeError(
      `refusing to ${action} ${vm}: it does not carry the tag ${clusterTag(cluster)}`,
      owners.length === 0
        ? `${vm} has no cluster-* tag (tags: ${tags.join(";") || "none"}): it was not created by talos-netboot or Moxxie`
        : `${vm} belongs to ${owners.map(clusterTag).join(", ")}, not ${clusterTag(cluster)}`,
      `check the VMID or cluster name; to manage this VM anyway, add the tag ${clusterTag(cluster)} to it in Proxmox yourself`,
    );
  }
  if (owners.length === 1) return owners[0]!;
  throw new SafeModeError(
    `refusing to ${action} ${vm}: ${owners.length === 0 ? "it carries no cluster-* tag" : `it carries several cluster tags (${owners.map(clusterTag).join(", ")})`}`,
    owners.length === 0 ? `${vm} has no cluster-* tag (tags: ${tags.join(";") || "none"}): it was not created by talos-netboot or Moxxie` : `${vm}'s owner is ambiguous`,
    "name the cluster (--cluster) or fix the VM's tags in Proxmox",
  );
}

/** Which PVE node a VM goes to, and again when its recorded one is gone. */
import type { VmRecord } from "../../store/vms.js";
import { PlacementError } from "../errors.js";
import { choosePlacement } from "../placement.js";
import type { VmSpec } from "../types.js";
import type { PveContext } from "./context.js";
import { usableHosts } from "./state.js";

export function place(spec: VmSpec, hosts: string[], siblings: VmRecord[]): string {
  const d = choosePlacement({
    hosts,
    role: spec.role,
    siblings: siblings.filter((s) => s.name !== spec.name),
    antiAffinity: spec.placement.antiAffinity,
    preferredNodes: spec.placement.preferredNodes,
    avoidNodes: spec.placement.avoidNodes,
    targetHost: spec.placement.targetHost,
  });
  if (!d.ok) throw new PlacementError(`cannot place ${spec.cluster}/${spec.name}: ${d.reason}`);
  return d.node;
}

/** The recorded host, or a new choice when it is gone (offline or no longer configured). */
export async function nodeFor(ctx: PveContext, rec: VmRecord, spec: VmSpec): Promise<string> {
  const hosts = await usableHosts(ctx);
  if (rec.node && hosts.includes(rec.node)) return rec.node;
  const node = place(spec, hosts, ctx.store.listCluster("proxmox", rec.cluster));
  ctx.store.update("proxmox", rec.cluster, rec.name, { node });
  ctx.log.warn({ cluster: rec.cluster, name: rec.name, was: rec.node, node }, "recorded host unusable: VM placed again");
  return node;
}

/** Reading what PVE has: online nodes, a VM's config, its power state. */
import { parseTagList, roleOf } from "../tags.js";
import type { PowerState, VmInfo } from "../types.js";
import { pvePath } from "./client.js";
import type { PveContext } from "./context.js";
import { PveHttpError } from "./errors.js";
import { parseNet } from "./params.js";
import { configSchema, nodesSchema, statusSchema, type Located, type PveConfig } from "./schemas.js";

/** Configured nodes that PVE reports online, in configured order. */
export async function usableHosts(ctx: PveContext): Promise<string[]> {
  const nodes = await ctx.client.get("/nodes", nodesSchema);
  const online = new Set(nodes.filter((n) => n.status === undefined || n.status === "online").map((n) => n.node));
  return ctx.cfg.nodes.filter((n) => online.has(n));
}

/** The VM's config without pending changes, or null when PVE says it does not exist. */
export async function readConfig(ctx: PveContext, node: string, vmid: number): Promise<PveConfig | null> {
  try {
    return await ctx.client.get(pvePath`/nodes/${node}/qemu/${vmid}/config`, configSchema, { current: 1 });
  } catch (err) {
    if (err instanceof PveHttpError && err.isMissingVm) return null;
    throw err;
  }
}

export async function power(ctx: PveContext, loc: Located): Promise<PowerState> {
  const st = await ctx.client.get(pvePath`/nodes/${loc.node}/qemu/${loc.vmid}/status/current`, statusSchema);
  return powerState(st.status, st.qmpstatus);
}

export async function infoOf(ctx: PveContext, loc: Located, knownStatus?: string): Promise<VmInfo> {
  const tags = parseTagList(loc.config.tags);
  const status = knownStatus !== undefined ? powerState(knownStatus) : await power(ctx, loc);
  const mac = loc.config.net0 ? parseNet(loc.config.net0).mac : null;
  return { provider: "proxmox", cluster: loc.cluster, name: loc.name, role: roleOf(tags), vmid: loc.vmid, node: loc.node, mac, status, tags };
}

function powerState(status: string, qmpstatus?: string): PowerState {
  if (status === "running") return qmpstatus === "paused" || qmpstatus === "suspended" ? "paused" : "running";
  if (status === "stopped") return "stopped";
  return "unknown";
}

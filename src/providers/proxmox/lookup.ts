/**
 * Finding a VM before acting on it, and adopting one a lost or failed create
 * may have made: a VM is ours only with our tag, name and MAC (DESIGN §5).
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { VmRecord } from "../../store/vms.js";
import { ProviderError, SafeModeError, VmConflictError } from "../errors.js";
import { sameMac } from "../mac.js";
import { assertOwned, clusterTag, parseTagList } from "../tags.js";
import type { VmKey } from "../types.js";
import { pvePath } from "./client.js";
import type { PveContext } from "./context.js";
import { PveTaskError } from "./errors.js";
import { parseNet } from "./params.js";
import { vmListSchema, type Located, type PveConfig } from "./schemas.js";
import { readConfig, usableHosts } from "./state.js";
import { awaitTaskOf } from "./tasks.js";

export function matches(config: PveConfig, rec: VmRecord): boolean {
  const mac = config.net0 ? parseNet(config.net0).mac : null;
  return config.name === rec.name && parseTagList(config.tags).includes(clusterTag(rec.cluster)) && mac !== null && sameMac(mac, rec.mac);
}

/**
 * The VM this record stands for, if it exists: at its recorded VMID, else
 * anywhere on the configured nodes by our tag + name + MAC — also for a
 * fresh record, so a request resumed after our state was lost still finds
 * its VM (or refuses: same name and tag, another MAC).
 */
export async function findOurs(ctx: PveContext, rec: VmRecord): Promise<Located | null> {
  const hosts = await usableHosts(ctx);
  if (rec.vmid !== null && rec.node && !hosts.includes(rec.node) && ctx.cfg.nodes.includes(rec.node)) {
    throw new ProviderError("PVE_NODE_OFFLINE", `${rec.cluster}/${rec.name} was created on ${rec.node}, which is offline: its state is unknown`, 503);
  }
  if (rec.vmid !== null && rec.node) {
    const config = await settledConfig(ctx, rec.node, rec.vmid);
    if (config && matches(config, rec)) return { node: rec.node, vmid: rec.vmid, cluster: rec.cluster, name: rec.name, config };
  }
  const hits: Located[] = [];
  const others: number[] = [];
  for (const node of hosts) {
    const vms = await ctx.client.get(pvePath`/nodes/${node}/qemu`, vmListSchema);
    for (const v of vms) {
      if (v.name !== rec.name || !parseTagList(v.tags).includes(clusterTag(rec.cluster))) continue;
      const config = await readConfig(ctx, node, v.vmid);
      if (config && matches(config, rec)) hits.push({ node, vmid: v.vmid, cluster: rec.cluster, name: rec.name, config });
      else if (config) others.push(v.vmid);
    }
  }
  if (hits.length > 1) throw new VmConflictError(`${rec.cluster}/${rec.name} exists ${hits.length} times (VMIDs ${hits.map((h) => h.vmid).join(", ")}) with MAC ${rec.mac}`);
  if (hits.length === 0 && others.length > 0) {
    throw new VmConflictError(`${rec.cluster}/${rec.name} exists as VMID ${others.join(", ")} but with another MAC than the recorded ${rec.mac}: destroy it or use another name`);
  }
  return hits[0] ?? null;
}

/**
 * Finds the VM for an operation and checks it is ours. By name: the record's
 * VMID first, then every node. By VMID: the record, then every node.
 * Returns null when there is no such VM; throws SafeModeError when the VM
 * found lacks the cluster's tag.
 */
export async function locate(ctx: PveContext, key: VmKey, action: string): Promise<Located | null> {
  if ("vmid" in key) {
    const rec = ctx.store.getByVmid("proxmox", key.vmid);
    let node: string | undefined;
    let config: PveConfig | null = null;
    if (rec?.node) {
      config = await readConfig(ctx, rec.node, key.vmid);
      if (config) node = rec.node;
    }
    if (!config) {
      for (const n of await usableHosts(ctx)) {
        const vms = await ctx.client.get(pvePath`/nodes/${n}/qemu`, vmListSchema);
        if (vms.some((v) => v.vmid === key.vmid)) {
          config = await readConfig(ctx, n, key.vmid);
          if (config) node = n;
          break;
        }
      }
    }
    if (!config || !node) return null;
    const cluster = assertOwned(parseTagList(config.tags), key.cluster, `VM ${key.vmid}`, action);
    return { node, vmid: key.vmid, cluster, name: config.name ?? "", config };
  }
  const rec = ctx.store.get("proxmox", key.cluster, key.name);
  const hosts = await usableHosts(ctx);
  if (rec?.vmid != null && rec.node && !hosts.includes(rec.node) && ctx.cfg.nodes.includes(rec.node)) {
    throw new ProviderError("PVE_NODE_OFFLINE", `${key.cluster}/${key.name} is on ${rec.node}, which is offline: cannot ${action} it now`, 503);
  }
  if (rec?.vmid != null && rec.node) {
    const config = await readConfig(ctx, rec.node, rec.vmid);
    if (config && config.name === key.name) {
      assertOwned(parseTagList(config.tags), key.cluster, `VM ${rec.vmid} (${key.name})`, action);
      return { node: rec.node, vmid: rec.vmid, cluster: key.cluster, name: key.name, config };
    }
  }
  const tagged: Located[] = [];
  const untagged: number[] = [];
  for (const node of hosts) {
    const vms = await ctx.client.get(pvePath`/nodes/${node}/qemu`, vmListSchema);
    for (const v of vms.filter((x) => x.name === key.name)) {
      if (!parseTagList(v.tags).includes(clusterTag(key.cluster))) {
        untagged.push(v.vmid);
        continue;
      }
      const config = await readConfig(ctx, node, v.vmid);
      if (config) tagged.push({ node, vmid: v.vmid, cluster: key.cluster, name: key.name, config });
    }
  }
  if (tagged.length > 1) {
    const byMac = rec ? tagged.filter((t) => matches(t.config, rec)) : [];
    if (byMac.length === 1) return byMac[0]!;
    throw new VmConflictError(`${key.cluster}/${key.name} matches ${tagged.length} VMs (VMIDs ${tagged.map((t) => t.vmid).join(", ")}): name one by --vmid`);
  }
  if (tagged.length === 1) return tagged[0]!;
  if (untagged.length > 0) {
    throw new SafeModeError(
      `refusing to ${action} ${key.cluster}/${key.name}: the VM named ${key.name} (VMID ${untagged.join(", ")}) does not carry the tag ${clusterTag(key.cluster)}`,
      `VMID ${untagged.join(", ")} was not created for cluster ${key.cluster}`,
      `check the cluster name; to manage this VM anyway, add the tag ${clusterTag(key.cluster)} to it in Proxmox yourself`,
    );
  }
  return null;
}

/**
 * The VM's config once no create is running on it; null when there is
 * (then) no VM — a failed create removes its config. Waits for the create
 * task when we can see it, else for the lock to go, within the task timeout.
 */
export async function settledConfig(ctx: PveContext, node: string, vmid: number): Promise<PveConfig | null> {
  let config = await readConfig(ctx, node, vmid);
  if (config?.lock !== "create") return config;
  let seen = false;
  try {
    seen = await awaitTaskOf(ctx, node, vmid, "qmcreate");
  } catch (err) {
    if (!(err instanceof PveTaskError)) throw err;
    seen = true;
  }
  config = await readConfig(ctx, node, vmid);
  const deadline = Date.now() + ctx.cfg.taskTimeoutSec * 1000;
  while (!seen && config?.lock === "create" && Date.now() < deadline) {
    await sleep(ctx.pollMs);
    config = await readConfig(ctx, node, vmid);
  }
  return config;
}

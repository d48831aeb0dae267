/** The create call itself: never resent blind, retried with a fresh VMID when another client took ours. */
import type { VmRecord } from "../../store/vms.js";
import { ProviderError } from "../errors.js";
import { vmTags } from "../tags.js";
import type { VmSpec } from "../types.js";
import { pvePath } from "./client.js";
import type { PveContext } from "./context.js";
import { PveHttpError, PveIndeterminateError } from "./errors.js";
import { matches, settledConfig } from "./lookup.js";
import { createParams, parseNet } from "./params.js";
import { upidSchema, type Located } from "./schemas.js";
import { readConfig } from "./state.js";
import { task } from "./tasks.js";
import type { VmidAllocator } from "./vmid.js";

/** Tries of a create with a fresh VMID when another client took ours. */
const VMID_ATTEMPTS = 8;

/** Creates the VM on `node`, or adopts the one an answered-with-error create made; the caller holds the node's slot. */
export async function createOn(ctx: PveContext, vmids: VmidAllocator, node: string, rec: VmRecord, spec: VmSpec): Promise<Located> {
  const tags = vmTags(spec.cluster, spec.role, spec.tags);
  const defaults = {
    storage: ctx.cfg.storage,
    efiStorage: ctx.cfg.efiStorage ?? ctx.cfg.storage,
    bridge: ctx.cfg.bridge,
    vlan: ctx.cfg.vlan,
    firmware: ctx.cfg.firmware,
  };
  let vmid = await vmids.next();
  let resentSameVmid = false;
  try {
    for (let attempt = 1; attempt <= VMID_ATTEMPTS; attempt++) {
      // Recorded before sending: a crash or a lost answer leaves a trace to look for.
      ctx.store.update("proxmox", rec.cluster, rec.name, { node, vmid, state: "creating" });
      const params = createParams(spec, vmid, rec.mac, tags, defaults);
      let upid: string | null = null;
      try {
        upid = await ctx.client.post(pvePath`/nodes/${node}/qemu`, params, upidSchema);
      } catch (err) {
        const taken = err instanceof PveHttpError && err.isVmidTaken;
        if (!taken && !(err instanceof PveIndeterminateError)) throw err;
        // Either way: what is at this VMID now? (A create in flight holds only `lock: create`.)
        const config = await settledConfig(ctx, node, vmid);
        if (config && matches(config, rec)) {
          ctx.log.info({ node, vmid, err: (err as Error).message }, "create answered with an error but the VM is ours: adopting it");
        } else if (config || taken) {
          ctx.log.info({ node, vmid }, "VMID taken by another VM: trying the next one");
          vmids.markTaken(vmid);
          vmid = await vmids.next();
          continue;
        } else if (!resentSameVmid) {
          // Nothing there: the create did not run. Once more with the same VMID
          // (should the first still land, the second fails "already exists" and we adopt).
          resentSameVmid = true;
          continue;
        } else {
          throw err;
        }
      }
      if (upid !== null) await task(ctx, upid);
      const config = await readConfig(ctx, node, vmid);
      if (!config) throw new ProviderError("PVE_CREATE_LOST", `VM ${vmid} on ${node}: the create task ended OK but the VM is not there`, 502);
      if (!matches(config, rec)) {
        const got = config.net0 ? parseNet(config.net0).mac : null;
        throw new ProviderError("PVE_CREATE_MISMATCH", `VM ${vmid} on ${node} was created with net0 MAC ${got ?? "none"}, not ${rec.mac}`, 502, { net0: config.net0 });
      }
      return { node, vmid, cluster: rec.cluster, name: rec.name, config };
    }
    throw new ProviderError("PVE_NO_VMID", `no free VMID after ${VMID_ATTEMPTS} tries (other clients keep taking them)`, 503);
  } finally {
    vmids.release(vmid);
  }
}

/**
 * VMs on Proxmox VE. Facts from PVE's source are in DESIGN §5; the rules we
 * add on top:
 * - the MAC and the host are chosen and recorded (src/store/vms.ts) before
 *   any request is sent; a create that was (or may have been) sent is
 *   recorded with its VMID, so a retry looks before it creates again;
 * - a VM is "ours" when it carries `cluster-<name>`; one that does not is
 *   never modified or deleted (SafeModeError), and a create reuses an
 *   existing VM only when our tags, name and MAC all match;
 * - no blind retry of a POST: after 595/596 or a lost answer the state is
 *   read first;
 * - create/start/stop/delete/config run at most `maxConcurrentPerNode` at a
 *   time per PVE node, each holding its slot until its task ended.
 */
import type { Mac } from "../../boot/mac.js";
import type { Logger } from "../../log.js";
import { silentLogger } from "../../log.js";
import type { VmStore } from "../../store/vms.js";
import type { ProxmoxProviderConfig } from "../config.js";
import { ProviderError, VmNotFoundError } from "../errors.js";
import { KeyedLimiter } from "../limiter.js";
import { parseMacPrefix } from "../mac.js";
import { checkRecord, reservationOf, reserveVm } from "../reserve.js";
import { clusterTag, parseTagList } from "../tags.js";
import type { BootOrder, BootOrderResult, CreateResult, StopOptions, VmInfo, VmKey, VmProvider, VmReservation, VmSpec } from "../types.js";
import { vmKeyText } from "../types.js";
import { PveClient, pvePath } from "./client.js";
import { pveClientFromConfig } from "./client-config.js";
import type { PveContext } from "./context.js";
import { createOn } from "./create.js";
import { PveIndeterminateError, PveTaskError, PveTaskTimeoutError } from "./errors.js";
import { findOurs, locate } from "./lookup.js";
import { bootDiskOf, bootParam } from "./params.js";
import { nodeFor, place } from "./place.js";
import { configSchema, upidSchema, vmListSchema, type Located } from "./schemas.js";
import { infoOf, power, readConfig, usableHosts } from "./state.js";
import { awaitTaskOf, task } from "./tasks.js";
import { VmidAllocator } from "./vmid.js";

export { pveClientFromConfig };

export interface ProxmoxProviderOptions {
  config: ProxmoxProviderConfig;
  client: PveClient;
  store: VmStore;
  log?: Logger;
  /** MACs taken outside provider_vms (e.g. machines registered by hand). */
  macTaken?: (mac: Mac) => boolean;
  random?: (n: number) => Uint8Array;
  /** First task poll delay; tests shorten it. */
  taskPollMs?: number;
}

export class ProxmoxProvider implements VmProvider {
  readonly kind = "proxmox" as const;
  private readonly cfg: ProxmoxProviderConfig;
  private readonly client: PveClient;
  private readonly store: VmStore;
  private readonly log: Logger;
  private readonly ctx: PveContext;
  private readonly limiter: KeyedLimiter;
  private readonly macPrefix: Uint8Array;
  private readonly macTaken: (mac: Mac) => boolean;
  private readonly random: ((n: number) => Uint8Array) | undefined;
  private readonly perVm = new KeyedLimiter(1);
  private readonly vmids: VmidAllocator;

  constructor(opts: ProxmoxProviderOptions) {
    this.cfg = opts.config;
    this.client = opts.client;
    this.store = opts.store;
    this.log = opts.log ?? silentLogger();
    this.limiter = new KeyedLimiter(opts.config.maxConcurrentPerNode);
    const prefix = parseMacPrefix(opts.config.macPrefix);
    if (!prefix) throw new ProviderError("CONFIG", `providers.proxmox.macPrefix ${opts.config.macPrefix} is not a locally administered unicast prefix`);
    this.macPrefix = prefix;
    this.macTaken = opts.macTaken ?? (() => false);
    this.random = opts.random;
    this.ctx = { cfg: this.cfg, client: this.client, store: this.store, log: this.log, pollMs: opts.taskPollMs ?? 500 };
    this.vmids = new VmidAllocator(this.ctx);
  }

  // ---- reserve / create ------------------------------------------------

  async reserve(spec: VmSpec): Promise<VmReservation> {
    const existing = this.store.get("proxmox", spec.cluster, spec.name);
    if (existing) return reservationOf(checkRecord(existing, spec), false);
    const hosts = await usableHosts(this.ctx);
    const { record, isNew } = reserveVm(
      { store: this.store, provider: "proxmox", macPrefix: this.macPrefix, macTaken: this.macTaken, random: this.random },
      spec,
      (siblings) => place(spec, hosts, siblings),
    );
    if (isNew) this.log.info({ cluster: spec.cluster, name: spec.name, mac: record.mac, node: record.node }, "VM reserved: MAC and host recorded");
    return reservationOf(record, isNew);
  }

  /** One create per VM at a time in this process: two concurrent requests for one name make one VM. */
  create(spec: VmSpec): Promise<CreateResult> {
    return this.perVm.run(`${spec.cluster}/${spec.name}`, () => this.createOnce(spec));
  }

  private async createOnce(spec: VmSpec): Promise<CreateResult> {
    await this.reserve(spec);
    let rec = this.store.get("proxmox", spec.cluster, spec.name)!;
    const found = await findOurs(this.ctx, rec);
    if (found) {
      rec = this.store.update("proxmox", rec.cluster, rec.name, { node: found.node, vmid: found.vmid, state: "created" })!;
      this.log.info({ cluster: rec.cluster, name: rec.name, vmid: found.vmid, node: found.node }, "VM exists already: reused");
      return { vm: await infoOf(this.ctx, found), created: false };
    }
    const node = await nodeFor(this.ctx, rec, spec);
    const loc = await this.limiter.run(node, () => createOn(this.ctx, this.vmids, node, rec, spec));
    this.store.update("proxmox", rec.cluster, rec.name, { node: loc.node, vmid: loc.vmid, state: "created" });
    this.log.info({ cluster: rec.cluster, name: rec.name, vmid: loc.vmid, node: loc.node, mac: rec.mac }, "VM created");
    return { vm: await infoOf(this.ctx, loc), created: true };
  }

  // ---- power, boot order, destroy -------------------------------------

  async start(key: VmKey): Promise<VmInfo> {
    const loc = await locate(this.ctx, key, "start");
    if (!loc) throw new VmNotFoundError(vmKeyText(key));
    await this.limiter.run(loc.node, async () => {
      if ((await power(this.ctx, loc)) === "running") return;
      const path = pvePath`/nodes/${loc.node}/qemu/${loc.vmid}/status/start`;
      try {
        try {
          await task(this.ctx, await this.client.post(path, {}, upidSchema));
        } catch (err) {
          if (!(err instanceof PveIndeterminateError)) throw err;
          // It may have run: wait for its task if there is one, and start only if still stopped.
          await awaitTaskOf(this.ctx, loc.node, loc.vmid, "qmstart");
          if ((await power(this.ctx, loc)) !== "running") await task(this.ctx, await this.client.post(path, {}, upidSchema));
        }
      } catch (err) {
        // A start that raced another one: the VM runs, which is what was asked.
        if (!(err instanceof PveTaskError && /already running/.test(err.exitstatus))) throw err;
      }
    });
    return infoOf(this.ctx, loc);
  }

  async stop(key: VmKey, opts: StopOptions = {}): Promise<VmInfo> {
    const loc = await locate(this.ctx, key, "stop");
    if (!loc) throw new VmNotFoundError(vmKeyText(key));
    const timeoutSec = opts.timeoutSec ?? this.cfg.shutdownTimeoutSec;
    await this.limiter.run(loc.node, async () => {
      if ((await power(this.ctx, loc)) === "stopped") return;
      try {
        // Graceful: ACPI power button; PVE fails the task after `timeout`.
        const upid = await this.client.post(pvePath`/nodes/${loc.node}/qemu/${loc.vmid}/status/shutdown`, { timeout: timeoutSec }, upidSchema);
        await task(this.ctx, upid, (timeoutSec + 30) * 1000);
      } catch (err) {
        if (!(err instanceof PveTaskError || err instanceof PveTaskTimeoutError || err instanceof PveIndeterminateError)) throw err;
        this.log.info({ vmid: loc.vmid, node: loc.node, err: err.message }, "graceful shutdown did not finish: stopping the VM");
      }
      if ((await power(this.ctx, loc)) !== "stopped") await this.forceStop(loc);
    });
    return infoOf(this.ctx, loc);
  }

  async destroy(key: VmKey): Promise<{ destroyed: boolean }> {
    const loc = await locate(this.ctx, key, "destroy");
    if (!loc) {
      if (!("vmid" in key)) this.store.remove("proxmox", key.cluster, key.name);
      return { destroyed: false };
    }
    await this.limiter.run(loc.node, async () => {
      if ((await power(this.ctx, loc)) !== "stopped") await this.forceStop(loc);
      const path = pvePath`/nodes/${loc.node}/qemu/${loc.vmid}`;
      try {
        await task(this.ctx, await this.client.delete(path, { purge: 1, "destroy-unreferenced-disks": 1 }, upidSchema));
      } catch (err) {
        if (!(err instanceof PveIndeterminateError)) throw err;
        // The delete may have run: look before asking again.
        if ((await readConfig(this.ctx, loc.node, loc.vmid)) !== null && !(await awaitTaskOf(this.ctx, loc.node, loc.vmid, "qmdestroy"))) {
          await task(this.ctx, await this.client.delete(path, { purge: 1, "destroy-unreferenced-disks": 1 }, upidSchema));
        }
      }
    });
    const rec = this.store.getByVmid("proxmox", loc.vmid);
    if (rec && rec.cluster === loc.cluster && rec.name === loc.name) this.store.remove("proxmox", rec.cluster, rec.name);
    this.log.info({ cluster: loc.cluster, name: loc.name, vmid: loc.vmid, node: loc.node }, "VM destroyed");
    return { destroyed: true };
  }

  async status(key: VmKey): Promise<VmInfo | null> {
    const loc = await locate(this.ctx, key, "read the status of");
    return loc ? infoOf(this.ctx, loc) : null;
  }

  async setBootOrder(key: VmKey, order: BootOrder): Promise<BootOrderResult> {
    const loc = await locate(this.ctx, key, "change the boot order of");
    if (!loc) throw new VmNotFoundError(vmKeyText(key));
    const value = bootParam(order, bootDiskOf(loc.config) ?? "scsi0");
    await this.limiter.run(loc.node, async () => {
      const path = pvePath`/nodes/${loc.node}/qemu/${loc.vmid}/config`;
      try {
        await task(this.ctx, await this.client.post(path, { boot: value }, upidSchema));
      } catch (err) {
        if (!(err instanceof PveIndeterminateError)) throw err;
        // Setting the same value twice is harmless: read, and send again only if it is not there.
        const cfg = await this.client.get(path, configSchema);
        if (cfg.boot !== value) await task(this.ctx, await this.client.post(path, { boot: value }, upidSchema));
      }
    });
    const current = await readConfig(this.ctx, loc.node, loc.vmid);
    return { pendingUntilRestart: current?.boot !== value };
  }

  async listByCluster(cluster: string): Promise<VmInfo[]> {
    const hosts = await usableHosts(this.ctx);
    const perNode = await Promise.all(
      hosts.map(async (node) => {
        const vms = await this.client.get(pvePath`/nodes/${node}/qemu`, vmListSchema);
        const ours = vms.filter((v) => parseTagList(v.tags).includes(clusterTag(cluster)));
        return Promise.all(
          ours.map(async (v) => {
            const config = await readConfig(this.ctx, node, v.vmid);
            if (!config) return null;
            return infoOf(this.ctx, { node, vmid: v.vmid, cluster, name: config.name ?? v.name ?? "", config }, v.status);
          }),
        );
      }),
    );
    return perNode
      .flat()
      .filter((v): v is VmInfo => v !== null)
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /** PVE's version (`GET /version`): proves URL, TLS trust and token. */
  async version(): Promise<string> {
    return (await this.client.version()).version;
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  private async forceStop(loc: Located): Promise<void> {
    try {
      await task(this.ctx, await this.client.post(pvePath`/nodes/${loc.node}/qemu/${loc.vmid}/status/stop`, {}, upidSchema));
    } catch (err) {
      if (!(err instanceof PveIndeterminateError)) throw err;
      // Stopping twice is harmless; only the VM's state tells.
      if ((await power(this.ctx, loc)) !== "stopped") {
        await task(this.ctx, await this.client.post(pvePath`/nodes/${loc.node}/qemu/${loc.vmid}/status/stop`, {}, upidSchema));
      }
    }
  }
}

/** Builds the provider from the `providers.proxmox` config. */
export function proxmoxProviderFromConfig(cfg: ProxmoxProviderConfig, deps: { store: VmStore; log?: Logger; macTaken?: (mac: Mac) => boolean }): ProxmoxProvider {
  const log = deps.log ?? silentLogger();
  return new ProxmoxProvider({ config: cfg, client: pveClientFromConfig(cfg, log), store: deps.store, log, macTaken: deps.macTaken });
}

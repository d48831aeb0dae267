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
import { readFileSync, statSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { z } from "zod";
import type { Mac } from "../../boot/mac.js";
import type { Logger } from "../../log.js";
import { silentLogger } from "../../log.js";
import type { VmRecord, VmStore } from "../../store/vms.js";
import type { ProxmoxProviderConfig } from "../config.js";
import { PlacementError, ProviderError, SafeModeError, VmConflictError, VmNotFoundError } from "../errors.js";
import { KeyedLimiter } from "../limiter.js";
import { parseMacPrefix, sameMac } from "../mac.js";
import { choosePlacement } from "../placement.js";
import { checkRecord, reservationOf, reserveVm } from "../reserve.js";
import { assertOwned, clusterTag, parseTagList, roleOf, vmTags } from "../tags.js";
import type { BootOrder, BootOrderResult, CreateResult, PowerState, StopOptions, VmInfo, VmKey, VmProvider, VmReservation, VmSpec } from "../types.js";
import { vmKeyText } from "../types.js";
import { PveClient, pvePath, type TaskOutcome } from "./client.js";
import { PveHttpError, PveIndeterminateError, PveTaskError, PveTaskTimeoutError } from "./errors.js";
import { bootDiskOf, bootParam, createParams, parseNet } from "./params.js";

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

/** Tries of a create with a fresh VMID when another client took ours. */
const VMID_ATTEMPTS = 8;

const vmidSchema = z.union([z.number().int(), z.string().regex(/^\d+$/).transform(Number)]);
const nodesSchema = z.array(z.object({ node: z.string(), status: z.string().optional() }).loose());
const vmListSchema = z.array(
  z.object({ vmid: vmidSchema, name: z.string().optional(), status: z.string().optional(), tags: z.string().optional(), lock: z.string().optional() }).loose(),
);
const configSchema = z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]).transform(String));
const statusSchema = z.object({ status: z.string(), qmpstatus: z.string().optional(), name: z.string().optional(), tags: z.string().optional(), lock: z.string().optional() }).loose();
const upidSchema = z.string().min(1);
const taskListSchema = z.array(z.object({ upid: z.string(), type: z.string().optional(), starttime: z.number().optional(), status: z.string().optional() }).loose());
const resourcesSchema = z.array(z.object({ vmid: vmidSchema.optional(), type: z.string().optional() }).loose());

type PveConfig = Record<string, string>;

/** Where a VM is and what it is, after the ownership check. */
interface Located {
  node: string;
  vmid: number;
  cluster: string;
  name: string;
  config: PveConfig;
}

export class ProxmoxProvider implements VmProvider {
  readonly kind = "proxmox" as const;
  private readonly cfg: ProxmoxProviderConfig;
  private readonly client: PveClient;
  private readonly store: VmStore;
  private readonly log: Logger;
  private readonly limiter: KeyedLimiter;
  private readonly macPrefix: Uint8Array;
  private readonly macTaken: (mac: Mac) => boolean;
  private readonly random: ((n: number) => Uint8Array) | undefined;
  private readonly pollMs: number;
  private readonly perVm = new KeyedLimiter(1);
  /** VMIDs this process is creating right now: never handed out twice. */
  private readonly inflightVmids = new Set<number>();
  /** VMIDs PVE told us are taken ("already exists"). */
  private readonly takenVmids = new Set<number>();

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
    this.pollMs = opts.taskPollMs ?? 500;
  }

  // ---- reserve / create ------------------------------------------------

  async reserve(spec: VmSpec): Promise<VmReservation> {
    const existing = this.store.get("proxmox", spec.cluster, spec.name);
    if (existing) return reservationOf(checkRecord(existing, spec), false);
    const hosts = await this.usableHosts();
    const { record, isNew } = reserveVm(
      { store: this.store, provider: "proxmox", macPrefix: this.macPrefix, macTaken: this.macTaken, random: this.random },
      spec,
      (siblings) => this.place(spec, hosts, siblings),
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
    const found = await this.findOurs(rec);
    if (found) {
      rec = this.store.update("proxmox", rec.cluster, rec.name, { node: found.node, vmid: found.vmid, state: "created" })!;
      this.log.info({ cluster: rec.cluster, name: rec.name, vmid: found.vmid, node: found.node }, "VM exists already: reused");
      return { vm: await this.infoOf(found), created: false };
    }
    const node = await this.nodeFor(rec, spec);
    const loc = await this.createOn(node, rec, spec);
    this.store.update("proxmox", rec.cluster, rec.name, { node: loc.node, vmid: loc.vmid, state: "created" });
    this.log.info({ cluster: rec.cluster, name: rec.name, vmid: loc.vmid, node: loc.node, mac: rec.mac }, "VM created");
    return { vm: await this.infoOf(loc), created: true };
  }

  // ---- power, boot order, destroy -------------------------------------

  async start(key: VmKey): Promise<VmInfo> {
    const loc = await this.locate(key, "start");
    if (!loc) throw new VmNotFoundError(vmKeyText(key));
    await this.limiter.run(loc.node, async () => {
      if ((await this.power(loc)) === "running") return;
      const path = pvePath`/nodes/${loc.node}/qemu/${loc.vmid}/status/start`;
      try {
        try {
          await this.task(await this.client.post(path, {}, upidSchema));
        } catch (err) {
          if (!(err instanceof PveIndeterminateError)) throw err;
          // It may have run: wait for its task if there is one, and start only if still stopped.
          await this.awaitTaskOf(loc.node, loc.vmid, "qmstart");
          if ((await this.power(loc)) !== "running") await this.task(await this.client.post(path, {}, upidSchema));
        }
      } catch (err) {
        // A start that raced another one: the VM runs, which is what was asked.
        if (!(err instanceof PveTaskError && /already running/.test(err.exitstatus))) throw err;
      }
    });
    return this.infoOf(loc);
  }

  async stop(key: VmKey, opts: StopOptions = {}): Promise<VmInfo> {
    const loc = await this.locate(key, "stop");
    if (!loc) throw new VmNotFoundError(vmKeyText(key));
    const timeoutSec = opts.timeoutSec ?? this.cfg.shutdownTimeoutSec;
    await this.limiter.run(loc.node, async () => {
      if ((await this.power(loc)) === "stopped") return;
      try {
        // Graceful: ACPI power button; PVE fails the task after `timeout`.
        const upid = await this.client.post(pvePath`/nodes/${loc.node}/qemu/${loc.vmid}/status/shutdown`, { timeout: timeoutSec }, upidSchema);
        await this.task(upid, (timeoutSec + 30) * 1000);
      } catch (err) {
        if (!(err instanceof PveTaskError || err instanceof PveTaskTimeoutError || err instanceof PveIndeterminateError)) throw err;
        this.log.info({ vmid: loc.vmid, node: loc.node, err: err.message }, "graceful shutdown did not finish: stopping the VM");
      }
      if ((await this.power(loc)) !== "stopped") await this.forceStop(loc);
    });
    return this.infoOf(loc);
  }

  async destroy(key: VmKey): Promise<{ destroyed: boolean }> {
    const loc = await this.locate(key, "destroy");
    if (!loc) {
      if (!("vmid" in key)) this.store.remove("proxmox", key.cluster, key.name);
      return { destroyed: false };
    }
    await this.limiter.run(loc.node, async () => {
      if ((await this.power(loc)) !== "stopped") await this.forceStop(loc);
      const path = pvePath`/nodes/${loc.node}/qemu/${loc.vmid}`;
      try {
        await this.task(await this.client.delete(path, { purge: 1, "destroy-unreferenced-disks": 1 }, upidSchema));
      } catch (err) {
        if (!(err instanceof PveIndeterminateError)) throw err;
        // The delete may have run: look before asking again.
        if ((await this.readConfig(loc.node, loc.vmid)) !== null && !(await this.awaitTaskOf(loc.node, loc.vmid, "qmdestroy"))) {
          await this.task(await this.client.delete(path, { purge: 1, "destroy-unreferenced-disks": 1 }, upidSchema));
        }
      }
    });
    const rec = this.store.getByVmid("proxmox", loc.vmid);
    if (rec && rec.cluster === loc.cluster && rec.name === loc.name) this.store.remove("proxmox", rec.cluster, rec.name);
    this.log.info({ cluster: loc.cluster, name: loc.name, vmid: loc.vmid, node: loc.node }, "VM destroyed");
    return { destroyed: true };
  }

  async status(key: VmKey): Promise<VmInfo | null> {
    const loc = await this.locate(key, "read the status of");
    return loc ? this.infoOf(loc) : null;
  }

  async setBootOrder(key: VmKey, order: BootOrder): Promise<BootOrderResult> {
    const loc = await this.locate(key, "change the boot order of");
    if (!loc) throw new VmNotFoundError(vmKeyText(key));
    const value = bootParam(order, bootDiskOf(loc.config) ?? "scsi0");
    await this.limiter.run(loc.node, async () => {
      const path = pvePath`/nodes/${loc.node}/qemu/${loc.vmid}/config`;
      try {
        await this.task(await this.client.post(path, { boot: value }, upidSchema));
      } catch (err) {
        if (!(err instanceof PveIndeterminateError)) throw err;
        // Setting the same value twice is harmless: read, and send again only if it is not there.
        const cfg = await this.client.get(path, configSchema);
        if (cfg.boot !== value) await this.task(await this.client.post(path, { boot: value }, upidSchema));
      }
    });
    const current = await this.readConfig(loc.node, loc.vmid);
    return { pendingUntilRestart: current?.boot !== value };
  }

  async listByCluster(cluster: string): Promise<VmInfo[]> {
    const hosts = await this.usableHosts();
    const perNode = await Promise.all(
      hosts.map(async (node) => {
        const vms = await this.client.get(pvePath`/nodes/${node}/qemu`, vmListSchema);
        const ours = vms.filter((v) => parseTagList(v.tags).includes(clusterTag(cluster)));
        return Promise.all(
          ours.map(async (v) => {
            const config = await this.readConfig(node, v.vmid);
            if (!config) return null;
            return this.infoOf({ node, vmid: v.vmid, cluster, name: config.name ?? v.name ?? "", config }, v.status);
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

  // ---- internals -------------------------------------------------------

  /** Configured nodes that PVE reports online, in configured order. */
  private async usableHosts(): Promise<string[]> {
    const nodes = await this.client.get("/nodes", nodesSchema);
    const online = new Set(nodes.filter((n) => n.status === undefined || n.status === "online").map((n) => n.node));
    return this.cfg.nodes.filter((n) => online.has(n));
  }

  private place(spec: VmSpec, hosts: string[], siblings: VmRecord[]): string {
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
  private async nodeFor(rec: VmRecord, spec: VmSpec): Promise<string> {
    const hosts = await this.usableHosts();
    if (rec.node && hosts.includes(rec.node)) return rec.node;
    const node = this.place(spec, hosts, this.store.listCluster("proxmox", rec.cluster));
    this.store.update("proxmox", rec.cluster, rec.name, { node });
    this.log.warn({ cluster: rec.cluster, name: rec.name, was: rec.node, node }, "recorded host unusable: VM placed again");
    return node;
  }

  private matches(config: PveConfig, rec: VmRecord): boolean {
    const mac = config.net0 ? parseNet(config.net0).mac : null;
    return config.name === rec.name && parseTagList(config.tags).includes(clusterTag(rec.cluster)) && mac !== null && sameMac(mac, rec.mac);
  }

  /**
   * The VM this record stands for, if it exists: at its recorded VMID, else
   * anywhere on the configured nodes by our tag + name + MAC — also for a
   * fresh record, so a request resumed after our state was lost still finds
   * its VM (or refuses: same name and tag, another MAC).
   */
  private async findOurs(rec: VmRecord): Promise<Located | null> {
    const hosts = await this.usableHosts();
    if (rec.vmid !== null && rec.node && !hosts.includes(rec.node) && this.cfg.nodes.includes(rec.node)) {
      throw new ProviderError("PVE_NODE_OFFLINE", `${rec.cluster}/${rec.name} was created on ${rec.node}, which is offline: its state is unknown`, 503);
    }
    if (rec.vmid !== null && rec.node) {
      const config = await this.settledConfig(rec.node, rec.vmid);
      if (config && this.matches(config, rec)) return { node: rec.node, vmid: rec.vmid, cluster: rec.cluster, name: rec.name, config };
    }
    const hits: Located[] = [];
    const others: number[] = [];
    for (const node of hosts) {
      const vms = await this.client.get(pvePath`/nodes/${node}/qemu`, vmListSchema);
      for (const v of vms) {
        if (v.name !== rec.name || !parseTagList(v.tags).includes(clusterTag(rec.cluster))) continue;
        const config = await this.readConfig(node, v.vmid);
        if (config && this.matches(config, rec)) hits.push({ node, vmid: v.vmid, cluster: rec.cluster, name: rec.name, config });
        else if (config) others.push(v.vmid);
      }
    }
    if (hits.length > 1) throw new VmConflictError(`${rec.cluster}/${rec.name} exists ${hits.length} times (VMIDs ${hits.map((h) => h.vmid).join(", ")}) with MAC ${rec.mac}`);
    if (hits.length === 0 && others.length > 0) {
      throw new VmConflictError(`${rec.cluster}/${rec.name} exists as VMID ${others.join(", ")} but with another MAC than the recorded ${rec.mac}: destroy it or use another name`);
    }
    return hits[0] ?? null;
  }

  private async createOn(node: string, rec: VmRecord, spec: VmSpec): Promise<Located> {
    const tags = vmTags(spec.cluster, spec.role, spec.tags);
    const defaults = {
      storage: this.cfg.storage,
      efiStorage: this.cfg.efiStorage ?? this.cfg.storage,
      bridge: this.cfg.bridge,
      vlan: this.cfg.vlan,
      firmware: this.cfg.firmware,
    };
    return this.limiter.run(node, async () => {
      let vmid = await this.nextVmid();
      let resentSameVmid = false;
      try {
        for (let attempt = 1; attempt <= VMID_ATTEMPTS; attempt++) {
          // Recorded before sending: a crash or a lost answer leaves a trace to look for.
          this.store.update("proxmox", rec.cluster, rec.name, { node, vmid, state: "creating" });
          const params = createParams(spec, vmid, rec.mac, tags, defaults);
          let upid: string | null = null;
          try {
            upid = await this.client.post(pvePath`/nodes/${node}/qemu`, params, upidSchema);
          } catch (err) {
            const taken = err instanceof PveHttpError && err.isVmidTaken;
            if (!taken && !(err instanceof PveIndeterminateError)) throw err;
            // Either way: what is at this VMID now? (A create in flight holds only `lock: create`.)
            const config = await this.settledConfig(node, vmid);
            if (config && this.matches(config, rec)) {
              this.log.info({ node, vmid, err: (err as Error).message }, "create answered with an error but the VM is ours: adopting it");
            } else if (config || taken) {
              this.log.info({ node, vmid }, "VMID taken by another VM: trying the next one");
              this.takenVmids.add(vmid);
              this.inflightVmids.delete(vmid);
              vmid = await this.nextVmid();
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
          if (upid !== null) await this.task(upid);
          const config = await this.readConfig(node, vmid);
          if (!config) throw new ProviderError("PVE_CREATE_LOST", `VM ${vmid} on ${node}: the create task ended OK but the VM is not there`, 502);
          if (!this.matches(config, rec)) {
            const got = config.net0 ? parseNet(config.net0).mac : null;
            throw new ProviderError("PVE_CREATE_MISMATCH", `VM ${vmid} on ${node} was created with net0 MAC ${got ?? "none"}, not ${rec.mac}`, 502, { net0: config.net0 });
          }
          return { node, vmid, cluster: rec.cluster, name: rec.name, config };
        }
        throw new ProviderError("PVE_NO_VMID", `no free VMID after ${VMID_ATTEMPTS} tries (other clients keep taking them)`, 503);
      } finally {
        this.inflightVmids.delete(vmid);
      }
    });
  }

  /** A VMID no one (we know of) uses; reserved in-process until the create ends. */
  private async nextVmid(): Promise<number> {
    const busy = (id: number) => this.inflightVmids.has(id) || this.takenVmids.has(id);
    let id: number | undefined;
    if (this.cfg.vmidRange) {
      const used = new Set(
        (await this.client.get("/cluster/resources", resourcesSchema, { type: "vm" })).map((r) => r.vmid).filter((v): v is number => v !== undefined),
      );
      const recorded = this.store.vmids("proxmox");
      for (let i = this.cfg.vmidRange.start; i <= this.cfg.vmidRange.end; i++) {
        if (!used.has(i) && !recorded.has(i) && !busy(i)) {
          id = i;
          break;
        }
      }
      if (id === undefined) throw new ProviderError("PVE_NO_VMID", `no free VMID in ${this.cfg.vmidRange.start}–${this.cfg.vmidRange.end}`, 503);
    } else {
      // Advisory (DESIGN §5): concurrent callers get the same answer; we step past our own.
      let candidate = await this.client.get("/cluster/nextid", vmidSchema);
      for (let i = 0; i < 10_000 && busy(candidate); i++) candidate++;
      id = candidate;
    }
    this.inflightVmids.add(id);
    return id;
  }

  /**
   * Finds the VM for an operation and checks it is ours. By name: the record's
   * VMID first, then every node. By VMID: the record, then every node.
   * Returns null when there is no such VM; throws SafeModeError when the VM
   * found lacks the cluster's tag.
   */
  private async locate(key: VmKey, action: string): Promise<Located | null> {
    if ("vmid" in key) {
      const rec = this.store.getByVmid("proxmox", key.vmid);
      let node: string | undefined;
      let config: PveConfig | null = null;
      if (rec?.node) {
        config = await this.readConfig(rec.node, key.vmid);
        if (config) node = rec.node;
      }
      if (!config) {
        for (const n of await this.usableHosts()) {
          const vms = await this.client.get(pvePath`/nodes/${n}/qemu`, vmListSchema);
          if (vms.some((v) => v.vmid === key.vmid)) {
            config = await this.readConfig(n, key.vmid);
            if (config) node = n;
            break;
          }
        }
      }
      if (!config || !node) return null;
      const cluster = assertOwned(parseTagList(config.tags), key.cluster, `VM ${key.vmid}`, action);
      return { node, vmid: key.vmid, cluster, name: config.name ?? "", config };
    }
    const rec = this.store.get("proxmox", key.cluster, key.name);
    const hosts = await this.usableHosts();
    if (rec?.vmid != null && rec.node && !hosts.includes(rec.node) && this.cfg.nodes.includes(rec.node)) {
      throw new ProviderError("PVE_NODE_OFFLINE", `${key.cluster}/${key.name} is on ${rec.node}, which is offline: cannot ${action} it now`, 503);
    }
    if (rec?.vmid != null && rec.node) {
      const config = await this.readConfig(rec.node, rec.vmid);
      if (config && config.name === key.name) {
        assertOwned(parseTagList(config.tags), key.cluster, `VM ${rec.vmid} (${key.name})`, action);
        return { node: rec.node, vmid: rec.vmid, cluster: key.cluster, name: key.name, config };
      }
    }
    const tagged: Located[] = [];
    const untagged: number[] = [];
    for (const node of hosts) {
      const vms = await this.client.get(pvePath`/nodes/${node}/qemu`, vmListSchema);
      for (const v of vms.filter((x) => x.name === key.name)) {
        if (!parseTagList(v.tags).includes(clusterTag(key.cluster))) {
          untagged.push(v.vmid);
          continue;
        }
        const config = await this.readConfig(node, v.vmid);
        if (config) tagged.push({ node, vmid: v.vmid, cluster: key.cluster, name: key.name, config });
      }
    }
    if (tagged.length > 1) {
      const byMac = rec ? tagged.filter((t) => this.matches(t.config, rec)) : [];
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

  /** The VM's config without pending changes, or null when PVE says it does not exist. */
  private async readConfig(node: string, vmid: number): Promise<PveConfig | null> {
    try {
      return await this.client.get(pvePath`/nodes/${node}/qemu/${vmid}/config`, configSchema, { current: 1 });
    } catch (err) {
      if (err instanceof PveHttpError && err.isMissingVm) return null;
      throw err;
    }
  }

  /**
   * The VM's config once no create is running on it; null when there is
   * (then) no VM — a failed create removes its config. Waits for the create
   * task when we can see it, else for the lock to go, within the task timeout.
   */
  private async settledConfig(node: string, vmid: number): Promise<PveConfig | null> {
    let config = await this.readConfig(node, vmid);
    if (config?.lock !== "create") return config;
    let seen = false;
    try {
      seen = await this.awaitTaskOf(node, vmid, "qmcreate");
    } catch (err) {
      if (!(err instanceof PveTaskError)) throw err;
      seen = true;
    }
    config = await this.readConfig(node, vmid);
    const deadline = Date.now() + this.cfg.taskTimeoutSec * 1000;
    while (!seen && config?.lock === "create" && Date.now() < deadline) {
      await sleep(this.pollMs);
      config = await this.readConfig(node, vmid);
    }
    return config;
  }

  private async power(loc: Located): Promise<PowerState> {
    const st = await this.client.get(pvePath`/nodes/${loc.node}/qemu/${loc.vmid}/status/current`, statusSchema);
    return powerState(st.status, st.qmpstatus);
  }

  private async forceStop(loc: Located): Promise<void> {
    try {
      await this.task(await this.client.post(pvePath`/nodes/${loc.node}/qemu/${loc.vmid}/status/stop`, {}, upidSchema));
    } catch (err) {
      if (!(err instanceof PveIndeterminateError)) throw err;
      // Stopping twice is harmless; only the VM's state tells.
      if ((await this.power(loc)) !== "stopped") {
        await this.task(await this.client.post(pvePath`/nodes/${loc.node}/qemu/${loc.vmid}/status/stop`, {}, upidSchema));
      }
    }
  }

  private task(upid: string, timeoutMs = this.cfg.taskTimeoutSec * 1000): Promise<TaskOutcome> {
    return this.client.waitTask(upid, { timeoutMs, intervalMs: this.pollMs, maxIntervalMs: Math.max(this.pollMs, 2_000) });
  }

  /**
   * Waits for the newest task of `type` on the VM (found in the node's task
   * list) when we never saw its UPID, e.g. after a 596. False when there is none.
   */
  private async awaitTaskOf(node: string, vmid: number, type: string): Promise<boolean> {
    const tasks = await this.client.get(pvePath`/nodes/${node}/tasks`, taskListSchema, { vmid, typefilter: type, source: "all" });
    const newest = [...tasks].sort((a, b) => (b.starttime ?? 0) - (a.starttime ?? 0))[0];
    if (!newest) return false;
    await this.task(newest.upid);
    return true;
  }

  private async infoOf(loc: Located, knownStatus?: string): Promise<VmInfo> {
    const tags = parseTagList(loc.config.tags);
    const status = knownStatus !== undefined ? powerState(knownStatus) : await this.power(loc);
    const mac = loc.config.net0 ? parseNet(loc.config.net0).mac : null;
    return { provider: "proxmox", cluster: loc.cluster, name: loc.name, role: roleOf(tags), vmid: loc.vmid, node: loc.node, mac, status, tags };
  }
}

function powerState(status: string, qmpstatus?: string): PowerState {
  if (status === "running") return qmpstatus === "paused" || qmpstatus === "suspended" ? "paused" : "running";
  if (status === "stopped") return "stopped";
  return "unknown";
}

/** A client for the `providers.proxmox` config: reads the token secret file (warning when others can read it) and the CA file. */
export function pveClientFromConfig(cfg: ProxmoxProviderConfig, log: Logger = silentLogger()): PveClient {
  let secret = cfg.tokenSecret;
  if (cfg.tokenSecretFile !== undefined) {
    const mode = statSync(cfg.tokenSecretFile).mode;
    if ((mode & 0o077) !== 0) log.warn({ file: cfg.tokenSecretFile }, "the Proxmox token secret file is readable by others: chmod 600 it");
    secret = readFileSync(cfg.tokenSecretFile, "utf8").trim();
  }
  if (!secret) throw new ProviderError("CONFIG", "providers.proxmox: the token secret is empty");
  const trust = cfg.caFile !== undefined ? { ca: readFileSync(cfg.caFile) } : { fingerprint: cfg.fingerprint! };
  return new PveClient({ url: cfg.url, tokenId: cfg.tokenId, tokenSecret: secret, trust, log });
}

/** Builds the provider from the `providers.proxmox` config. */
export function proxmoxProviderFromConfig(cfg: ProxmoxProviderConfig, deps: { store: VmStore; log?: Logger; macTaken?: (mac: Mac) => boolean }): ProxmoxProvider {
  const log = deps.log ?? silentLogger();
  return new ProxmoxProvider({ config: cfg, client: pveClientFromConfig(cfg, log), store: deps.store, log, macTaken: deps.macTaken });
}

/**
 * Local VMs on the boot host: QEMU (KVM when it works, TCG otherwise), each
 * on a tap in the operator's bridge (optionally inside a network namespace)
 * with our MAC, OVMF or SeaBIOS, a qcow2 disk and its serial log kept in
 * `<dir>/<cluster>/<name>/`. Processes are tracked by their PID files there,
 * so a restarted daemon re-adopts running VMs; a PID is only ever signalled
 * while /proc shows it is the QEMU that wrote that PID file.
 *
 * `vm.json` is written last when a VM is created: its presence means the VM
 * exists. The MAC is recorded in provider_vms before anything is made.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import type { Mac } from "../../boot/mac.js";
import type { Logger } from "../../log.js";
import { silentLogger } from "../../log.js";
import type { VmStore } from "../../store/vms.js";
import type { QemuProviderConfig } from "../config.js";
import { ProviderError, ProviderInputError, VmConflictError, VmNotFoundError } from "../errors.js";
import { KeyedLimiter } from "../limiter.js";
import { parseMacPrefix } from "../mac.js";
import { checkRecord, reservationOf, reserveVm } from "../reserve.js";
import { assertOwned, roleOf, vmTags } from "../tags.js";
import type { BootOrder, BootOrderResult, CreateResult, StopOptions, VmInfo, VmKey, VmProvider, VmReservation, VmSpec } from "../types.js";
import { probeKvm, type Accel } from "./accel.js";
import { qemuArgs, tapName, type QemuVmFiles } from "./args.js";
import { ourQemuPid, run, terminate, waitGone } from "./process.js";
import { qmpCommand } from "./qmp.js";
import { ensureTap, removeTap } from "./tap.js";

export interface QemuProviderOptions {
  config: QemuProviderConfig;
  /** Where VMs live: `providers.qemu.stateDir`, else `<stateDir>/qemu`. */
  dir: string;
  store: VmStore;
  log?: Logger;
  macTaken?: (mac: Mac) => boolean;
}

const metaSchema = z.object({
  cluster: z.string(),
  name: z.string(),
  role: z.enum(["controlplane", "worker"]),
  mac: z.string(),
  firmware: z.enum(["uefi", "bios"]),
  cores: z.number().int(),
  memoryMB: z.number().int(),
  diskGB: z.number().int(),
  boot: z.enum(["network", "disk"]),
  tags: z.array(z.string()),
});
type Meta = z.infer<typeof metaSchema>;

/** sun_path is 108 bytes with its NUL. */
const MAX_SOCKET_PATH = 107;

export class QemuProvider implements VmProvider {
  readonly kind = "qemu" as const;
  private readonly cfg: QemuProviderConfig;
  private readonly dir: string;
  private readonly store: VmStore;
  private readonly log: Logger;
  private readonly macPrefix: Uint8Array;
  private readonly macTaken: (mac: Mac) => boolean;
  private accelChoice: Promise<Accel> | undefined;
  private readonly perVm = new KeyedLimiter(1);

  constructor(opts: QemuProviderOptions) {
    this.cfg = opts.config;
    this.dir = opts.dir;
    this.store = opts.store;
    this.log = opts.log ?? silentLogger();
    const prefix = parseMacPrefix(opts.config.macPrefix);
    if (!prefix) throw new ProviderError("CONFIG", `providers.qemu.macPrefix ${opts.config.macPrefix} is not a locally administered unicast prefix`);
    this.macPrefix = prefix;
    this.macTaken = opts.macTaken ?? (() => false);
  }

  async reserve(spec: VmSpec): Promise<VmReservation> {
    const existing = this.store.get("qemu", spec.cluster, spec.name);
    if (existing) return reservationOf(checkRecord(existing, spec), false);
    const { record, isNew } = reserveVm({ store: this.store, provider: "qemu", macPrefix: this.macPrefix, macTaken: this.macTaken }, spec, () => null);
    return reservationOf(record, isNew);
  }

  /** One create per VM at a time in this process. */
  create(spec: VmSpec): Promise<CreateResult> {
    return this.perVm.run(`${spec.cluster}/${spec.name}`, () => this.createOnce(spec));
  }

  private async createOnce(spec: VmSpec): Promise<CreateResult> {
    const res = await this.reserve(spec);
    const files = this.files(spec.cluster, spec.name);
    const existing = this.readMeta(files);
    if (existing) {
      if (existing.mac !== res.mac) throw new VmConflictError(`local VM ${spec.cluster}/${spec.name} exists with MAC ${existing.mac}, not the recorded ${res.mac}`);
      this.store.update("qemu", spec.cluster, spec.name, { state: "created" });
      return { vm: this.info(existing, files), created: false };
    }
    const firmware = spec.firmware ?? this.cfg.firmware;
    if (files.qmpSocket.length > MAX_SOCKET_PATH) {
      throw new ProviderError("CONFIG", `providers.qemu.stateDir is too deep: ${files.qmpSocket} is longer than a unix socket path may be`);
    }
    if (firmware === "uefi" && (!existsSync(this.cfg.ovmfCode) || !existsSync(this.cfg.ovmfVars))) {
      throw new ProviderError("CONFIG", `UEFI needs ${this.cfg.ovmfCode} and ${this.cfg.ovmfVars} (Debian package ovmf)`);
    }
    const disk = spec.disks[0]!;
    mkdirSync(files.dir, { recursive: true, mode: 0o700 });
    const img = await run("qemu-img", ["create", "-q", "-f", "qcow2", files.disk, `${disk.sizeGB}G`], 60_000);
    if (img.code !== 0) throw new ProviderError("QEMU_IMG_FAILED", `qemu-img create ${files.disk}: ${img.stderr.trim()}`);
    if (firmware === "uefi") copyFileSync(this.cfg.ovmfVars, files.vars);
    const meta: Meta = {
      cluster: spec.cluster,
      name: spec.name,
      role: spec.role,
      mac: res.mac,
      firmware,
      cores: spec.cores,
      memoryMB: spec.memoryMB,
      diskGB: disk.sizeGB,
      boot: spec.boot,
      tags: vmTags(spec.cluster, spec.role, spec.tags),
    };
    this.writeMeta(files, meta);
    this.store.update("qemu", spec.cluster, spec.name, { state: "created" });
    this.log.info({ cluster: spec.cluster, name: spec.name, mac: res.mac, dir: files.dir }, "local VM created");
    return { vm: this.info(meta, files), created: true };
  }

  async start(key: VmKey): Promise<VmInfo> {
    const { meta, files } = this.locate(key, "start");
    if (ourQemuPid(files.pidFile) !== null) return this.info(meta, files);
    const tap = tapName(meta.mac);
    await ensureTap(tap, this.cfg.bridge, this.cfg.netns);
    const accel = await this.accel();
    const args = qemuArgs({ name: `${meta.cluster}-${meta.name}`, mac: meta.mac, tap, cores: meta.cores, memoryMB: meta.memoryMB, firmware: meta.firmware, boot: meta.boot, accel, ovmfCode: this.cfg.ovmfCode, files });
    const [cmd, argv] = this.cfg.netns ? ["ip", ["netns", "exec", this.cfg.netns, this.cfg.binary, ...args]] : [this.cfg.binary, args];
    // With -daemonize the command returns once the VM runs (or failed to start).
    const r = await run(cmd, argv, 60_000);
    if (r.code !== 0) throw new ProviderError("QEMU_START_FAILED", `QEMU for ${meta.cluster}/${meta.name} did not start: ${r.stderr.trim() || `exit ${r.code}`}`);
    const pid = ourQemuPid(files.pidFile);
    if (pid === null) throw new ProviderError("QEMU_START_FAILED", `QEMU for ${meta.cluster}/${meta.name} exited right after starting; see ${files.serialLog}`);
    this.log.info({ cluster: meta.cluster, name: meta.name, pid, accel }, "local VM started");
    return this.info(meta, files);
  }

  async stop(key: VmKey, opts: StopOptions = {}): Promise<VmInfo> {
    const { meta, files } = this.locate(key, "stop");
    const pid = ourQemuPid(files.pidFile);
    if (pid === null) return this.info(meta, files);
    const timeoutMs = (opts.timeoutSec ?? this.cfg.shutdownTimeoutSec) * 1000;
    try {
      await qmpCommand(files.qmpSocket, "system_powerdown");
    } catch (err) {
      this.log.debug({ name: meta.name, err: (err as Error).message }, "ACPI power button not delivered");
    }
    if (!(await waitGone(pid, timeoutMs))) {
      this.log.info({ cluster: meta.cluster, name: meta.name, pid }, "guest ignored the power button: killing QEMU");
      if (!(await terminate(pid))) throw new ProviderError("QEMU_STOP_FAILED", `QEMU ${pid} for ${meta.cluster}/${meta.name} did not exit`);
    }
    return this.info(meta, files);
  }

  async destroy(key: VmKey): Promise<{ destroyed: boolean }> {
    if ("vmid" in key) throw this.noVmid();
    const files = this.files(key.cluster, key.name);
    const meta = this.readMeta(files);
    if (meta) assertOwned(meta.tags, key.cluster, `local VM ${key.cluster}/${key.name}`, "destroy");
    const pid = ourQemuPid(files.pidFile);
    if (pid !== null && !(await terminate(pid))) throw new ProviderError("QEMU_STOP_FAILED", `QEMU ${pid} for ${key.cluster}/${key.name} did not exit`);
    const rec = this.store.get("qemu", key.cluster, key.name);
    const mac = meta?.mac ?? rec?.mac;
    if (mac) await removeTap(tapName(mac), this.cfg.netns);
    const existed = meta !== null || existsSync(files.dir);
    rmSync(files.dir, { recursive: true, force: true });
    this.store.remove("qemu", key.cluster, key.name);
    if (existed) this.log.info({ cluster: key.cluster, name: key.name }, "local VM destroyed");
    return { destroyed: meta !== null };
  }

  async status(key: VmKey): Promise<VmInfo | null> {
    if ("vmid" in key) throw this.noVmid();
    const files = this.files(key.cluster, key.name);
    const meta = this.readMeta(files);
    return meta ? this.info(meta, files) : null;
  }

  /**
   * Records the order for the next start; a running VM gets it through QMP
   * (`bootindex` is writable at runtime) and uses it from its next reset.
   */
  async setBootOrder(key: VmKey, order: BootOrder): Promise<BootOrderResult> {
    const { meta, files } = this.locate(key, "change the boot order of");
    this.writeMeta(files, { ...meta, boot: order });
    if (ourQemuPid(files.pidFile) === null) return { pendingUntilRestart: false };
    const [first, second] = order === "network" ? ["nic0", "disk0"] : ["disk0", "nic0"];
    try {
      // Two devices may not hold the same index even for a moment.
      await qmpCommand(files.qmpSocket, "qom-set", { path: `/machine/peripheral/${second}`, property: "bootindex", value: 3 });
      await qmpCommand(files.qmpSocket, "qom-set", { path: `/machine/peripheral/${first}`, property: "bootindex", value: 1 });
      await qmpCommand(files.qmpSocket, "qom-set", { path: `/machine/peripheral/${second}`, property: "bootindex", value: 2 });
    } catch (err) {
      this.log.warn({ name: meta.name, err: (err as Error).message }, "could not change the running VM's boot order: it applies at the next start");
    }
    return { pendingUntilRestart: true };
  }

  async listByCluster(cluster: string): Promise<VmInfo[]> {
    const base = join(this.dir, cluster);
    if (!existsSync(base)) return [];
    const out: VmInfo[] = [];
    for (const name of readdirSync(base).sort()) {
      const files = this.files(cluster, name);
      const meta = this.readMeta(files);
      if (meta) out.push(this.info(meta, files));
    }
    return out;
  }

  async close(): Promise<void> {
    // VMs keep running: they belong to the host, not to this process.
  }

  /** The VM's files; public so tests and operators can find the serial log. */
  files(cluster: string, name: string): QemuVmFiles {
    const dir = join(this.dir, cluster, name);
    return {
      dir,
      disk: join(dir, "disk0.qcow2"),
      vars: join(dir, "OVMF_VARS.fd"),
      serialLog: join(dir, "serial.log"),
      firmwareLog: join(dir, "firmware.log"),
      pidFile: join(dir, "qemu.pid"),
      qmpSocket: join(dir, "qmp.sock"),
    };
  }

  private accel(): Promise<Accel> {
    if (this.cfg.accel !== "auto") return Promise.resolve(this.cfg.accel);
    this.accelChoice ??= probeKvm({ binary: this.cfg.binary, ovmfCode: this.cfg.ovmfCode, ovmfVars: this.cfg.ovmfVars }).then((r) => {
      this.log.info({ accel: r.accel, why: r.why }, "local VMs: accelerator chosen");
      return r.accel;
    });
    return this.accelChoice;
  }

  private noVmid(): ProviderInputError {
    return new ProviderInputError("local QEMU VMs have no VMID: name them by cluster and name");
  }

  private locate(key: VmKey, action: string): { meta: Meta; files: QemuVmFiles } {
    if ("vmid" in key) throw this.noVmid();
    const files = this.files(key.cluster, key.name);
    const meta = this.readMeta(files);
    if (!meta) throw new VmNotFoundError(`local VM ${key.cluster}/${key.name}`);
    assertOwned(meta.tags, key.cluster, `local VM ${key.cluster}/${key.name}`, action);
    return { meta, files };
  }

  private readMeta(files: QemuVmFiles): Meta | null {
    const path = join(files.dir, "vm.json");
    if (!existsSync(path)) return null;
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(path, "utf8"));
    } catch (err) {
      throw new ProviderError("QEMU_STATE_CORRUPT", `${path}: ${(err as Error).message}`);
    }
    const r = metaSchema.safeParse(json);
    if (!r.success) throw new ProviderError("QEMU_STATE_CORRUPT", `${path} is not a VM description: ${r.error.issues[0]?.message ?? ""}`);
    return r.data;
  }

  private writeMeta(files: QemuVmFiles, meta: Meta): void {
    const path = join(files.dir, "vm.json");
    writeFileSync(`${path}.tmp`, `${JSON.stringify(meta, null, 2)}\n`, { mode: 0o600 });
    renameSync(`${path}.tmp`, path);
  }

  private info(meta: Meta, files: QemuVmFiles): VmInfo {
    return {
      provider: "qemu",
      cluster: meta.cluster,
      name: meta.name,
      role: roleOf(meta.tags) ?? meta.role,
      vmid: null,
      node: null,
      mac: meta.mac as Mac,
      status: ourQemuPid(files.pidFile) !== null ? "running" : "stopped",
      tags: meta.tags,
    };
  }
}

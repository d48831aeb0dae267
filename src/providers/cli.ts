/**
 * `talos-netboot vm create|list|start|stop|destroy`: the providers for
 * operators and tests. Every failure is one line on stderr and exit 1; a
 * safe-mode refusal says SAFE_MODE_VIOLATION.
 *
 *   vm create --config FILE --provider proxmox|qemu --cluster C --name N --role controlplane|worker
 *             [--cores N] [--memory MB] [--disk GB] [--firmware uefi|bios] [--mac M] [--node PVE_NODE]
 *             [--profile P] [--no-start] [--json]
 *   vm list   --config FILE --provider P [--cluster C] [--json]
 *   vm start|stop|destroy --config FILE --provider P (--cluster C --name N | --vmid ID)
 */
import type { Command } from "commander";
import type { Logger } from "../log.js";
import { createLogger } from "../log.js";
import { ALL_FAMILIES, openDatabase, type Db, type MigrationFamily } from "../store/db.js";
import { MachineStore } from "../store/machines.js";
import { VMS_FAMILY, VmStore } from "../store/vms.js";
import type { ProvidersConfig } from "./config.js";
import { ProviderError, ProviderInputError } from "./errors.js";
import { createProvider } from "./index.js";
import { createVm, summary, type VmSummary } from "./service.js";
import { PROVIDER_KINDS, type ProviderKind, type VmKey, type VmProvider } from "./types.js";

/** What the vm commands need from a config file. */
export interface VmCliConfig {
  stateDir: string;
  profiles: Record<string, unknown>;
  providers: ProvidersConfig;
}

export interface VmCliDeps {
  /** Loads and validates the config file; throws with a readable message. */
  loadConfig: (path: string) => VmCliConfig;
  log?: Logger;
}

export interface VmCommandOptions {
  config: string;
  provider: string;
  cluster?: string;
  name?: string;
  vmid?: string;
  role?: string;
  cores?: string;
  memory?: string;
  disk?: string;
  firmware?: string;
  mac?: string;
  node?: string;
  profile?: string;
  start?: boolean;
  timeout?: string;
  json?: boolean;
}

export type VmAction = "create" | "list" | "start" | "stop" | "destroy";

function int(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new ProviderInputError(`${flag}: expected a whole number, got '${v}'`);
  return Number(v);
}

function keyFrom(o: VmCommandOptions): VmKey {
  if (o.vmid !== undefined) return o.cluster !== undefined ? { vmid: int("--vmid", o.vmid)!, cluster: o.cluster } : { vmid: int("--vmid", o.vmid)! };
  if (o.cluster === undefined || o.name === undefined) throw new ProviderInputError("name the VM with --cluster and --name, or --vmid");
  return { cluster: o.cluster, name: o.name };
}

function line(v: VmSummary): string {
  return `${v.cluster}/${v.name}\t${v.role ?? "-"}\t${v.vmid ?? "-"}\t${v.node ?? "-"}\t${v.mac ?? "-"}\t${v.status}`;
}

function dedupe(families: readonly MigrationFamily[]): MigrationFamily[] {
  return [...new Map(families.map((f) => [f.name, f])).values()];
}

/** Runs one vm command; returns what to print. Errors are thrown (the caller prints one line). */
export async function runVmCommand(action: VmAction, o: VmCommandOptions, deps: VmCliDeps): Promise<string> {
  if (!PROVIDER_KINDS.includes(o.provider as ProviderKind)) throw new ProviderInputError(`--provider: expected ${PROVIDER_KINDS.join(" or ")}, got '${o.provider}'`);
  const kind = o.provider as ProviderKind;
  const config = deps.loadConfig(o.config);
  const log = deps.log ?? createLogger("warn", { pretty: false });
  let db: Db | undefined;
  let provider: VmProvider | undefined;
  try {
    db = openDatabase(config.stateDir, dedupe([...ALL_FAMILIES, VMS_FAMILY]));
    const vms = new VmStore(db);
    const machines = new MachineStore(db);
    provider = createProvider(kind, config.providers, { store: vms, stateDir: config.stateDir, log, macTaken: (m) => machines.get(m) !== undefined });
    const out = (v: VmSummary | VmSummary[]) => (o.json ? JSON.stringify(v) : Array.isArray(v) ? v.map(line).join("\n") : line(v));
    switch (action) {
      case "create": {
        const disk = int("--disk", o.disk);
        const input = {
          cluster: o.cluster,
          name: o.name,
          role: o.role,
          cores: int("--cores", o.cores),
          memoryMB: int("--memory", o.memory),
          firmware: o.firmware,
          ...(disk !== undefined ? { disks: [{ sizeGB: disk }] } : {}),
          ...(o.mac !== undefined ? { networks: [{ macaddr: o.mac }] } : {}),
          ...(o.node !== undefined ? { targetHost: o.node } : {}),
        };
        const res = await createVm(provider, input, { profile: o.profile, start: o.start !== false, machines, profiles: Object.keys(config.profiles) });
        return out(res.vm);
      }
      case "list": {
        const clusters = o.cluster !== undefined ? [o.cluster] : [...new Set(vms.list(kind).map((r) => r.cluster))];
        const all = (await Promise.all(clusters.map((c) => provider!.listByCluster(c)))).flat();
        return out(all.map(summary));
      }
      case "start":
        return out(summary(await provider.start(keyFrom(o))));
      case "stop":
        return out(summary(await provider.stop(keyFrom(o), { timeoutSec: int("--timeout", o.timeout) })));
      case "destroy": {
        const key = keyFrom(o);
        const { destroyed } = await provider.destroy(key);
        return o.json ? JSON.stringify({ destroyed }) : destroyed ? "destroyed" : "no such VM";
      }
      default:
        throw new ProviderInputError(`unknown vm command '${action as string}'`);
    }
  } finally {
    await provider?.close();
    db?.close();
  }
}

/** One line for stderr: the error code for provider errors (SAFE_MODE_VIOLATION, PVE_TASK_FAILED, …). */
export function errorLine(err: unknown): string {
  if (err instanceof ProviderError) return `${err.code}: ${err.message}`.replace(/\s*\n\s*/g, " ");
  return (err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, " ");
}

export function registerVmCommands(program: Command, deps: VmCliDeps): void {
  const vm = program.command("vm").description("VMs on Proxmox VE or local QEMU that netboot against this appliance");
  const common = (c: Command) =>
    c.requiredOption("-c, --config <file>", "YAML config file (with a providers: section)").requiredOption("--provider <provider>", "proxmox or qemu").option("--json", "print JSON", false);
  const act = (action: VmAction) =>
    async function (this: Command, opts: VmCommandOptions) {
      try {
        process.stdout.write(`${await runVmCommand(action, opts, deps)}\n`);
      } catch (err) {
        this.error(`talos-netboot: ${errorLine(err)}`, { exitCode: 1 });
      }
    };
  common(vm.command("create").description("create a VM with a MAC we choose, register it with --profile, and start it"))
    .requiredOption("--cluster <name>", "cluster name (VMs carry the tag cluster-<name>)")
    .requiredOption("--name <name>", "VM name (its hostname)")
    .requiredOption("--role <role>", "controlplane or worker")
    .option("--cores <n>", "vCPUs")
    .option("--memory <mb>", "memory in MiB")
    .option("--disk <gb>", "boot disk size in GiB")
    .option("--firmware <fw>", "uefi or bios")
    .option("--mac <mac>", "use this MAC instead of one from our range")
    .option("--node <node>", "the Proxmox node to create it on")
    .option("--profile <profile>", "register the MAC with this boot profile before the VM starts")
    .option("--no-start", "create only")
    .action(act("create"));
  common(vm.command("list").description("list the VMs of a cluster (or of every cluster we created VMs for)")).option("--cluster <name>", "cluster name").action(act("list"));
  for (const [name, what] of [
    ["start", "start a VM"],
    ["stop", "stop a VM: ACPI shutdown, forced after --timeout seconds"],
    ["destroy", "stop and delete a VM and its disks"],
  ] as const) {
    const c = common(vm.command(name).description(what)).option("--cluster <name>", "cluster name").option("--name <name>", "VM name").option("--vmid <id>", "Proxmox VMID");
    if (name === "stop") c.option("--timeout <s>", "seconds to wait for the guest to shut down");
    c.action(act(name));
  }
}

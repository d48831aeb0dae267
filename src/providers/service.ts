/**
 * What `vm create|list|start|stop|destroy` and `/api/v1/providers/…` do, in
 * one place: a VM created with a profile has its MAC registered with that
 * profile *before* it first powers on, so it netboots straight into it.
 */
import type { MachineStore } from "../store/machines.js";
import { ProviderInputError } from "./errors.js";
import { parseVmSpec } from "./spec.js";
import type { VmInfo, VmKey, VmProvider } from "./types.js";

/** The record the CLI prints with --json and the API returns. */
export interface VmSummary {
  provider: string;
  cluster: string;
  name: string;
  role: string | null;
  vmid: number | null;
  node: string | null;
  mac: string | null;
  status: string;
}

export function summary(vm: VmInfo): VmSummary {
  return { provider: vm.provider, cluster: vm.cluster, name: vm.name, role: vm.role, vmid: vm.vmid, node: vm.node, mac: vm.mac, status: vm.status };
}

export interface CreateVmOptions {
  /** Register the VM's MAC with this profile before it starts. */
  profile?: string;
  /** Start the VM after creating it (default true). */
  start?: boolean;
  machines?: MachineStore;
  /** Profile names that exist. */
  profiles: readonly string[];
}

export async function createVm(provider: VmProvider, input: unknown, opts: CreateVmOptions): Promise<{ vm: VmSummary; created: boolean }> {
  const spec = parseVmSpec(input);
  if (opts.profile !== undefined) {
    if (!opts.profiles.includes(opts.profile)) throw new ProviderInputError(`no profile named '${opts.profile}'`, { profiles: opts.profiles });
    if (!opts.machines) throw new ProviderInputError("registering a profile needs the machine store");
  }
  const reservation = await provider.reserve(spec);
  if (opts.profile !== undefined) {
    const existing = opts.machines!.get(reservation.mac);
    if (existing?.source === "config" && existing.profile !== opts.profile) {
      throw new ProviderInputError(`${reservation.mac} is a config-file machine with profile '${existing.profile}'; change it there`);
    }
    if (existing?.source !== "config") {
      opts.machines!.upsert({ mac: reservation.mac, profile: opts.profile, hostname: spec.name, bootfile: existing?.bootfile ?? null, source: "api" });
    }
  }
  const { vm, created } = await provider.create(spec);
  const key: VmKey = { cluster: spec.cluster, name: spec.name };
  return { vm: summary(opts.start === false ? vm : await provider.start(key)), created };
}

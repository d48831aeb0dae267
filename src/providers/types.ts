/**
 * The provider interface: what the cluster orchestrator (and the CLI/API)
 * asks of a place that runs VMs — a Proxmox VE cluster or the boot host's
 * own QEMU. Every operation is idempotent, so a retried or resumed request
 * never makes two VMs nor fails because the work was already done.
 *
 * The order the orchestrator follows: `reserve` (MAC and host chosen and
 * recorded) → register the MAC with a boot profile → `create` (never starts
 * the VM) → `start` → watch the timeline → `setBootOrder("disk")`.
 */
import type { Mac } from "../boot/mac.js";

export type ProviderKind = "proxmox" | "qemu";
export const PROVIDER_KINDS: readonly ProviderKind[] = ["proxmox", "qemu"];

export type VmRole = "controlplane" | "worker";
export type Firmware = "uefi" | "bios";
/** Which device the VM tries first: the network for the install, the disk after. */
export type BootOrder = "network" | "disk";
export type PowerState = "running" | "stopped" | "paused" | "unknown";

/** Moxxie's anti-affinity strategies; ZONE_AWARE is treated as SOFT (we know no zones). */
export type AntiAffinity = "NONE" | "SOFT" | "HARD" | "ZONE_AWARE";

export type DiskInterface = "scsi" | "virtio" | "sata" | "ide";

export interface DiskSpec {
  interfaceType: DiskInterface;
  slot: number;
  /** Proxmox storage; the provider's default when absent. */
  storage: string | undefined;
  sizeGB: number;
  ssd: boolean;
  iothread: boolean;
  discard: boolean;
}

export interface NicSpec {
  /** The provider's default bridge when absent. */
  bridge: string | undefined;
  /** null: untagged even if the provider has a default VLAN; undefined: the default. */
  vlan: number | null | undefined;
  /** The first NIC is the netboot NIC: when absent we choose its MAC. */
  macaddr: Mac | undefined;
  firewall: boolean;
}

export interface PlacementSpec {
  antiAffinity: AntiAffinity;
  preferredNodes: string[];
  avoidNodes: string[];
  /** The seed's `targetHost`: this host or fail. */
  targetHost: string | undefined;
}

/** One VM for one cluster node. Build it with `parseVmSpec` (src/providers/spec.ts). */
export interface VmSpec {
  /** DNS-1123 label; VMs carry the tag `cluster-<cluster>`. */
  cluster: string;
  /** The VM name (and the machine's hostname), unique within the cluster. */
  name: string;
  role: VmRole;
  cores: number;
  memoryMB: number;
  /** The first disk is the boot disk. */
  disks: DiskSpec[];
  /** The first NIC is the one that netboots with our MAC. */
  networks: NicSpec[];
  /** The provider's default when absent. */
  firmware: Firmware | undefined;
  /** Boot order at creation: "network" for a VM about to be installed. */
  boot: BootOrder;
  cpuType: string;
  /** Extra Proxmox tags beside `moxxie`, `cluster-<cluster>`, `role-<role>`. */
  tags: string[];
  placement: PlacementSpec;
}

/** Which VM an operation is for: by cluster and name, or by VMID (Proxmox). */
export type VmKey = { cluster: string; name: string } | { vmid: number; cluster?: string };

export function vmKeyText(key: VmKey): string {
  return "vmid" in key ? `VM ${key.vmid}` : `${key.cluster}/${key.name}`;
}

/** What the CLI prints with --json and the API returns. */
export interface VmInfo {
  provider: ProviderKind;
  cluster: string;
  name: string;
  role: VmRole | null;
  /** null for QEMU. */
  vmid: number | null;
  /** The Proxmox node (null for QEMU). */
  node: string | null;
  mac: Mac | null;
  status: PowerState;
  tags: string[];
}

/** The MAC and host chosen for a VM, recorded before the VM exists. */
export interface VmReservation {
  provider: ProviderKind;
  cluster: string;
  name: string;
  role: VmRole;
  mac: Mac;
  node: string | null;
  /** False when an earlier request had reserved it (same MAC, same host). */
  new: boolean;
}

export interface CreateResult {
  vm: VmInfo;
  /** False when an existing VM (our tags + name + MAC) was found and reused. */
  created: boolean;
}

export interface StopOptions {
  /** Seconds to wait for a graceful (ACPI) shutdown before a forced stop. */
  timeoutSec?: number;
}

export interface BootOrderResult {
  /** A running VM picks the new order up only at its next power-on. */
  pendingUntilRestart: boolean;
}

export interface VmProvider {
  readonly kind: ProviderKind;
  /** Chooses (or finds) the VM's MAC and host and records them; creates nothing. */
  reserve(spec: VmSpec): Promise<VmReservation>;
  /** Reserves, then finds and reuses the VM or creates it. Never starts it. */
  create(spec: VmSpec): Promise<CreateResult>;
  start(key: VmKey): Promise<VmInfo>;
  /** Graceful shutdown with a timeout, then a forced stop. Stopped already: no-op. */
  stop(key: VmKey, opts?: StopOptions): Promise<VmInfo>;
  /** Stops (forced) and deletes the VM and its disks; false when there was none. */
  destroy(key: VmKey): Promise<{ destroyed: boolean }>;
  /** null when the VM does not exist. */
  status(key: VmKey): Promise<VmInfo | null>;
  setBootOrder(key: VmKey, order: BootOrder): Promise<BootOrderResult>;
  /** The VMs carrying the cluster's tag (QEMU: the VMs in its state dir). */
  listByCluster(cluster: string): Promise<VmInfo[]>;
  close(): Promise<void>;
}

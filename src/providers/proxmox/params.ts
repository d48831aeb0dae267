/**
 * The parameters of `POST /nodes/{node}/qemu` in exactly the formats of
 * DESIGN §5, and the reading of a VM config back. Pure.
 *
 *   net0=virtio=<MAC>,bridge=<br>[,tag=<vlan>][,firewall=1]
 *   boot=order=net0;scsi0 (install) | order=scsi0;net0 (installed)
 *   UEFI: bios=ovmf, machine=q35, efidisk0=<storage>:1,efitype=4m,pre-enrolled-keys=0,
 *         rng0=source=/dev/urandom (UEFI PXE needs an entropy source)
 *   scsihw=virtio-scsi-single, scsi0=<storage>:<GiB>,ssd=1,iothread=1,discard=on
 *   tags=cluster-<name>;moxxie;role-<role>
 */
import type { Mac } from "../../boot/mac.js";
import { parseMac } from "../../boot/mac.js";
import { pveMac } from "../mac.js";
import { diskName } from "../spec.js";
import type { BootOrder, DiskSpec, Firmware, NicSpec, VmSpec } from "../types.js";

export interface CreateDefaults {
  storage: string;
  efiStorage: string;
  bridge: string;
  vlan: number | null;
  firmware: Firmware;
}

/** `order=net0;scsi0` or `order=scsi0;net0`: the boot disk is the spec's first disk. */
export function bootParam(order: BootOrder, bootDisk: string, nic = "net0"): string {
  return order === "network" ? `order=${nic};${bootDisk}` : `order=${bootDisk};${nic}`;
}

export function netParam(nic: NicSpec, mac: Mac | undefined, defaults: Pick<CreateDefaults, "bridge" | "vlan">): string {
  const parts = [mac ? `virtio=${pveMac(mac)}` : "virtio", `bridge=${nic.bridge ?? defaults.bridge}`];
  const vlan = nic.vlan === undefined ? defaults.vlan : nic.vlan;
  if (vlan !== null) parts.push(`tag=${vlan}`);
  if (nic.firewall) parts.push("firewall=1");
  return parts.join(",");
}

export function diskParam(d: DiskSpec, defaultStorage: string): string {
  const parts = [`${d.storage ?? defaultStorage}:${d.sizeGB}`];
  if (d.ssd) parts.push("ssd=1");
  if (d.iothread) parts.push("iothread=1");
  if (d.discard) parts.push("discard=on");
  return parts.join(",");
}

/** Every parameter of the create call, as strings. The caller form-encodes them. */
export function createParams(spec: VmSpec, vmid: number, mac: Mac, tags: readonly string[], defaults: CreateDefaults): Record<string, string> {
  const firmware = spec.firmware ?? defaults.firmware;
  const p: Record<string, string> = {
    vmid: String(vmid),
    name: spec.name,
    cores: String(spec.cores),
    memory: String(spec.memoryMB),
    cpu: spec.cpuType,
    ostype: "l26",
  };
  spec.networks.forEach((nic, i) => {
    // The first NIC netboots with the MAC we recorded; others keep theirs or get PVE's.
    p[`net${i}`] = netParam(nic, i === 0 ? mac : nic.macaddr, defaults);
  });
  if (spec.disks.some((d) => d.interfaceType === "scsi")) p.scsihw = "virtio-scsi-single";
  for (const d of spec.disks) p[diskName(d)] = diskParam(d, defaults.storage);
  p.boot = bootParam(spec.boot, diskName(spec.disks[0]!));
  if (firmware === "uefi") {
    p.bios = "ovmf";
    p.machine = "q35";
    p.efidisk0 = `${defaults.efiStorage}:1,efitype=4m,pre-enrolled-keys=0`;
    p.rng0 = "source=/dev/urandom";
  }
  p.tags = tags.join(";");
  return p;
}

/**
 * A PVE property string (`virtio=BC:24:11:…,bridge=vmbr0,tag=20`) as a map.
 * PVE reorders keys on output; a bare first item (`virtio` or `virtio=MAC`)
 * is the NIC model, with the MAC as its value.
 */
export function parsePropertyString(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const part of text.split(",")) {
    if (!part) continue;
    const eq = part.indexOf("=");
    if (eq < 0) m.set(part, "");
    else m.set(part.slice(0, eq), part.slice(eq + 1));
  }
  return m;
}

export interface ParsedNic {
  model: string | undefined;
  mac: Mac | null;
  bridge: string | undefined;
  tag: number | undefined;
}

const NIC_MODELS = ["virtio", "e1000", "e1000e", "rtl8139", "vmxnet3", "i82551", "i82557b", "i82559er", "ne2k_isa", "ne2k_pci", "pcnet", "e1000-82540em", "e1000-82544gc", "e1000-82545em"];

export function parseNet(text: string): ParsedNic {
  const props = parsePropertyString(text);
  let model: string | undefined;
  let mac: Mac | null = null;
  for (const name of NIC_MODELS) {
    if (props.has(name)) {
      model = name;
      mac = parseMac(props.get(name)!) ?? null;
    }
  }
  if (!model && props.has("model")) model = props.get("model");
  if (!mac && props.has("macaddr")) mac = parseMac(props.get("macaddr")!) ?? null;
  const tag = props.get("tag");
  return { model, mac, bridge: props.get("bridge"), tag: tag === undefined ? undefined : Number(tag) };
}

/** `order=scsi0;net0` → "disk" when a disk comes before net0. Legacy `boot=cdn` strings read "n" as the network. */
export function parseBootOrder(text: string | undefined): BootOrder | null {
  if (!text) return null;
  const order = parsePropertyString(text).get("order");
  if (order !== undefined) {
    const first = order.split(";")[0] ?? "";
    return /^net\d+$/.test(first) ? "network" : first ? "disk" : null;
  }
  if (/^[acdn]+$/.test(text)) return text[0] === "n" ? "network" : "disk";
  return null;
}

/** The boot disk named in a config's boot order, else the first disk in it. */
export function bootDiskOf(config: Record<string, string>): string | null {
  const order = config.boot ? parsePropertyString(config.boot).get("order") : undefined;
  const fromOrder = order?.split(";").find((d) => /^(scsi|virtio|sata|ide)\d+$/.test(d));
  if (fromOrder) return fromOrder;
  return Object.keys(config).find((k) => /^(scsi|virtio|sata|ide)\d+$/.test(k) && !/media=cdrom/.test(config[k]!)) ?? null;
}

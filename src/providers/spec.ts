/**
 * A VM request as it arrives (CLI, API, Moxxie's ClusterSpec node groups),
 * validated and turned into a VmSpec. Accepts Moxxie's node template
 * (`cores`, `memoryMB`, `disks[{interfaceType, slot, storage, sizeGB, ssd,
 * iothread, discard}]`, `networks[{bridge, vlan, macaddr, firewall}]`) flat
 * or under `template`, and its placement (`antiAffinity`, `preferredNodes`,
 * `avoidNodes`) plus the seed's `targetHost`. Storage, bridge, VLAN and
 * firmware left out come from the provider's config.
 */
import { z } from "zod";
import { parseMac, type Mac } from "../boot/mac.js";
import { ProviderInputError } from "./errors.js";
import type { DiskInterface, VmRole, VmSpec } from "./types.js";

export const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** PVE's tag syntax (pve-common JSONSchema `$PVE_TAG_RE`), lower-case as PVE returns tags. */
export const PVE_TAG = /^[a-z0-9_][a-z0-9_\-+.]*$/;
/** Linux interface names (IFNAMSIZ 16 incl. NUL); PVE bridges and SDN vnets fit. */
const BRIDGE = /^[A-Za-z][A-Za-z0-9_.-]{0,14}$/;
/** PVE storage IDs (`pve-storage-id`). */
export const STORAGE_ID = /^[a-z][a-z0-9\-_.]*[a-z0-9]$/i;
const CPU_TYPE = /^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$/;

const SLOTS: Record<DiskInterface, number> = { scsi: 30, virtio: 15, sata: 5, ide: 3 };

const label = (what: string) => z.string().regex(DNS_LABEL, { message: `${what}: expected a DNS-1123 label (lower-case letters, digits, '-', max 63)` });

const macField = z
  .string()
  .transform((s, ctx) => {
    const m = parseMac(s);
    if (!m) {
      ctx.addIssue({ code: "custom", message: "expected a MAC address such as 02:74:6e:12:34:56" });
      return z.NEVER;
    }
    if ((parseInt(m.slice(0, 2), 16) & 1) === 1) {
      ctx.addIssue({ code: "custom", message: "a multicast MAC cannot be a NIC's address" });
      return z.NEVER;
    }
    return m;
  });

const diskSchema = z
  .object({
    interfaceType: z
      .string()
      .transform((s) => s.toLowerCase())
      .pipe(z.enum(["scsi", "virtio", "sata", "ide"], { message: "expected scsi, virtio, sata or ide" }))
      .default("scsi"),
    slot: z.number().int().min(0).default(0),
    storage: z.string().regex(STORAGE_ID, { message: "expected a Proxmox storage ID such as local-lvm" }).optional(),
    sizeGB: z.number().int().min(1).max(65536),
    ssd: z.boolean().default(true),
    iothread: z.boolean().default(true),
    discard: z.boolean().default(true),
  })
  .superRefine((d, ctx) => {
    if (d.slot > SLOTS[d.interfaceType]) ctx.addIssue({ code: "custom", path: ["slot"], message: `${d.interfaceType} slots go from 0 to ${SLOTS[d.interfaceType]}` });
  });

const networkSchema = z.object({
  model: z.literal("virtio", { message: "only virtio NICs are supported (iPXE and Talos drive them)" }).optional(),
  bridge: z.string().regex(BRIDGE, { message: "expected a bridge name such as vmbr0" }).optional(),
  vlan: z.number().int().min(1).max(4094).nullable().optional(),
  macaddr: macField.optional(),
  firewall: z.boolean().default(false),
});

const roleField = z.string().transform((s, ctx): VmRole => {
  const r = s.toLowerCase().replace(/[-_]/g, "");
  // Moxxie's node-group roles: the ones running etcd are control planes to Talos.
  if (r === "controlplane" || r === "controlplaneworker" || r === "etcd") return "controlplane";
  if (r === "worker") return "worker";
  ctx.addIssue({ code: "custom", message: "expected controlplane or worker (Moxxie: CONTROL_PLANE, CONTROL_PLANE_WORKER, ETCD, WORKER)" });
  return z.NEVER;
});

const templateFields = {
  cores: z.number().int().min(1).max(128).optional(),
  memoryMB: z.number().int().min(512).max(1048576).optional(),
  disks: z.array(diskSchema).min(1).max(8).optional(),
  networks: z.array(networkSchema).min(1).max(8).optional(),
  cpuType: z.string().regex(CPU_TYPE).optional(),
};

const placementSchema = z.object({
  antiAffinity: z
    .string()
    .transform((s) => s.toUpperCase())
    .pipe(z.enum(["NONE", "SOFT", "HARD", "ZONE_AWARE"]))
    .default("SOFT"),
  preferredNodes: z.array(z.string().min(1)).default([]),
  avoidNodes: z.array(z.string().min(1)).default([]),
  requiredNodeTags: z.array(z.string()).max(0, { message: "requiredNodeTags is not supported: name hosts in preferredNodes or targetHost" }).optional(),
  targetHost: z.string().min(1).optional(),
});

export const vmSpecInputSchema = z
  .object({
    cluster: label("cluster"),
    name: label("name"),
    role: roleField,
    ...templateFields,
    /** Moxxie's node template; flat fields of the same name win. */
    template: z.object(templateFields).loose().optional(),
    firmware: z.enum(["uefi", "bios"]).optional(),
    boot: z.enum(["network", "disk"]).default("network"),
    tags: z
      .array(
        z
          .string()
          .transform((s) => s.toLowerCase())
          .pipe(
            z
              .string()
              .regex(PVE_TAG, { message: "expected a Proxmox tag (letters, digits, _ - + .)" })
              .refine((t) => t !== "moxxie" && !t.startsWith("cluster-") && !t.startsWith("role-"), { message: "moxxie, cluster-* and role-* tags are set by the provider" }),
          ),
      )
      .default([]),
    placement: placementSchema.optional(),
    targetHost: z.string().min(1).optional(),
  });

export type VmSpecInput = z.input<typeof vmSpecInputSchema>;

export const VM_DEFAULTS = { cores: 2, memoryMB: 4096, diskGB: 20, cpuType: "x86-64-v2-AES" } as const;

/** Validates a request and fills in defaults; throws ProviderInputError naming every bad field. */
export function parseVmSpec(input: unknown): VmSpec {
  const r = vmSpecInputSchema.safeParse(input);
  if (!r.success) {
    const problems = r.error.issues.map((i) => `${i.path.join(".") || "(request)"}: ${i.message}`);
    throw new ProviderInputError(`invalid VM request: ${problems.join("; ")}`, { problems });
  }
  const v = r.data;
  const t = v.template ?? {};
  const disks = v.disks ?? (t.disks as z.output<typeof diskSchema>[] | undefined) ?? [{ interfaceType: "scsi", slot: 0, sizeGB: VM_DEFAULTS.diskGB, ssd: true, iothread: true, discard: true }];
  const networks = v.networks ?? (t.networks as z.output<typeof networkSchema>[] | undefined) ?? [{ firewall: false }];
  const names = disks.map((d) => `${d.interfaceType}${d.slot}`);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new ProviderInputError(`invalid VM request: disks: ${dup} appears twice`, { problems: [`disks: ${dup} appears twice`] });
  const placement = v.placement ?? { antiAffinity: "SOFT" as const, preferredNodes: [], avoidNodes: [] };
  return {
    cluster: v.cluster,
    name: v.name,
    role: v.role,
    cores: v.cores ?? (t.cores as number | undefined) ?? VM_DEFAULTS.cores,
    memoryMB: v.memoryMB ?? (t.memoryMB as number | undefined) ?? VM_DEFAULTS.memoryMB,
    disks: disks.map((d) => ({
      interfaceType: d.interfaceType,
      slot: d.slot,
      storage: d.storage,
      sizeGB: d.sizeGB,
      // virtio-blk has no ssd flag and PVE refuses it there; IDE/SATA have no iothread.
      ssd: d.interfaceType === "virtio" ? false : d.ssd,
      iothread: d.interfaceType === "scsi" || d.interfaceType === "virtio" ? d.iothread : false,
      discard: d.discard,
    })),
    networks: networks.map((n) => ({ bridge: n.bridge, vlan: n.vlan, macaddr: n.macaddr as Mac | undefined, firewall: n.firewall })),
    firmware: v.firmware,
    boot: v.boot,
    cpuType: v.cpuType ?? (t.cpuType as string | undefined) ?? VM_DEFAULTS.cpuType,
    tags: [...new Set(v.tags)],
    placement: {
      antiAffinity: placement.antiAffinity,
      preferredNodes: placement.preferredNodes,
      avoidNodes: placement.avoidNodes,
      targetHost: v.targetHost ?? ("targetHost" in placement ? placement.targetHost : undefined),
    },
  };
}

/** The name PVE gives a disk slot: `scsi0`, `virtio1`. */
export function diskName(d: { interfaceType: DiskInterface; slot: number }): string {
  return `${d.interfaceType}${d.slot}`;
}

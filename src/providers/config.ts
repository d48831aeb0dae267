/**
 * The `providers:` config section. Exported as a zod sub-schema; the main
 * schema (src/config/schema.ts) embeds it as `providers`.
 *
 * ```yaml
 * providers:
 *   proxmox:
 *     url: https://pve1.example.net:8006      # the client adds /api2/json
 *     tokenId: talos-netboot@pve!provisioner
 *     tokenSecretFile: /etc/talos-netboot/pve-token   # mode 0600
 *     fingerprint: "AB:CD:…"                   # or caFile: /etc/talos-netboot/pve-root-ca.pem
 *     nodes: [pve1, pve2, pve3]
 *     storage: local-lvm
 *     bridge: vmbr0
 *     vlan: 20
 *   qemu:
 *     bridge: br-netboot
 * ```
 */
import { z } from "zod";
import { DEFAULT_MAC_PREFIX, parseMacPrefix } from "./mac.js";

const absolutePath = z.string().min(1).refine((s) => s.startsWith("/"), { message: "expected an absolute path" });
/** PVE node names are host names (`pve-node`). */
const pveNode = z.string().regex(/^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/, { message: "expected a Proxmox node name such as pve1" });
const bridge = z.string().regex(/^[A-Za-z][A-Za-z0-9_.-]{0,14}$/, { message: "expected a bridge name such as vmbr0" });
const macPrefix = z
  .string()
  .refine((s) => parseMacPrefix(s) !== null, { message: "expected 1 to 5 MAC octets with the locally administered bit set and the multicast bit clear, such as 02:74:6e" })
  .default(DEFAULT_MAC_PREFIX);

/** `user@realm!tokenname`, the form PVE shows when it creates the token. */
export const TOKEN_ID = /^[^\s@!:=]+@[A-Za-z][A-Za-z0-9.\-_]*![A-Za-z][A-Za-z0-9.\-_]*$/;
/** SHA-256 of the certificate, as PVE shows it: 32 hex pairs separated by colons. */
export const FINGERPRINT = /^([0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}$/;

export const proxmoxProviderSchema = z
  .strictObject({
    /** The PVE base URL, `https://host:8006`; the client adds `/api2/json`. */
    url: z
      .string()
      .refine((s) => {
        try {
          const u = new URL(s);
          return u.protocol === "https:" && (u.pathname === "/" || u.pathname === "") && !u.search && !u.username;
        } catch {
          return false;
        }
      }, { message: "expected the Proxmox base URL such as https://pve1.example.net:8006 (https, no path)" }),
    tokenId: z.string().regex(TOKEN_ID, { message: "expected an API token ID such as talos-netboot@pve!provisioner" }),
    /** Inline secret: for tests and quick trials; prefer tokenSecretFile. */
    tokenSecret: z.string().min(1).optional(),
    tokenSecretFile: absolutePath.optional(),
    /** SHA-256 fingerprint of the node's certificate (`pvenode cert info`), or: */
    fingerprint: z.string().regex(FINGERPRINT, { message: "expected a SHA-256 fingerprint: 32 hex pairs joined by ':'" }).optional(),
    /** …a CA to verify it against, e.g. the cluster's /etc/pve/pve-root-ca.pem. */
    caFile: absolutePath.optional(),
    nodes: z.array(pveNode).min(1, { message: "name at least one Proxmox node" }),
    storage: z.string().regex(/^[a-z][a-z0-9\-_.]*[a-z0-9]$/i, { message: "expected a Proxmox storage ID" }).default("local-lvm"),
    /** Where EFI vars disks go; `storage` when absent. */
    efiStorage: z.string().regex(/^[a-z][a-z0-9\-_.]*[a-z0-9]$/i).optional(),
    bridge: bridge.default("vmbr0"),
    vlan: z.number().int().min(1).max(4094).nullable().default(null),
    firmware: z.enum(["uefi", "bios"]).default("uefi"),
    /** VMIDs to use (Moxxie's vmIdRangeStart); without it, `GET /cluster/nextid`. */
    vmidRange: z
      .strictObject({ start: z.number().int().min(100).max(999_999_999), end: z.number().int().min(100).max(999_999_999) })
      .refine((r) => r.start <= r.end, { message: "start must not be above end" })
      .optional(),
    /** Create/start/stop/delete tasks at once per Proxmox node. */
    maxConcurrentPerNode: z.number().int().min(1).max(32).default(4),
    macPrefix,
    /** How long a PVE task (create, start, delete, …) may run before we give up waiting. */
    taskTimeoutSec: z.number().int().min(5).max(3600).default(600),
    /** Seconds a graceful shutdown may take before a forced stop. */
    shutdownTimeoutSec: z.number().int().min(1).max(3600).default(60),
  })
  .superRefine((v, ctx) => {
    if ((v.tokenSecret === undefined) === (v.tokenSecretFile === undefined)) {
      ctx.addIssue({ code: "custom", path: ["tokenSecretFile"], message: "set exactly one of tokenSecretFile and tokenSecret" });
    }
    if ((v.fingerprint === undefined) === (v.caFile === undefined)) {
      ctx.addIssue({ code: "custom", path: ["fingerprint"], message: "set exactly one of fingerprint and caFile: TLS is always verified" });
    }
    if (new Set(v.nodes).size !== v.nodes.length) ctx.addIssue({ code: "custom", path: ["nodes"], message: "a node is named twice" });
  });

export const qemuProviderSchema = z.strictObject({
  /** The bridge the VMs' taps join (it must exist); absent: taps stay unattached. */
  bridge: bridge.optional(),
  /** Run QEMU (and create its taps) inside this network namespace. */
  netns: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/).optional(),
  /** VM disks, PID files, serial logs; `<stateDir>/qemu` when absent. */
  stateDir: absolutePath.optional(),
  firmware: z.enum(["uefi", "bios"]).default("uefi"),
  accel: z.enum(["auto", "kvm", "tcg"]).default("auto"),
  binary: z.string().min(1).default("qemu-system-x86_64"),
  ovmfCode: absolutePath.default("/usr/share/OVMF/OVMF_CODE_4M.fd"),
  ovmfVars: absolutePath.default("/usr/share/OVMF/OVMF_VARS_4M.fd"),
  macPrefix,
  shutdownTimeoutSec: z.number().int().min(1).max(3600).default(30),
});

export const providersSchema = z
  .strictObject({
    proxmox: proxmoxProviderSchema.optional(),
    qemu: qemuProviderSchema.optional(),
  })
  .default({});

export type ProxmoxProviderConfig = z.output<typeof proxmoxProviderSchema>;
export type QemuProviderConfig = z.output<typeof qemuProviderSchema>;
export type ProvidersConfig = z.output<typeof providersSchema>;

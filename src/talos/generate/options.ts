/**
 * Generator options, named after talosctl's generator (pkg/machinery/config/
 * generate/options.go) where it has them, plus the per-node settings
 * (hostname, static network, VIP) that talosctl leaves to patches. The zod
 * schema is for callers that take options from the outside (API bodies).
 */
import { isIP } from "node:net";
import { z } from "zod";

const ip = z.string().refine((s) => isIP(s) !== 0, "expected an IPv4 or IPv6 address");

function isCidr(s: string): boolean {
  const [addr, bits, extra] = s.split("/");
  if (addr === undefined || bits === undefined || extra !== undefined || !/^\d{1,3}$/.test(bits)) return false;
  const family = isIP(addr);
  return family !== 0 && Number(bits) <= (family === 4 ? 32 : 128);
}

const cidr = z.string().refine(isCidr, "expected an address with a prefix length, such as 10.1.107.11/24");

const httpUrl = z.string().refine((s) => {
  try {
    const u = new URL(s);
    return (u.protocol === "http:" || u.protocol === "https:") && u.hostname !== "";
  } catch {
    return false;
  }
}, "expected an http(s):// URL");

const DNS_NAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;
const dnsName = z.string().regex(DNS_NAME, "expected a DNS name (letters, digits, '-', dot-separated labels of at most 63)");

const MAC = /^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$/i;

/** One LUKS2 key for a system volume, slot 0. */
export const volumeEncryptionSchema = z
  .object({
    keyType: z.enum(["nodeID", "tpm", "static", "kms"]),
    /** static keys only. */
    passphrase: z.string().min(1).optional(),
    /** kms keys only: the KMS endpoint (grpc:// or https://). */
    kmsEndpoint: z.string().regex(/^(https|grpc):\/\/\S+$/, "expected https:// or grpc:// URL").optional(),
  })
  .strict()
  .refine((e) => e.keyType !== "static" || e.passphrase !== undefined, { message: "a static key needs a passphrase", path: ["passphrase"] })
  .refine((e) => e.keyType !== "kms" || e.kmsEndpoint !== undefined, { message: "a kms key needs kmsEndpoint", path: ["kmsEndpoint"] });

export const nodeNetworkSchema = z
  .object({
    /** Link name (`eth0`, `enp0s18`); with macAddress, the alias the link gets (default `net0`). */
    interface: z.string().regex(/^[A-Za-z0-9_.:-]{1,15}$/, "expected a link name such as eth0").optional(),
    /** Select the link by its permanent MAC address instead of by name. */
    macAddress: z.string().regex(MAC, "expected a MAC address such as 52:54:00:12:34:56").optional(),
    /** Static addresses in CIDR form; none means DHCP. */
    addresses: z.array(cidr).optional(),
    gateway: ip.optional(),
    nameservers: z.array(ip).optional(),
  })
  .strict()
  .refine((n) => n.interface !== undefined || n.macAddress !== undefined, { message: "give interface or macAddress" })
  .refine((n) => n.gateway === undefined || (n.addresses?.length ?? 0) > 0, {
    message: "a gateway needs static addresses",
    path: ["gateway"],
  });

export const generateOptionsSchema = z
  .object({
    additionalSANs: z.array(z.string().min(1)).optional(),
    dnsDomain: dnsName.optional(),
    installDisk: z.string().regex(/^\/dev\/\S+$/, "expected a device path such as /dev/sda").optional(),
    installImage: z.string().min(1).optional(),
    installExtraKernelArgs: z.array(z.string().min(1)).optional(),
    localAPIServerPort: z.number().int().min(1).max(65535).optional(),
    allowSchedulingOnControlPlanes: z.boolean().optional(),
    sysctls: z.record(z.string().min(1), z.string()).optional(),
    cni: z
      .object({ name: z.enum(["flannel", "custom", "none"]), urls: z.array(httpUrl).optional() })
      .strict()
      .refine((c) => (c.name === "custom") === (c.urls !== undefined && c.urls.length > 0), {
        message: "a custom CNI needs urls; flannel and none take none",
        path: ["urls"],
      })
      .optional(),
    podSubnets: z.array(cidr).min(1).optional(),
    serviceSubnets: z.array(cidr).min(1).optional(),
    registryMirrors: z.record(z.string().min(1), z.array(httpUrl).min(1)).optional(),
    diskEncryption: z
      .object({ state: volumeEncryptionSchema.optional(), ephemeral: volumeEncryptionSchema.optional() })
      .strict()
      .optional(),
    kubelet: z
      .object({
        /** Repository (`ghcr.io/siderolabs/kubelet`) or a full reference with tag or digest. */
        image: z.string().min(1).optional(),
        /** Kubelet version when it differs from the cluster's Kubernetes version. */
        version: z.string().regex(/^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/, "expected a version such as 1.32.4").optional(),
      })
      .strict()
      .optional(),
    /** Talos's shared layer-2 VIP for the API endpoint (control planes only). */
    vip: z.object({ ip, link: z.string().min(1).optional() }).strict().optional(),
    hostname: dnsName.optional(),
    network: nodeNetworkSchema.optional(),
  })
  .strict();

export type VolumeEncryption = z.infer<typeof volumeEncryptionSchema>;
export type NodeNetwork = z.infer<typeof nodeNetworkSchema>;
export type GenerateOptions = z.infer<typeof generateOptionsSchema>;

import { isIPv4 } from "node:net";
import { z } from "zod";
import { cacheDirSchema, talosConfigSchema } from "../assets/config.js";
import { talosProfileSchema } from "../assets/profile.js";
import { parseMac } from "../boot/mac.js";
import { providersSchema } from "../providers/config.js";

const port = z.number().int().min(1).max(65535);
const ipv4 = z.string().refine((s) => isIPv4(s), { message: "expected an IPv4 address such as 192.168.77.1" });
const nonEmpty = z.string().min(1, { message: "must not be empty" });
/** A local file path or an http(s) URL. */
const fileOrUrl = nonEmpty.refine((s) => s.startsWith("/") || /^https?:\/\//.test(s), {
  message: "expected an absolute file path or an http(s):// URL",
});
const absolutePath = nonEmpty.refine((s) => s.startsWith("/"), { message: "expected an absolute path" });
/** Profile and hostname rules: what fits in URLs, logs and GRUB/iPXE scripts without quoting. */
export const PROFILE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const profileName = z.string().regex(PROFILE_NAME, { message: "expected a name of letters, digits, '.', '_' or '-' (max 63)" });
export const HOSTNAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
const hostname = z.string().regex(HOSTNAME, { message: "expected a lower-case DNS hostname (RFC 1123)" });
/** A boot file name as firmware asks for it over TFTP: one plain relative name. */
export const BOOTFILE = /^[A-Za-z0-9][A-Za-z0-9_.+-]{0,126}$/;
const bootfile = z.string().regex(BOOTFILE, { message: "expected a file name in bootloaders.dir, such as snponly.efi" });
const mac = z.string().refine((s) => parseMac(s) !== null, { message: "expected a MAC address such as 52:54:00:12:34:56" });

/** `machines:` with nothing under it is YAML null: an operator means "none", not an error. */
const emptyIfNull = <T extends z.ZodType>(schema: T) => z.preprocess((v) => (v === null ? undefined : v), schema);

export const LOCAL_BOOT_METHODS = ["exit", "sanboot", "http-404"] as const;

export const profileSchema = z
  .strictObject({
    /** Kernel by path or URL — or, instead, `talos:` (version, schematic, arch), resolved from the asset cache. */
    kernel: fileOrUrl.optional(),
    talos: talosProfileSchema.optional(),
    /** A Talos profile without a config boots maintenance mode; as `unknownMachines` it must say so here. */
    allowMaintenance: z.boolean().default(false),
    initrd: emptyIfNull(z.array(fileOrUrl).default([])),
    cmdline: z.string().default(""),
    /** Served as the machine's Talos config; its URL is appended as talos.config=. */
    config: absolutePath.optional(),
    bootloader: z.enum(["ipxe", "grub"]).default("ipxe"),
    /** After the config was fetched, the machine's next boots are "local". */
    once: z.boolean().default(false),
    /** How a machine told to boot locally leaves the network boot (DESIGN §4). */
    localBoot: z.enum(LOCAL_BOOT_METHODS).default("exit"),
  })
  .superRefine((p, ctx) => {
    if ((p.kernel === undefined) === (p.talos === undefined)) {
      ctx.addIssue({ code: "custom", path: ["kernel"], message: "give exactly one of kernel (with initrd) or talos ({version, schematic?, arch?})" });
    }
    if (p.talos && p.initrd.length > 0) ctx.addIssue({ code: "custom", path: ["initrd"], message: "a talos profile takes its initramfs from the asset cache: drop initrd" });
    if (p.talos && p.cmdline !== "") {
      ctx.addIssue({ code: "custom", path: ["cmdline"], message: "a talos profile builds its command line per Talos version: put PXE-only arguments in talos.extraArgs" });
    }
  });

export const machineSchema = z.strictObject({
  mac,
  profile: profileName,
  hostname: hostname.optional(),
  bootfile: bootfile.optional(),
});

const listenSchema = z.string().refine((s) => /^(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):\d{1,5}$/.test(s), {
  message: "expected address:port such as 0.0.0.0:8443",
});

export const configSchema = z.strictObject({
  server: z
    .strictObject({
      /** IPv4 the clients reach us at: siaddr, option 54, every URL we hand out. */
      address: ipv4.optional(),
      /** DHCP is answered on this interface only, and replies leave by it. */
      interface: z.string().regex(/^[A-Za-z0-9_.:@-]{1,15}$/, { message: "expected a network interface name" }).optional(),
    })
    .default({}),
  dhcp: z.strictObject({ enabled: z.boolean().default(true), port: port.default(67), pxePort: port.default(4011) }).default({ enabled: true, port: 67, pxePort: 4011 }),
  tftp: z.strictObject({ enabled: z.boolean().default(true), port: port.default(69) }).default({ enabled: true, port: 69 }),
  http: z
    .strictObject({ enabled: z.boolean().default(true), port: port.default(8080), address: ipv4.default("0.0.0.0") })
    .default({ enabled: true, port: 8080, address: "0.0.0.0" }),
  stateDir: absolutePath.default("/var/lib/talos-netboot"),
  /** Downloaded and imported Talos boot files; `<stateDir>/cache` by default. */
  cacheDir: cacheDirSchema,
  /** Where Talos boot assets and installers come from (mirrors for air-gapped sites). */
  talos: talosConfigSchema,
  /** Where VMs are created: Proxmox VE and/or local QEMU. */
  providers: providersSchema,
  log: z
    .strictObject({
      level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
      format: z.enum(["auto", "json", "pretty"]).default("auto"),
    })
    .default({ level: "info", format: "auto" }),
  bootloaders: z
    .strictObject({
      dir: absolutePath.default("/usr/lib/ipxe"),
      // "build": a grub-mkimage image with http and our address built in (unsigned); a path: serve that file; null: no GRUB.
      grubEfi: z.union([z.literal("build"), absolutePath]).nullable().default("build"),
      arm64Efi: absolutePath.nullable().default(null),
    })
    .default({ dir: "/usr/lib/ipxe", grubEfi: "build", arm64Efi: null }),
  api: z
    .strictObject({
      tokens: emptyIfNull(z.array(z.string().min(16, { message: "API tokens must have at least 16 characters" })).default([])),
      listen: listenSchema.optional(),
      tls: z.strictObject({ cert: absolutePath, key: absolutePath }).optional(),
    })
    .default({ tokens: [] }),
  profiles: emptyIfNull(z.record(profileName, profileSchema).default({})),
  machines: emptyIfNull(z.array(machineSchema).default([])),
  /** `ignore` (record the MAC, send nothing) or the name of a profile every unknown machine boots. */
  unknownMachines: z.string().default("ignore"),
  timeline: z.strictObject({ maxEntries: z.number().int().min(10).max(10_000).default(200) }).default({ maxEntries: 200 }),
});

export type RawConfig = z.input<typeof configSchema>;
export type ParsedConfig = z.output<typeof configSchema>;
export type ProfileConfig = z.output<typeof profileSchema>;
export type MachineConfig = z.output<typeof machineSchema>;

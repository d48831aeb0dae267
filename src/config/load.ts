import { existsSync, readFileSync, statSync } from "node:fs";
import { homedir, networkInterfaces } from "node:os";
import { join } from "node:path";
import { parseDocument } from "yaml";
import type { z } from "zod";
import { parseMac, type Mac } from "../boot/mac.js";
import { maintenanceModeChecks } from "../assets/profile.js";
import { packageRoot } from "../package-root.js";
import { configSchema, type MachineConfig, type ParsedConfig, type ProfileConfig } from "./schema.js";

/** A validated configuration with `server.address` resolved. */
export interface Config extends Omit<ParsedConfig, "server" | "machines"> {
  server: { address: string; interface: string | undefined };
  machines: Array<MachineConfig & { mac: Mac }>;
  /** Where it came from: a file path, or "embedded default". */
  source: string;
}
export type { ProfileConfig };

/** Every problem found, each naming the key path: `profiles.rescue.kernel: expected …`. */
export class ConfigError extends Error {
  constructor(readonly source: string, readonly problems: string[]) {
    super(`${source}: ${problems.length} problem${problems.length === 1 ? "" : "s"}:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

export { packageRoot };

export const EMBEDDED_DEFAULT = "embedded default";

export interface LoadOptions {
  /** Interfaces to pick the server address from; os.networkInterfaces() by default (tests inject). */
  interfaces?: ReturnType<typeof networkInterfaces>;
  /** Check that referenced files exist (start and `check`); off for pure parsing tests. */
  checkFiles?: boolean;
  /** Effective uid, to choose a state dir a non-root developer can write. */
  uid?: number;
}

export function loadConfigFile(path: string, opts: LoadOptions = {}): Config {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(path, [`cannot read the file: ${(err as Error).message}`]);
  }
  return parseConfigText(text, path, opts);
}

/** The embedded default: no profiles, no machines, unknown machines ignored; address auto-detected. */
export function loadEmbeddedDefault(opts: LoadOptions = {}): Config {
  const text = readFileSync(join(packageRoot(), "config", "default.yaml"), "utf8");
  const uid = opts.uid ?? process.getuid?.() ?? 0;
  const raw = parseYaml(text, EMBEDDED_DEFAULT) as Record<string, unknown>;
  if (uid !== 0 && raw.stateDir === undefined) {
    // /var/lib is root's: a developer trying the daemon gets a state dir of their own.
    const base = process.env.XDG_STATE_HOME ?? join(homedir(), ".local", "state");
    raw.stateDir = join(base, "talos-netboot");
  }
  const stateDir = (raw.stateDir as string | undefined) ?? "/var/lib/talos-netboot";
  // The default profile's files live in the state dir, wherever that is.
  const withStateDir = (v: unknown): unknown =>
    typeof v === "string" ? v.replaceAll("${stateDir}", stateDir) : Array.isArray(v) ? v.map(withStateDir) : v;
  for (const profile of Object.values((raw.profiles ?? {}) as Record<string, Record<string, unknown>>)) {
    for (const key of ["kernel", "initrd", "config"]) if (key in profile) profile[key] = withStateDir(profile[key]);
  }
  // Files may be dropped in later: the daemon warns about missing ones (missingFiles) instead of refusing to start.
  return validate(raw, EMBEDDED_DEFAULT, { ...opts, checkFiles: opts.checkFiles ?? false });
}

export function parseConfigText(text: string, source: string, opts: LoadOptions = {}): Config {
  return validate(parseYaml(text, source) ?? {}, source, opts);
}

function parseYaml(text: string, source: string): unknown {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(source, doc.errors.map((e) => `YAML: ${e.message.split("\n")[0]}`));
  }
  return doc.toJS();
}

function formatIssue(issue: z.core.$ZodIssue): string {
  const path = issue.path.map((p) => (typeof p === "number" ? `[${p}]` : String(p))).join(".").replace(/\.\[/g, "[");
  let message = issue.message;
  if (issue.code === "unrecognized_keys") message = `unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `'${k}'`).join(", ")}`;
  if (issue.code === "invalid_type" && /received undefined/.test(message)) message = "is required";
  return `${path || "(top level)"}: ${message}`;
}

function validate(raw: unknown, source: string, opts: LoadOptions): Config {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new ConfigError(source, ["(top level): expected a YAML mapping of settings"]);
  }
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(source, parsed.error.issues.map(formatIssue));
  const cfg = parsed.data;
  const problems: string[] = [];

  const seen = new Map<string, number>();
  const machines = cfg.machines.map((m, i) => {
    const mac = parseMac(m.mac) as Mac;
    const first = seen.get(mac);
    if (first !== undefined) problems.push(`machines[${i}].mac: ${mac} is also machines[${first}]`);
    seen.set(mac, i);
    if (!(m.profile in cfg.profiles)) problems.push(`machines[${i}].profile: no profile named '${m.profile}' (profiles: ${Object.keys(cfg.profiles).join(", ") || "none"})`);
    return { ...m, mac };
  });
  if (cfg.unknownMachines !== "ignore" && !(cfg.unknownMachines in cfg.profiles)) {
    problems.push(`unknownMachines: expected 'ignore' or a profile name, got '${cfg.unknownMachines}'`);
  }
  if (cfg.api.tls && !cfg.api.listen) problems.push("api.tls: needs api.listen (TLS runs on the API's own listener)");
  const httpPorts = new Set([cfg.http.port]);
  if (cfg.api.listen && cfg.http.enabled && httpPorts.has(Number(cfg.api.listen.split(":").pop()))) {
    problems.push(`api.listen: port ${cfg.api.listen.split(":").pop()} is already http.port`);
  }
  if (cfg.dhcp.enabled && cfg.dhcp.port === cfg.dhcp.pxePort) problems.push("dhcp.pxePort: must differ from dhcp.port");
  problems.push(...maintenanceModeChecks(cfg.profiles, cfg.unknownMachines).problems);

  const address = resolveAddress(cfg.server.address, cfg.server.interface, opts.interfaces ?? networkInterfaces(), problems);

  if (opts.checkFiles ?? true) checkFiles(cfg, problems);
  if (problems.length > 0) throw new ConfigError(source, problems);
  return { ...cfg, server: { address, interface: cfg.server.interface }, machines, source };
}

function resolveAddress(
  configured: string | undefined,
  iface: string | undefined,
  interfaces: ReturnType<typeof networkInterfaces>,
  problems: string[],
): string {
  if (configured) return configured;
  const candidates: Array<{ name: string; address: string }> = [];
  for (const [name, addrs] of Object.entries(interfaces)) {
    if (iface && name !== iface) continue;
    for (const a of addrs ?? []) if (a.family === "IPv4" && !a.internal) candidates.push({ name, address: a.address });
  }
  if (candidates.length === 1) return candidates[0]!.address;
  if (candidates.length === 0) {
    problems.push(
      iface
        ? `server.address: interface '${iface}' has no IPv4 address (or is down) — set server.address`
        : "server.address: no network interface is up with an IPv4 address — set server.address",
    );
  } else {
    problems.push(
      `server.address: several addresses could be ours (${candidates.map((c) => `${c.name} ${c.address}`).join(", ")}) — set server.address and server.interface to the provisioning network`,
    );
  }
  return "0.0.0.0";
}

/** Problems with files the config names (missing, not regular): the same list `check` reports. */
export function missingFiles(cfg: ParsedConfig | Config): string[] {
  const problems: string[] = [];
  checkFiles(cfg as ParsedConfig, problems);
  return problems;
}

function checkFiles(cfg: ParsedConfig, problems: string[]): void {
  const mustBeFile = (key: string, path: string | null | undefined, hint = "") => {
    if (!path || /^https?:\/\//.test(path)) return;
    try {
      if (!statSync(path).isFile()) problems.push(`${key}: ${path} is not a regular file`);
    } catch {
      problems.push(`${key}: ${path} does not exist${hint}`);
    }
  };
  const dirOk = existsSync(cfg.bootloaders.dir) && statSync(cfg.bootloaders.dir).isDirectory();
  if (!dirOk) problems.push(`bootloaders.dir: ${cfg.bootloaders.dir} is not a directory (Debian package 'ipxe' provides /usr/lib/ipxe)`);
  const usesGrub = Object.values(cfg.profiles).some((p) => p.bootloader === "grub");
  if (usesGrub) {
    if (!cfg.bootloaders.grubEfi) problems.push("bootloaders.grubEfi: a profile uses bootloader: grub, so this must name GRUB's network EFI image");
    else if (cfg.bootloaders.grubEfi !== "build") mustBeFile("bootloaders.grubEfi", cfg.bootloaders.grubEfi, " (Debian package 'grub-efi-amd64-signed')");
  }
  mustBeFile("bootloaders.arm64Efi", cfg.bootloaders.arm64Efi);
  for (const [name, p] of Object.entries(cfg.profiles)) {
    mustBeFile(`profiles.${name}.kernel`, p.kernel);
    p.initrd.forEach((f, i) => mustBeFile(`profiles.${name}.initrd[${i}]`, f));
    mustBeFile(`profiles.${name}.config`, p.config);
  }
  if (cfg.api.tls) {
    mustBeFile("api.tls.cert", cfg.api.tls.cert);
    mustBeFile("api.tls.key", cfg.api.tls.key);
  }
  const pve = cfg.providers.proxmox;
  if (pve) {
    mustBeFile("providers.proxmox.tokenSecretFile", pve.tokenSecretFile);
    mustBeFile("providers.proxmox.caFile", pve.caFile);
  }
}

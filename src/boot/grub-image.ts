import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import type { Logger } from "pino";
import type { Config } from "../config/load.js";

/**
 * A network GRUB image for UEFI, built with grub-mkimage (Debian
 * `grub-efi-amd64-bin`), whose prefix is our own HTTP URL.
 *
 * Why: Debian's signed grubnetx64.efi has no `http` module and takes its
 * TFTP server from the site DHCP ACK (no proxyDHCP support), so beside a
 * PXE-unaware site DHCP server it never finds us. This image has http built
 * in and our address embedded: GRUB configures the NIC from the firmware's
 * cached DHCP ACK (site address, any server), then reads
 * `(http,<address>:<port>)/grub/grub.cfg`. It is unsigned: Secure Boot must
 * be off for it (README, "Boot flow").
 */

export const GRUB_MKIMAGE = "grub-mkimage";
export const GRUB_MODULE_DIR = "/usr/lib/grub/x86_64-efi";

/**
 * What our templates need, and no more; grub-mkimage adds the dependencies
 * (net, boot, relocator, ...) from moddep.lst. efinet/http: the NIC and the
 * protocol of every URL we hand out; tftp: grub.cfg-01-<mac> for operators who
 * point a prefix at TFTP; normal/configfile: bootstrap.cfg → per-MAC config;
 * linux: `linux`/`initrd`; minicmd: `exit` (local boot); echo, test: the
 * templates' and the embedded config's commands; efi_gop: a video mode for
 * the kernel handover on real screens. No disk or filesystem modules: nothing
 * here reads a disk. Booted in QEMU/OVMF by test/netboot/firmware-grub.test.ts.
 */
export const GRUB_MODULES: readonly string[] = [
  "efinet",
  "net",
  "http",
  "tftp",
  "normal",
  "configfile",
  "linux",
  "minicmd",
  "echo",
  "test",
  "efi_gop",
];

/**
 * Runs before `normal` reads $prefix/grub.cfg. When the image came over the
 * network, GRUB has already configured efinet from the firmware's cached
 * DHCP ACK; only an image started some other way needs its own DHCP.
 */
export const EMBEDDED_CONFIG = [
  "# talos-netboot: built-in config of the grub-mkimage network image",
  'if [ -z "$net_default_ip" ]; then net_bootp; fi',
  "",
].join("\n");

export interface GrubImageOptions {
  address: string;
  httpPort: number;
  /** The cache directory: built images live here, named by their cache key. */
  outDir: string;
  log: Logger;
  /** For tests; default GRUB_MODULE_DIR. */
  moduleDir?: string;
  /** For tests; default "grub-mkimage" on PATH. */
  mkimage?: string;
  timeoutMs?: number;
}

/** GRUB's device name for our HTTP server; IPv6 literals in brackets. */
export function grubHttpPrefix(address: string, httpPort: number): string {
  const host = isIP(address) === 6 ? `[${address}]` : address;
  return `(http,${host}:${httpPort})/grub`;
}

/** The argument list of grub-mkimage, without the program name. Pure. */
export function grubMkimageArgs(o: { address: string; httpPort: number; output: string; embeddedConfig: string; moduleDir: string; modules?: readonly string[] }): string[] {
  return [
    "-O",
    "x86_64-efi",
    "-d",
    o.moduleDir,
    "-o",
    o.output,
    "-p",
    grubHttpPrefix(o.address, o.httpPort),
    "-c",
    o.embeddedConfig,
    ...(o.modules ?? GRUB_MODULES),
  ];
}

/** The cache key: whatever changes the bytes of the image. Pure. */
export function grubImageKey(o: { address: string; httpPort: number; mkimageVersion: string; moduleDir: string; modules?: readonly string[] }): string {
  const h = createHash("sha256");
  h.update(
    JSON.stringify({
      address: o.address,
      httpPort: o.httpPort,
      version: o.mkimageVersion.trim(),
      moduleDir: o.moduleDir,
      modules: o.modules ?? GRUB_MODULES,
      config: EMBEDDED_CONFIG,
    }),
  );
  return h.digest("hex").slice(0, 16);
}

export function grubImageName(key: string): string {
  return `grubnetx64-${key}.efi`;
}

/** What is missing for a build, or null when grub-mkimage and the modules are there. */
export function grubBuildMissing(moduleDir = GRUB_MODULE_DIR): string | null {
  const absent = GRUB_MODULES.filter((m) => !existsSync(join(moduleDir, `${m}.mod`)));
  if (!existsSync(join(moduleDir, "moddep.lst")) || absent.length) {
    return `GRUB modules missing in ${moduleDir}${absent.length ? ` (${absent.join(", ")})` : ""} — apt-get install grub-efi-amd64-bin`;
  }
  return null;
}

/**
 * Builds (or finds in the cache) the image and returns its path. The image is
 * written under a temporary name and renamed, so a crash mid-build never
 * leaves a truncated image that a later start would serve; older images in
 * `outDir` are removed once the new one is in place.
 */
export async function buildGrubImage(opts: GrubImageOptions): Promise<string> {
  const moduleDir = opts.moduleDir ?? GRUB_MODULE_DIR;
  const mkimage = opts.mkimage ?? GRUB_MKIMAGE;
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const missing = grubBuildMissing(moduleDir);
  if (missing) throw new Error(missing);

  const version = (await run(mkimage, ["--version"], timeoutMs)).stdout;
  const key = grubImageKey({ address: opts.address, httpPort: opts.httpPort, mkimageVersion: version, moduleDir });
  const name = grubImageName(key);
  const path = join(opts.outDir, name);
  if (isNonEmptyFile(path)) {
    opts.log.debug({ path }, "GRUB network image found in the cache");
    return path;
  }

  mkdirSync(opts.outDir, { recursive: true, mode: 0o755 });
  const tmp = join(opts.outDir, `.${name}.${process.pid}.tmp`);
  const cfg = join(opts.outDir, `.embedded-${key}.${process.pid}.cfg`);
  try {
    writeFileSync(cfg, EMBEDDED_CONFIG, { mode: 0o644 });
    const started = Date.now();
    await run(mkimage, grubMkimageArgs({ address: opts.address, httpPort: opts.httpPort, output: tmp, embeddedConfig: cfg, moduleDir }), timeoutMs);
    if (!isNonEmptyFile(tmp)) throw new Error(`${mkimage} exited 0 but wrote no image`);
    renameSync(tmp, path);
    opts.log.info({ path, prefix: grubHttpPrefix(opts.address, opts.httpPort), ms: Date.now() - started }, "built the GRUB network image");
  } finally {
    rmSync(tmp, { force: true });
    rmSync(cfg, { force: true });
  }
  for (const old of readdirSync(opts.outDir)) {
    if (old !== name && /^grubnetx64-[0-9a-f]{16}\.efi$/.test(old)) rmSync(join(opts.outDir, old), { force: true });
  }
  return path;
}

/**
 * For the daemon at start: the image for `bootloaders.grubEfi: build`, or
 * undefined (not asked for, or the build failed: then buildBootloaderMap
 * falls back to Debian's signed image and says so). Never throws: a missing
 * GRUB must not stop an appliance that may only serve iPXE.
 */
export async function grubImageFor(cfg: Pick<Config, "bootloaders" | "server" | "http" | "stateDir">, log: Logger): Promise<string | undefined> {
  if (cfg.bootloaders.grubEfi !== "build") return undefined;
  try {
    return await buildGrubImage({ address: cfg.server.address, httpPort: cfg.http.port, outDir: join(cfg.stateDir, "cache", "grub"), log });
  } catch (err) {
    log.warn({ err: (err as Error).message }, "cannot build the GRUB network image");
    return undefined;
  }
}

function isNonEmptyFile(path: string): boolean {
  try {
    const s = statSync(path);
    return s.isFile() && s.size > 0;
  } catch {
    return false;
  }
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(" ")} failed: ${err.message}${stderr ? `\n${stderr.trim()}` : ""}`));
      else resolve({ stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

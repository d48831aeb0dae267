import { readdirSync, realpathSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "../config/load.js";
import { BOOTLOADER } from "./decision.js";

/**
 * The boot binaries, as a fixed map built at start: request name → the file
 * to open. Symlinks are resolved here, once, from the operator's
 * configuration (Debian's ipxe.efi is a symlink to /boot/ipxe.efi), so a
 * request is a map lookup and never a path walk (DESIGN §3).
 */
export interface BootloaderMap {
  files: ReadonlyMap<string, string>;
  warnings: string[];
}

export function buildBootloaderMap(cfg: Config["bootloaders"]): BootloaderMap {
  const files = new Map<string, string>();
  const warnings: string[] = [];
  let names: string[] = [];
  try {
    names = readdirSync(cfg.dir);
  } catch {
    warnings.push(`bootloaders.dir ${cfg.dir} cannot be read: no iPXE binaries will be served (Debian package 'ipxe' provides /usr/lib/ipxe)`);
  }
  for (const name of names.sort()) {
    const real = regularFile(join(cfg.dir, name));
    if (real) files.set(name, real);
  }
  for (const wanted of [BOOTLOADER.bios, BOOTLOADER.uefi]) {
    if (names.length > 0 && !files.has(wanted)) warnings.push(`bootloaders.dir ${cfg.dir} has no ${wanted}: clients that need it will not be answered`);
  }
  const extra = (name: string, path: string | null, key: string) => {
    if (!path) return;
    const real = regularFile(path);
    if (real) files.set(name, real);
    else warnings.push(`${key} ${path} is not a readable file: ${name} will not be served`);
  };
  extra(BOOTLOADER.grub, cfg.grubEfi, "bootloaders.grubEfi");
  extra(BOOTLOADER.arm64, cfg.arm64Efi, "bootloaders.arm64Efi");
  return { files, warnings };
}

function regularFile(path: string): string | null {
  try {
    const real = realpathSync(path);
    return statSync(real).isFile() ? real : null;
  } catch {
    return null;
  }
}

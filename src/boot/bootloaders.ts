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

/** Debian's signed GRUB network image (grub-efi-amd64-signed): the fallback when `grubEfi: build` cannot build. */
export const DEBIAN_SIGNED_GRUB = "/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed";

/**
 * `grubImage` is the image built for `bootloaders.grubEfi: build` (see
 * grub-image.ts), or undefined when none could be built: then Debian's
 * signed image is served instead, with a warning, since it only finds us when
 * the site DHCP server names us as next-server.
 */
export function buildBootloaderMap(cfg: Config["bootloaders"], grubImage?: string, usesGrub = true): BootloaderMap {
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
  if (cfg.grubEfi === "build") {
    if (grubImage) extra(BOOTLOADER.grub, grubImage, "the built GRUB image");
    else {
      const fallback = regularFile(DEBIAN_SIGNED_GRUB);
      if (fallback) files.set(BOOTLOADER.grub, fallback);
      // Only worth saying when a profile boots GRUB.
      if (usesGrub) warnings.push(
        `bootloaders.grubEfi is "build" but no GRUB image was built (needs grub-mkimage, Debian package 'grub-efi-amd64-bin'): ` +
          (fallback
            ? `serving Debian's signed ${DEBIAN_SIGNED_GRUB}, which finds us only when the site DHCP server names this host as next-server`
            : `${BOOTLOADER.grub} will not be served (nor is ${DEBIAN_SIGNED_GRUB} there: Debian package 'grub-efi-amd64-signed')`),
      );
    }
  } else extra(BOOTLOADER.grub, cfg.grubEfi, "bootloaders.grubEfi");
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

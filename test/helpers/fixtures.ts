import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Booter, type BootSettings } from "../../src/boot/booter.js";
import type { BootloaderMap } from "../../src/boot/bootloaders.js";
import { parseMac, type Mac } from "../../src/boot/mac.js";
import type { FirmwareFacts } from "../../src/boot/types.js";
import { loadTemplates } from "../../src/boot/templates.js";
import { BootUrls } from "../../src/boot/urls.js";
import { packageRoot, type ProfileConfig } from "../../src/config/load.js";
import { silentLogger } from "../../src/log.js";
import { openMemoryDatabase } from "../../src/store/db.js";
import { MachineStore } from "../../src/store/machines.js";

export const mac = (text: string): Mac => {
  const m = parseMac(text);
  if (!m) throw new Error(`bad MAC in test: ${text}`);
  return m;
};

export function tempDir(prefix = "tnb-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function profile(over: Partial<ProfileConfig> = {}): ProfileConfig {
  return { kernel: "/srv/vmlinuz", initrd: ["/srv/initrd.img"], cmdline: "console=ttyS0", bootloader: "ipxe", once: false, localBoot: "exit", allowMaintenance: false, ...over };
}

/** A bootloader map with the usual Debian names; `extra` adds e.g. the arm64 binary. */
export function bootloaders(names: string[] = ["undionly.kpxe", "ipxe.efi", "snponly.efi", "grubnetx64.efi"]): BootloaderMap {
  return { files: new Map(names.map((n) => [n, `/usr/lib/ipxe/${n}`])), warnings: [] };
}

export function settings(over: Partial<BootSettings> = {}): BootSettings {
  return {
    profiles: { rescue: profile({ config: "/srv/node.yaml" }) },
    unknownMachines: "ignore",
    bootloaders: bootloaders(),
    urls: new BootUrls("192.168.77.1", 8080),
    templates: loadTemplates(join(packageRoot(), "boot-templates")),
    ...over,
  };
}

export function booterWithStore(over: Partial<BootSettings> = {}, neighbour?: (ip: string) => Promise<Mac | undefined>) {
  const store = new MachineStore(openMemoryDatabase(), 50);
  const booter = new Booter(settings(over), store, silentLogger(), neighbour ? { neighbour } : {});
  return { store, booter };
}

/** A directory with a kernel, an initrd and a config file, for tests that serve real files. */
export function bootFiles(): { dir: string; kernel: string; initrd: string; config: string } {
  const dir = tempDir("tnb-files-");
  mkdirSync(dir, { recursive: true });
  const kernel = join(dir, "vmlinuz");
  const initrd = join(dir, "initrd.img");
  const config = join(dir, "node.yaml");
  writeFileSync(kernel, Buffer.alloc(70_000, 7));
  writeFileSync(initrd, Buffer.alloc(150_000, 9));
  writeFileSync(config, "version: v1alpha1\nmachine:\n  type: worker\n");
  return { dir, kernel, initrd, config };
}

/** Firmware facts of a plain (non-iPXE, unrelayed, port 67) PXE request from 52:54:00:12:34:56. */
export function firmwareFacts(over: Partial<FirmwareFacts> = {}): FirmwareFacts {
  return {
    mac: mac("52:54:00:12:34:56"),
    arch: 0,
    httpClient: false,
    ipxe: false,
    uuid: undefined,
    pxePort: false,
    giaddr: "0.0.0.0",
    ...over,
  };
}

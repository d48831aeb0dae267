import type { ProfileConfig } from "../config/load.js";
import type { Mac } from "./mac.js";
import type { DhcpAnswer, FirmwareFacts } from "./types.js";
import type { BootUrls } from "./urls.js";

/** TFTP names of the boot binaries the appliance knows by role. */
export const BOOTLOADER = {
  bios: "undionly.kpxe",
  uefi: "ipxe.efi",
  grub: "grubnetx64.efi",
  arm64: "ipxe-arm64.efi",
} as const;

/** The part of a machine record the boot decision reads. */
export interface MachineView {
  mac: Mac;
  profile: string;
  bootfile: string | null;
}

export interface DecisionContext {
  profiles: Readonly<Record<string, ProfileConfig>>;
  /** TFTP names that can be served (bootloaders.dir contents plus grub/arm64 when configured). */
  bootloaders: { has(name: string): boolean };
  urls: BootUrls;
}

const ignore = (reason: string, detail: string): DhcpAnswer => ({ kind: "ignore", reason, detail });

/**
 * What a PXE/HTTP-boot request from a known machine gets (DESIGN §3). Pure:
 * the caller looks the machine up and records the outcome.
 */
export function decideDhcp(facts: FirmwareFacts, machine: MachineView, ctx: DecisionContext): DhcpAnswer {
  const profile = ctx.profiles[machine.profile];
  if (!profile) return ignore("unknown-profile", `machine ${machine.mac} names profile '${machine.profile}', which does not exist`);

  // iPXE already runs: hand it its script, never the iPXE binary again (no chain-load loop).
  if (facts.ipxe) {
    return {
      kind: "offer",
      firmware: "ipxe",
      bootFile: ctx.urls.script(machine.mac),
      pxeDiscoveryControl: false,
      vendorClass: facts.httpClient ? "HTTPClient" : "PXEClient",
    };
  }

  const arch = facts.arch ?? 0;
  const httpBoot = facts.httpClient || arch === 15 || arch === 16 || arch === 18 || arch === 19 || arch === 20;
  const need = (name: string): DhcpAnswer | null =>
    ctx.bootloaders.has(name) ? null : ignore("missing-bootloader", `the boot file ${name} is not available (bootloaders.dir / bootloaders.* in the config)`);

  if (httpBoot) {
    let name: string;
    if (arch === 16 || (facts.httpClient && (arch === 7 || arch === 9))) name = machine.bootfile ?? BOOTLOADER.uefi;
    else if (arch === 19 || (facts.httpClient && arch === 11)) name = BOOTLOADER.arm64;
    else return ignore("unsupported-arch", `HTTP boot for client architecture ${arch} is not supported (x64 UEFI 16 and arm64 UEFI 19 are)`);
    if (name === BOOTLOADER.arm64 && !ctx.bootloaders.has(name)) return noArm64();
    return (
      need(name) ?? { kind: "offer", firmware: "uefi-http", bootFile: ctx.urls.bootloader(name), pxeDiscoveryControl: false, vendorClass: "HTTPClient" }
    );
  }

  switch (arch) {
    case 0:
      // A machine's `bootfile` is an x64 EFI binary (snponly.efi, …): BIOS always gets undionly.kpxe.
      return need(BOOTLOADER.bios) ?? {
        kind: "offer",
        firmware: "bios",
        bootFile: BOOTLOADER.bios,
        pxeDiscoveryControl: true,
        vendorClass: "PXEClient",
      };
    case 7:
    case 9: {
      const name = profile.bootloader === "grub" ? BOOTLOADER.grub : (machine.bootfile ?? BOOTLOADER.uefi);
      return need(name) ?? { kind: "offer", firmware: "uefi", bootFile: name, pxeDiscoveryControl: false, vendorClass: "PXEClient" };
    }
    case 11:
      if (!ctx.bootloaders.has(BOOTLOADER.arm64)) return noArm64();
      return { kind: "offer", firmware: "uefi", bootFile: BOOTLOADER.arm64, pxeDiscoveryControl: false, vendorClass: "PXEClient" };
    case 6:
      return ignore("unsupported-arch", "32-bit x86 UEFI (architecture 6) has no iPXE binary here: Debian's ipxe ships x86_64 EFI only");
    default:
      return ignore("unsupported-arch", `client architecture ${arch} is not supported (0 BIOS, 7/9 x64 UEFI, 11 arm64 UEFI, 16/19 UEFI HTTP)`);
  }
}

function noArm64(): DhcpAnswer {
  return ignore(
    "no-arm64-binary",
    "arm64 UEFI client, but bootloaders.arm64Efi is not set: Debian's ipxe package is x86 only — set it to an arm64 iPXE EFI binary",
  );
}

import type { ProfileConfig } from "../config/load.js";
import type { Mac } from "./mac.js";
import { initrdName, type BootUrls } from "./urls.js";

export type LocalBootMethod = ProfileConfig["localBoot"];

/** What one machine boots now, independent of the bootloader that will carry it out. */
export type BootPlan =
  | {
      mode: "install";
      mac: Mac;
      hostname: string;
      profile: string;
      kernelUrl: string;
      initrds: Array<{ url: string; name: string }>;
      /** Kernel command line: the profile's, then `talos.config=` when the profile has a config. */
      cmdline: string;
    }
  | { mode: "local"; mac: Mac; hostname: string; profile: string; method: LocalBootMethod };

export interface PlanInput {
  mac: Mac;
  hostname: string | null;
  profile: string;
  next: "profile" | "local";
  configToken: string;
}

/**
 * Pure: the machine record, its profile and the URL scheme → the plan.
 * `hasConfig`: the machine has a config to fetch (its profile's file, or one
 * generated for it); `cmdline`: a Talos profile's full command line.
 */
export function planBoot(
  machine: PlanInput,
  profile: ProfileConfig,
  urls: BootUrls,
  opts: { hasConfig?: boolean; cmdline?: string } = {},
): BootPlan {
  const hasConfig = opts.hasConfig ?? profile.config !== undefined;
  const hostname = machine.hostname ?? machine.mac.replaceAll(":", "");
  if (machine.next === "local") return { mode: "local", mac: machine.mac, hostname, profile: machine.profile, method: profile.localBoot };
  const args = profile.cmdline.trim() ? [profile.cmdline.trim()] : [];
  if (hasConfig) args.push(`talos.config=${urls.config(machine.mac, machine.configToken)}`);
  // A Talos profile's line is built per version by the assets layer, talos.config= included.
  const cmdline = opts.cmdline ?? args.join(" ");
  const initrdCount = profile.talos ? 1 : profile.initrd.length;
  return {
    mode: "install",
    mac: machine.mac,
    hostname,
    profile: machine.profile,
    kernelUrl: urls.kernel(machine.mac),
    initrds: Array.from({ length: initrdCount }, (_, i) => ({ url: urls.initrd(machine.mac, i), name: initrdName(i) })),
    cmdline,
  };
}

import type { Contract } from "./types.js";
import { talos1_9 } from "./v1_9.js";

/**
 * Talos 1.10: systemd-boot becomes the UEFI default (install kernel args only reach GRUB/BIOS installs);
 * the Image Factory installer is `metal-installer`.
 */
export const talos1_10: Contract = {
  ...talos1_9,
  version: "1.10",
  minor: 10,
  newestPatch: "1.10.9",
  defaultKubernetesVersion: "1.33.6",
  kubernetes: { oldestMinor: "1.28", newestMinor: "1.33" },
  installer: { default: "release", factoryPath: "metal-installer" },
  layout: {
    ...talos1_9.layout,
    installExtraKernelArgs: "grub-bios-only",
  },
};

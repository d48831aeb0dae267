import type { Contract } from "./types.js";
import { talos1_13 } from "./v1_13.js";

/**
 * Talos 1.14: Kubernetes settings split into ~20 Kube*Config documents, `machine.install` becomes
 * UnattendedInstallConfig, discovery/host DNS/sysctls become documents; only the Image Factory publishes
 * installers. The default Kubernetes version is 1.37 (the patch follows the Talos patch; 1.37.0 is the
 * floor every 1.14.x accepts).
 */
export const talos1_14: Contract = {
  ...talos1_13,
  version: "1.14",
  minor: 14,
  newestPatch: "1.14.7",
  defaultKubernetesVersion: "1.37.0",
  kubernetes: { oldestMinor: "1.32", newestMinor: "1.37" },
  installer: { default: "factory", factoryPath: "metal-installer" },
  layout: {
    ...talos1_13.layout,
    grubUseUKICmdline: false,
    installExtraKernelArgs: "schematic",
    install: "UnattendedInstallConfig",
    kubernetes: "documents",
    sysctls: "SysctlConfig",
    discovery: "documents",
    hostDNS: "ResolverConfig",
    defaultVolumeDocuments: true,
    securityProfile: true,
  },
};

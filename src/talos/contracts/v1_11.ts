import type { Contract } from "./types.js";

/**
 * Talos 1.11: disk encryption moves to VolumeConfig documents; last single-document contract.
 */
export const talos1_11: Contract = {
  version: "1.11",
  major: 1,
  minor: 11,
  newestPatch: "1.11.6",
  defaultKubernetesVersion: "1.34.1",
  kubernetes: { oldestMinor: "1.29", newestMinor: "1.34" },
  installer: { default: "release", factoryPath: "metal-installer" },
  layout: {
    legacyFeatureFlags: true,
    apiServerSANsIncludeEndpoint: true,
    disablePodSecurityPolicy: true,
    grubUseUKICmdline: false,
    emptyMachineNetwork: true,
    hostname: "machine.network",
    network: "machine.network",
    registryMirrors: "machine.registries",
    diskEncryption: "VolumeConfig",
    installExtraKernelArgs: "grub-bios-only",
    install: "machine.install",
    kubernetes: "v1alpha1",
    sysctls: "machine.sysctls",
    discovery: "v1alpha1",
    hostDNS: "machine.features",
    defaultVolumeDocuments: false,
    securityProfile: false,
  },
};

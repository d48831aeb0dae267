import type { Contract } from "./types.js";

/**
 * Talos 1.10: systemd-boot becomes the UEFI default (install kernel args only reach GRUB/BIOS installs);
 * the Image Factory installer is `metal-installer`.
 */
export const talos1_10: Contract = {
  version: "1.10",
  major: 1,
  minor: 10,
  newestPatch: "1.10.9",
  defaultKubernetesVersion: "1.33.6",
  kubernetes: { oldestMinor: "1.28", newestMinor: "1.33" },
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
    diskEncryption: "machine.systemDiskEncryption",
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

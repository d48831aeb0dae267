import type { Contract } from "./types.js";

/**
 * Talos 1.9: single v1alpha1 document; GRUB honours install-time kernel args.
 */
export const talos1_9: Contract = {
  version: "1.9",
  major: 1,
  minor: 9,
  newestPatch: "1.9.6",
  defaultKubernetesVersion: "1.32.4",
  kubernetes: { oldestMinor: "1.27", newestMinor: "1.32" },
  installer: { default: "release", factoryPath: "installer" },
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
    installExtraKernelArgs: "honoured",
    install: "machine.install",
    kubernetes: "v1alpha1",
    sysctls: "machine.sysctls",
    discovery: "v1alpha1",
    hostDNS: "machine.features",
    defaultVolumeDocuments: false,
    securityProfile: false,
  },
};

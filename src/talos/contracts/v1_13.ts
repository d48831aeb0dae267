import type { Contract } from "./types.js";

/**
 * Talos 1.13: `machine.network` is gone (KubeSpan and all network settings are documents).
 */
export const talos1_13: Contract = {
  version: "1.13",
  major: 1,
  minor: 13,
  newestPatch: "1.13.10",
  defaultKubernetesVersion: "1.36.3",
  kubernetes: { oldestMinor: "1.31", newestMinor: "1.36" },
  installer: { default: "release", factoryPath: "metal-installer" },
  layout: {
    legacyFeatureFlags: false,
    apiServerSANsIncludeEndpoint: false,
    disablePodSecurityPolicy: false,
    grubUseUKICmdline: true,
    emptyMachineNetwork: false,
    hostname: "HostnameConfig",
    network: "documents",
    registryMirrors: "RegistryMirrorConfig",
    diskEncryption: "VolumeConfig",
    installExtraKernelArgs: "deprecated",
    install: "machine.install",
    kubernetes: "v1alpha1",
    sysctls: "machine.sysctls",
    discovery: "v1alpha1",
    hostDNS: "machine.features",
    defaultVolumeDocuments: false,
    securityProfile: false,
  },
};

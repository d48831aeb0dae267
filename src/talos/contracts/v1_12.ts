import type { Contract } from "./types.js";

/**
 * Talos 1.12: multi-document configs (HostnameConfig always), registry mirrors and network settings
 * as documents, RBAC/apid key-usage flags and PSP switch hidden, `grubUseUKICmdline` on new installs.
 */
export const talos1_12: Contract = {
  version: "1.12",
  major: 1,
  minor: 12,
  newestPatch: "1.12.11",
  defaultKubernetesVersion: "1.35.4",
  kubernetes: { oldestMinor: "1.30", newestMinor: "1.35" },
  installer: { default: "release", factoryPath: "metal-installer" },
  layout: {
    legacyFeatureFlags: false,
    apiServerSANsIncludeEndpoint: false,
    disablePodSecurityPolicy: false,
    grubUseUKICmdline: true,
    emptyMachineNetwork: true,
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

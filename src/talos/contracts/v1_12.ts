import type { Contract } from "./types.js";
import { talos1_11 } from "./v1_11.js";

/**
 * Talos 1.12: multi-document configs (HostnameConfig always), registry mirrors and network settings
 * as documents, RBAC/apid key-usage flags and PSP switch hidden, `grubUseUKICmdline` on new installs.
 */
export const talos1_12: Contract = {
  ...talos1_11,
  version: "1.12",
  minor: 12,
  newestPatch: "1.12.11",
  defaultKubernetesVersion: "1.35.4",
  kubernetes: { oldestMinor: "1.30", newestMinor: "1.35" },
  layout: {
    ...talos1_11.layout,
    legacyFeatureFlags: false,
    apiServerSANsIncludeEndpoint: false,
    disablePodSecurityPolicy: false,
    grubUseUKICmdline: true,
    hostname: "HostnameConfig",
    network: "documents",
    registryMirrors: "RegistryMirrorConfig",
    installExtraKernelArgs: "deprecated",
  },
};

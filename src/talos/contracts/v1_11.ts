import type { Contract } from "./types.js";
import { talos1_10 } from "./v1_10.js";

/**
 * Talos 1.11: disk encryption moves to VolumeConfig documents; last single-document contract.
 */
export const talos1_11: Contract = {
  ...talos1_10,
  version: "1.11",
  minor: 11,
  newestPatch: "1.11.6",
  defaultKubernetesVersion: "1.34.1",
  kubernetes: { oldestMinor: "1.29", newestMinor: "1.34" },
  layout: {
    ...talos1_10.layout,
    diskEncryption: "VolumeConfig",
  },
};

import type { Contract } from "./types.js";
import { talos1_12 } from "./v1_12.js";

/**
 * Talos 1.13: `machine.network` is gone (KubeSpan and all network settings are documents).
 */
export const talos1_13: Contract = {
  ...talos1_12,
  version: "1.13",
  minor: 13,
  newestPatch: "1.13.10",
  defaultKubernetesVersion: "1.36.3",
  kubernetes: { oldestMinor: "1.31", newestMinor: "1.36" },
  layout: {
    ...talos1_12.layout,
    emptyMachineNetwork: false,
  },
};

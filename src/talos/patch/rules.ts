/**
 * Where Talos's strategic merge departs from "maps merge, lists append", per
 * document kind. Talos derives these from Go struct tags and custom Merge
 * methods (pkg/machinery/config/merge, `merge:"replace"`, NetworkDeviceList,
 * VlanList, AdmissionPluginConfigList, ConfigFileList, ImageVerificationRules,
 * meta.Args); our documents are untyped, so the same facts live here as data.
 *
 * Paths are field names from the document root; `[]` stands for "any item of
 * this list".
 */
import type { Contract } from "../contracts/index.js";

/** How the items of a list are matched when a patch merges into it. */
export type ListKey =
  /** Items with equal `field` merge; others are appended. */
  | { readonly kind: "field"; readonly field: string }
  /** An item with an equal `field` is replaced whole; others are appended. */
  | { readonly kind: "replace-by-field"; readonly field: string }
  /** Network devices: by `interface` name, else by an equal `deviceSelector`. */
  | { readonly kind: "device" };

interface KindRules {
  /** Fields a patch replaces instead of merging (`merge:"replace"`). */
  readonly replace?: readonly string[];
  /** Lists merged item by item. */
  readonly keyedLists?: Readonly<Record<string, ListKey>>;
  /**
   * `extraArgs` maps (meta.Args from 1.13): merged key by key, each value
   * replaced whole. Before 1.13 they are map[string]string and follow the
   * plain map rules (an empty string does not overwrite).
   */
  readonly args?: readonly string[];
}

const V1ALPHA1_ARGS = [
  "machine.kubelet.extraArgs",
  "cluster.apiServer.extraArgs",
  "cluster.controllerManager.extraArgs",
  "cluster.scheduler.extraArgs",
  "cluster.proxy.extraArgs",
  "cluster.etcd.extraArgs",
];

const RULES: Readonly<Record<string, KindRules>> = {
  v1alpha1: {
    replace: ["cluster.network.podSubnets", "cluster.network.serviceSubnets", "cluster.apiServer.auditPolicy"],
    keyedLists: {
      "machine.network.interfaces": { kind: "device" },
      "machine.network.interfaces[].vlans": { kind: "field", field: "vlanId" },
      "cluster.apiServer.admissionControl": { kind: "field", field: "name" },
    },
    args: V1ALPHA1_ARGS,
  },
  NetworkRuleConfig: { replace: ["ingress", "portSelector.ports"] },
  ExtensionServiceConfig: { keyedLists: { configFiles: { kind: "field", field: "mountPath" } } },
  ImageVerificationConfig: { keyedLists: { rules: { kind: "replace-by-field", field: "image" } } },
  // 1.14 documents.
  KubeNetworkConfig: { replace: ["podSubnets", "serviceSubnets"] },
  KubeAuditPolicyConfig: { replace: ["configuration"] },
  KubeAuthenticationConfig: { replace: ["configuration"] },
  KubeCredentialProviderConfig: { replace: ["configuration"] },
  KubeStaticPodConfig: { replace: ["pod"] },
  CRIBaseRuntimeSpecConfig: { replace: ["overrides"] },
  BGPInstanceConfig: { replace: ["advertise", "importRoutes", "neighbors"] },
  KubeAPIServerConfig: { args: ["extraArgs"] },
  KubeControllerManagerConfig: { args: ["extraArgs"] },
  KubeSchedulerConfig: { args: ["extraArgs"] },
  KubeProxyConfig: { args: ["extraArgs"] },
  KubeletConfig: { args: ["extraArgs"] },
};

export type FieldRule = { readonly kind: "replace" } | { readonly kind: "args" } | { readonly kind: "list"; readonly key: ListKey };

/** The rules for one document kind under one contract, looked up by path. */
export class MergeRules {
  private readonly rules: Map<string, FieldRule>;

  constructor(kind: string, contract: Contract) {
    const r = RULES[kind] ?? {};
    this.rules = new Map();
    for (const p of r.replace ?? []) this.rules.set(p, { kind: "replace" });
    for (const [p, key] of Object.entries(r.keyedLists ?? {})) this.rules.set(p, { kind: "list", key });
    // meta.Args replaced map[string]string in Talos 1.13.
    const argsAreTyped = contract.major > 1 || contract.minor >= 13;
    if (argsAreTyped) for (const p of r.args ?? []) this.rules.set(p, { kind: "args" });
  }

  at(path: string): FieldRule | undefined {
    return this.rules.get(path);
  }
}

/** `parent.child`, or `child` at the root. */
export function childPath(parent: string, key: string): string {
  return parent === "" ? key : `${parent}.${key}`;
}

/** The path pattern of any item of the list at `parent`. */
export function itemPath(parent: string): string {
  return `${parent}[]`;
}

/**
 * What every check needs: the report, the contract, the runtime mode, and a
 * view of the whole config (the v1alpha1 document, the others by kind).
 */
import type { Contract } from "../contracts/index.js";
import { documentKind, isV1Alpha1, type ConfigDocument } from "../document.js";
import { at, type Report } from "./report.js";

/** Talos's runtime modes (talosctl validate --mode). */
export const RUNTIME_MODES = ["metal", "cloud", "container", "metal-agent"] as const;
export type RuntimeMode = (typeof RUNTIME_MODES)[number];

export interface Context {
  readonly r: Report;
  readonly contract: Contract;
  readonly mode: RuntimeMode | undefined;
  readonly now: Date;
  readonly docs: readonly ConfigDocument[];
  /** The v1alpha1 document, when there is one. */
  readonly v1: Record<string, unknown> | undefined;
  /** `controlplane` or `init`: the node runs etcd and the Kubernetes control plane. */
  readonly controlPlane: boolean;
  /** A v1alpha1 document says `worker` (or its old spellings). Unknown types are neither. */
  readonly worker: boolean;
  /** The contract keeps Kubernetes settings in their own documents (1.14+). */
  readonly kubeDocuments: boolean;
  /** Whether the contract has this document kind (always true without a schema to tell). */
  knownKind(kind: string): boolean;
  find(kind: string): Record<string, unknown> | undefined;
  all(kind: string): Record<string, unknown>[];
}

export interface ContextOptions {
  readonly contract: Contract;
  readonly mode: RuntimeMode | undefined;
  readonly now: Date;
  readonly knownKind?: (kind: string) => boolean;
}

export function makeContext(r: Report, docs: readonly ConfigDocument[], opts: ContextOptions): Context {
  const { contract, mode, now } = opts;
  // machine.ParseType: "", "join" and "worker" all mean worker.
  const v1 = docs.find(isV1Alpha1);
  const type = at(v1, "machine.type");
  const all = (kind: string) => docs.filter((d) => !isV1Alpha1(d) && documentKind(d) === kind);
  return {
    r,
    contract,
    mode,
    now,
    docs,
    v1,
    controlPlane: type === "controlplane" || type === "init",
    worker: v1 !== undefined && (type === "worker" || type === "join" || type === "" || type === undefined),
    kubeDocuments: contract.layout.kubernetes === "documents",
    knownKind: opts.knownKind ?? (() => true),
    find: (kind) => all(kind)[0],
    all,
  };
}

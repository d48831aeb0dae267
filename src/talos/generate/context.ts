/**
 * The resolved input every document builder reads: one value, computed once
 * per generateConfigs call.
 */
import type { Contract, Layout } from "../contracts/index.js";
import type { ConfigDocument } from "../document.js";
import { KUBELET_IMAGE } from "./defaults.js";
import type { GenerateOptions } from "./options.js";
import type { SecretsInput } from "./secrets-input.js";

/** One machine-config document as plain data (a YAML mapping). */
export type Doc = ConfigDocument;

export type Role = "controlplane" | "worker";

export interface Context {
  readonly contract: Contract;
  readonly layout: Layout;
  readonly clusterName: string;
  /** The control-plane endpoint URL, as given. */
  readonly endpoint: string;
  /** Its host (brackets of an IPv6 literal removed), as Go's url.Hostname(). */
  readonly endpointHost: string;
  readonly kubernetesVersion: string;
  readonly secrets: SecretsInput;
  readonly options: GenerateOptions;
  readonly dnsDomain: string;
  readonly podSubnets: readonly string[];
  readonly serviceSubnets: readonly string[];
}

/** The header of every multi-document config document. */
export function docOf(kind: string, fields: Doc = {}): Doc {
  return { apiVersion: "v1alpha1", kind, ...fields };
}

/** v1alpha1 carries PEMs base64-encoded; the newer documents carry PEM text. */
export function base64(pem: string): string {
  return Buffer.from(pem, "utf8").toString("base64");
}

/** Go's yaml encoder writes map keys sorted; so do we, for map-typed fields. */
export function sortedMap<T>(record: Readonly<Record<string, T>>): Record<string, T> {
  return Object.fromEntries(Object.keys(record).sort().map((k) => [k, record[k] as T]));
}

/** Drops undefined values so optional fields vanish like Go's `omitempty`. */
export function compact(fields: Record<string, unknown>): Doc {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
}

export function image(repository: string, version: string): string {
  return `${repository}:v${version}`;
}

export function kubeletImage(ctx: Context): string {
  const { image: repo, version } = ctx.options.kubelet ?? {};
  // A reference with a tag or digest is used as given.
  if (repo !== undefined && (repo.includes("@") || /:[^/]+$/.test(repo))) return repo;
  return image(repo ?? KUBELET_IMAGE, (version ?? ctx.kubernetesVersion).replace(/^v/, ""));
}

export function nonEmpty<T>(list: readonly T[] | undefined): T[] | undefined {
  return list !== undefined && list.length > 0 ? [...list] : undefined;
}

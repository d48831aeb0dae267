/**
 * Talos machine-config generation: a pure function of (cluster name,
 * endpoint, Kubernetes version, secrets, contract, options) → the control
 * plane's and the worker's documents, in the order Talos's generator
 * (pkg/machinery/config/generate, release-1.14) writes them for that contract.
 */
import { ZodError } from "zod";
import type { Contract } from "./contracts/index.js";
import type { Context, Doc, Role } from "./generate/context.js";
import { DEFAULT_DNS_DOMAIN, DEFAULT_IPV4_POD_CIDR, DEFAULT_IPV4_SERVICE_CIDR } from "./generate/defaults.js";
import {
  blockDocuments,
  discoveryDocuments,
  installDocuments,
  registryDocuments,
  resolverDocuments,
  securityProfileDocuments,
  sysctlDocuments,
} from "./generate/documents.js";
import { GenerateError } from "./generate/errors.js";
import { kubernetesControlPlaneDocuments, kubernetesNodeDocuments } from "./generate/kubernetes.js";
import { networkDocuments } from "./generate/network.js";
import { generateOptionsSchema, type GenerateOptions } from "./generate/options.js";
import type { SecretsInput } from "./generate/secrets-input.js";
import { v1alpha1Document } from "./generate/v1alpha1.js";
import { kubernetesSupport, parseKubernetesVersion, VersionError } from "./version.js";

export type { Doc, Role } from "./generate/context.js";
export type { GenerateOptions, NodeNetwork, VolumeEncryption } from "./generate/options.js";
export type { SecretsInput, PemCertAndKey } from "./generate/secrets-input.js";
export { generateOptionsSchema } from "./generate/options.js";
export { secretsInputFromBundle } from "./generate/secrets-input.js";
export { GenerateError } from "./generate/errors.js";

export interface GenerateInput {
  readonly clusterName: string;
  /** The Kubernetes API endpoint, an https:// URL (`https://10.1.107.10:6443`). */
  readonly endpoint: string;
  /** Defaults to the contract's default Kubernetes version. */
  readonly kubernetesVersion?: string;
  readonly contract: Contract;
  readonly secrets: SecretsInput;
  readonly options?: GenerateOptions;
}

export interface GeneratedConfigs {
  readonly controlplane: Doc[];
  readonly worker: Doc[];
  /** Things the caller should tell the user (unsupported Kubernetes version, ignored options). */
  readonly warnings: string[];
}

function endpointHost(endpoint: string): string {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new GenerateError("endpoint", `"${endpoint}" is not a URL: expected https://<host>:<port>, e.g. https://10.1.107.10:6443`);
  }
  if (url.protocol !== "https:" || url.hostname === "") {
    throw new GenerateError("endpoint", `"${endpoint}" must be an https:// URL with a host, e.g. https://10.1.107.10:6443`);
  }
  return url.hostname.replace(/^\[(.*)\]$/, "$1");
}

function checkedOptions(options: GenerateOptions | undefined): GenerateOptions {
  try {
    return generateOptionsSchema.parse(options ?? {});
  } catch (err) {
    if (err instanceof ZodError) {
      const issue = err.issues[0];
      throw new GenerateError(`options.${issue?.path.join(".") ?? ""}`.replace(/\.$/, ""), issue?.message ?? "invalid");
    }
    throw err;
  }
}

function kernelArgsWarning(contract: Contract): string | undefined {
  const advice = "put kernel arguments for the installed system in the Image Factory schematic (customization.extraKernelArgs)";
  switch (contract.layout.installExtraKernelArgs) {
    case "honoured":
      return undefined;
    case "grub-bios-only":
      return `installExtraKernelArgs reach only GRUB (BIOS) installs on Talos ${contract.version}; UEFI systemd-boot ignores them: ${advice}`;
    case "deprecated":
      return `installExtraKernelArgs are deprecated in Talos ${contract.version} and ignored by systemd-boot and UKI boots (written as talosctl writes them): ${advice}`;
    case "schematic":
      return `installExtraKernelArgs were not written: Talos ${contract.version} has no install-time kernel arguments; ${advice}`;
  }
}

function warningsFor(contract: Contract, options: GenerateOptions, kubernetesVersion: string): string[] {
  const warnings: string[] = [];
  const support = kubernetesSupport(contract, kubernetesVersion);
  if (support.message) warnings.push(support.message);
  if ((options.installExtraKernelArgs?.length ?? 0) > 0) {
    const w = kernelArgsWarning(contract);
    if (w) warnings.push(w);
  }
  if (contract.layout.install === "UnattendedInstallConfig" && options.installImage && !options.installDisk) {
    warnings.push(
      `installImage was not written: Talos ${contract.version} writes UnattendedInstallConfig only with an install disk (installDisk)`,
    );
  }
  return warnings;
}

function context(input: GenerateInput): Context {
  const { contract } = input;
  if (!/^\S+$/.test(input.clusterName)) throw new GenerateError("clusterName", "expected a non-empty name without spaces");
  const host = endpointHost(input.endpoint);
  let kubernetesVersion: string;
  try {
    kubernetesVersion = parseKubernetesVersion(input.kubernetesVersion ?? contract.defaultKubernetesVersion);
  } catch (err) {
    if (err instanceof VersionError) throw new GenerateError("kubernetesVersion", err.message);
    throw err;
  }
  const options = checkedOptions(input.options);
  return {
    contract,
    layout: contract.layout,
    clusterName: input.clusterName,
    endpoint: input.endpoint,
    endpointHost: host,
    kubernetesVersion,
    secrets: input.secrets,
    options,
    dnsDomain: options.dnsDomain ?? DEFAULT_DNS_DOMAIN,
    // Talos switches to IPv6 defaults only when the endpoint string is a bare
    // IPv6 address, which is never a valid endpoint URL: the IPv4 defaults
    // always apply, and IPv6 clusters set their subnets.
    podSubnets: options.podSubnets ?? [DEFAULT_IPV4_POD_CIDR],
    serviceSubnets: options.serviceSubnets ?? [DEFAULT_IPV4_SERVICE_CIDR],
  };
}

function documentsFor(ctx: Context, role: Role): Doc[] {
  const resolver = resolverDocuments(ctx);
  return [
    v1alpha1Document(ctx, role),
    ...discoveryDocuments(ctx),
    ...installDocuments(ctx),
    ...resolver,
    ...sysctlDocuments(ctx),
    ...blockDocuments(ctx),
    ...securityProfileDocuments(ctx),
    ...registryDocuments(ctx),
    ...networkDocuments(ctx, role, resolver.length > 0),
    ...kubernetesNodeDocuments(ctx, role),
    ...kubernetesControlPlaneDocuments(ctx, role),
  ];
}

/**
 * Generates both roles' documents. Throws GenerateError (with the option's
 * path) for input that cannot make a valid config; returns warnings for
 * input Talos accepts but that will not do what the user may expect.
 */
export function generateConfigs(input: GenerateInput): GeneratedConfigs {
  const ctx = context(input);
  return {
    controlplane: documentsFor(ctx, "controlplane"),
    worker: documentsFor(ctx, "worker"),
    warnings: warningsFor(ctx.contract, ctx.options, ctx.kubernetesVersion),
  };
}

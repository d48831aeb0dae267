/**
 * Talos and Kubernetes version strings: what a user may type, what a contract
 * is, and which Kubernetes versions a Talos minor supports.
 */
import { CONTRACTS, findContract, NEWEST_CONTRACT, type Contract } from "./contracts/index.js";

export class VersionError extends Error {
  override name = "VersionError";
}

export interface TalosVersion {
  /** Full version without `v`: `1.14.7` (a bare minor resolves to its newest known patch). */
  readonly version: string;
  /** The version contract: the version's major.minor. */
  readonly contract: Contract;
}

const TALOS_VERSION = /^v?(\d+)\.(\d+)(?:\.(\d+)(-[0-9A-Za-z.-]+)?)?$/;
const KUBERNETES_VERSION = /^v?(\d+)\.(\d+)\.(\d+)(-[0-9A-Za-z.-]+)?$/;

function supportedList(): string {
  return CONTRACTS.map((c) => c.version).join(", ");
}

/**
 * `1.14.7`, `v1.14.7`, `1.14` (→ newest known 1.14 patch) or nothing (→ the
 * newest contract's newest patch). Pre-releases (`1.14.0-rc.1`) are kept as
 * given. Throws VersionError naming the supported minors.
 */
export function parseTalosVersion(input?: string): TalosVersion {
  const text = input?.trim() ?? "";
  if (text === "") return { version: NEWEST_CONTRACT.newestPatch, contract: NEWEST_CONTRACT };
  const m = TALOS_VERSION.exec(text);
  if (!m) throw new VersionError(`invalid Talos version "${text}": expected 1.14.7, v1.14.7 or 1.14`);
  const [, major, minor, patch, pre] = m;
  const contract = findContract(Number(major), Number(minor));
  if (!contract) {
    throw new VersionError(`Talos ${major}.${minor} is not supported: supported versions are ${supportedList()}`);
  }
  const version = patch === undefined ? contract.newestPatch : `${Number(major)}.${Number(minor)}.${Number(patch)}${pre ?? ""}`;
  return { version, contract };
}

/** A Kubernetes version as `1.28.0` (a leading `v` dropped); throws VersionError on anything else. */
export function parseKubernetesVersion(input: string): string {
  const m = KUBERNETES_VERSION.exec(input.trim());
  if (!m) throw new VersionError(`invalid Kubernetes version "${input}": expected a full version such as 1.32.4`);
  const [, major, minor, patch, pre] = m;
  return `${Number(major)}.${Number(minor)}.${Number(patch)}${pre ?? ""}`;
}

export interface KubernetesSupport {
  readonly supported: boolean;
  /** "1.32 to 1.37". */
  readonly range: string;
  /** Why it is not supported, naming the range; undefined when supported. */
  readonly message?: string;
}

function minorOf(version: string): [number, number] {
  const [major = "0", minor = "0"] = version.split(".");
  return [Number(major), Number.parseInt(minor, 10)];
}

function compareMinor(a: [number, number], b: [number, number]): number {
  return a[0] - b[0] || a[1] - b[1];
}

/**
 * Whether a Kubernetes version is within the minors a Talos contract supports
 * (pkg/machinery/compatibility). Talos's generator accepts any version; the
 * CLI warns and the API refuses with this message.
 */
export function kubernetesSupport(contract: Contract, kubernetesVersion: string): KubernetesSupport {
  const version = parseKubernetesVersion(kubernetesVersion);
  const { oldestMinor, newestMinor } = contract.kubernetes;
  const range = `${oldestMinor} to ${newestMinor}`;
  const v = minorOf(version);
  const supported = compareMinor(v, minorOf(oldestMinor)) >= 0 && compareMinor(v, minorOf(newestMinor)) <= 0;
  if (supported) return { supported, range };
  return {
    supported,
    range,
    message: `Kubernetes ${version} is outside the range Talos ${contract.version} supports (Kubernetes ${range})`,
  };
}

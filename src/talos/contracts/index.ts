/**
 * The supported Talos version contracts, oldest first. To support a new
 * minor: add `v1_NN.ts` beside the others and append it here; the newest entry
 * is the default contract.
 */
import type { Contract } from "./types.js";
import { talos1_9 } from "./v1_9.js";
import { talos1_10 } from "./v1_10.js";
import { talos1_11 } from "./v1_11.js";
import { talos1_12 } from "./v1_12.js";
import { talos1_13 } from "./v1_13.js";
import { talos1_14 } from "./v1_14.js";

export type { Contract, InstallerRule, Layout } from "./types.js";

export const CONTRACTS: readonly Contract[] = [talos1_9, talos1_10, talos1_11, talos1_12, talos1_13, talos1_14];

/** The newest supported contract: the default when no Talos version is asked for. */
export const NEWEST_CONTRACT: Contract = CONTRACTS[CONTRACTS.length - 1]!;

export function findContract(major: number, minor: number): Contract | undefined {
  return CONTRACTS.find((c) => c.major === major && c.minor === minor);
}

/** The Image Factory's default (empty) schematic: the sha256 of `customization: {}\n`. */
export const DEFAULT_SCHEMATIC = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba";
export const DEFAULT_FACTORY = "factory.talos.dev";
export const RELEASE_INSTALLER_REPOSITORY = "ghcr.io/siderolabs/installer";

export interface InstallerChoice {
  /** An Image Factory schematic ID; without one, release installers are used where they exist. */
  readonly schematic?: string;
  /** Image Factory registry host (default factory.talos.dev). */
  readonly factory?: string;
}

/**
 * The installer image for a full Talos version under its contract: the
 * release installer up to 1.13 (unless a schematic is asked for), the Image
 * Factory's installer otherwise (`installer/` below 1.10, `metal-installer/`
 * from 1.10), with the default schematic when none is given.
 */
export function installerImage(contract: Contract, fullVersion: string, choice: InstallerChoice = {}): string {
  const tag = `v${fullVersion.replace(/^v/, "")}`;
  if (choice.schematic === undefined && contract.installer.default === "release") {
    return `${RELEASE_INSTALLER_REPOSITORY}:${tag}`;
  }
  const schematic = choice.schematic ?? DEFAULT_SCHEMATIC;
  return `${choice.factory ?? DEFAULT_FACTORY}/${contract.installer.factoryPath}/${schematic}:${tag}`;
}

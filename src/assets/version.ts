import { AssetError } from "./types.js";

/** A full Talos version, as release tags and installer tags need it (`1.14.7`, `1.15.0-beta.1`). */
export interface TalosVersion {
  major: number;
  minor: number;
  patch: number;
  prerelease: string[];
  /** Without the leading `v`. */
  text: string;
}

const SEMVER = /^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$/;

/** The oldest Talos whose PXE kernel arguments and installer names we know (DESIGN §4). */
export const OLDEST_SUPPORTED = "1.9.0";

/** Parses `1.14.7` or `v1.14.7`; a bare `1.14` is refused (installer tags need the patch). */
export function parseTalosVersion(input: string): TalosVersion {
  const m = SEMVER.exec(input.trim());
  if (!m) {
    throw new AssetError("INVALID", `'${input}' is not a full Talos version such as 1.14.7 (major.minor.patch; a leading v is optional)`);
  }
  const v: TalosVersion = {
    major: Number(m[1]),
    minor: Number(m[2]),
    patch: Number(m[3]),
    prerelease: m[4] ? m[4].split(".") : [],
    text: input.trim().replace(/^v/, ""),
  };
  if (compareVersions(v, OLDEST_SUPPORTED) < 0) {
    throw new AssetError("INVALID", `Talos ${v.text} is older than ${OLDEST_SUPPORTED}, the oldest version talos-netboot knows how to boot`);
  }
  return v;
}

function parts(v: TalosVersion | string): TalosVersion {
  if (typeof v !== "string") return v;
  const m = SEMVER.exec(v)!;
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]), prerelease: m[4] ? m[4].split(".") : [], text: v };
}

/** Semantic-version precedence (what Talos's quirks use): 1.14.0-alpha.1 < 1.14.0. */
export function compareVersions(a: TalosVersion | string, b: TalosVersion | string): number {
  const x = parts(a);
  const y = parts(b);
  for (const k of ["major", "minor", "patch"] as const) if (x[k] !== y[k]) return x[k] < y[k] ? -1 : 1;
  if (x.prerelease.length === 0 || y.prerelease.length === 0) return y.prerelease.length - x.prerelease.length;
  const n = Math.min(x.prerelease.length, y.prerelease.length);
  for (let i = 0; i < n; i++) {
    const p = x.prerelease[i]!;
    const q = y.prerelease[i]!;
    if (p === q) continue;
    const pn = /^\d+$/.test(p);
    const qn = /^\d+$/.test(q);
    if (pn && qn) return Number(p) < Number(q) ? -1 : 1;
    if (pn !== qn) return pn ? -1 : 1;
    return p < q ? -1 : 1;
  }
  return x.prerelease.length - y.prerelease.length;
}

export const atLeast = (v: TalosVersion, min: string): boolean => compareVersions(v, min) >= 0;

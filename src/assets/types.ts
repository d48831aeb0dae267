/** The shared vocabulary of the boot-asset modules. */

export const ARCHES = ["amd64", "arm64"] as const;
export type Arch = (typeof ARCHES)[number];

/** Where a cached file came from: a Talos GitHub release, the Image Factory, or an operator's import. */
export const ASSET_SOURCES = ["release", "factory", "import"] as const;
export type AssetSource = (typeof ASSET_SOURCES)[number];

export const ASSET_FILES = ["kernel", "initramfs"] as const;
export type AssetFile = (typeof ASSET_FILES)[number];

/** What identifies one cached file. `schematic` is null for release files (and imports without one). */
export interface AssetKey {
  source: AssetSource;
  schematic: string | null;
  /** Full Talos version without the leading `v`: `1.14.7`. */
  version: string;
  arch: Arch;
  file: AssetFile;
}

/** A kernel + initramfs pair: everything but the file. */
export type AssetSetKey = Omit<AssetKey, "file">;

export const SCHEMATIC_ID = /^[0-9a-f]{64}$/;

export function keyString(k: AssetKey): string {
  return `${k.source}/${k.schematic ?? "-"}/${k.version}/${k.arch}/${k.file}`;
}

export type AssetErrorCode =
  | "CHECKSUM_MISMATCH"
  | "NO_CHECKSUM"
  | "DOWNLOAD_FAILED"
  | "NOT_CACHED"
  | "INVALID"
  | "TIMEOUT";

/** Every failure of the asset layer: one line that says what and why. */
export class AssetError extends Error {
  constructor(
    readonly code: AssetErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "AssetError";
  }
}

/** A download whose bytes are not the ones expected; names both digests. */
export class ChecksumMismatchError extends AssetError {
  constructor(
    readonly what: string,
    readonly algorithm: "sha256" | "sha512" | "size",
    readonly expected: string,
    readonly actual: string,
    readonly basis: string,
  ) {
    super(
      "CHECKSUM_MISMATCH",
      `${what}: ${algorithm} mismatch — expected ${expected} (${basis}), got ${actual}; nothing was cached`,
    );
  }
}

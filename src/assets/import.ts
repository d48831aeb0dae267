import { chmod, copyFile, mkdir, readFile, rm } from "node:fs/promises";
import { basename } from "node:path";
import type { Logger } from "pino";
import type { AssetCache, CachedAsset } from "./cache.js";
import { digestFile, parseChecksumList } from "./checksums.js";
import { factoryFileName, releaseFileName } from "./sources.js";
import { AssetError, ChecksumMismatchError, type Arch, type AssetFile, type AssetKey } from "./types.js";
import type { TalosVersion } from "./version.js";

export interface ImportRequest {
  version: TalosVersion;
  arch: Arch;
  /** The schematic the files were built with; null for release files. */
  schematic: string | null;
  kernel: string;
  initramfs: string;
  /** A `sha256sum` list naming the files (by their own name or Talos's). */
  sha256sums?: string;
}

/**
 * Air-gapped import: copies an operator's kernel and initramfs into the
 * cache under source `import`. With a sha256 list the copies must match it;
 * without one the digests are recorded as given (and logged), since there
 * is nothing to check them against.
 */
export async function importAssets(cache: AssetCache, req: ImportRequest, log: Logger): Promise<CachedAsset[]> {
  let sums: Map<string, string> | undefined;
  if (req.sha256sums) {
    let text: string;
    try {
      text = await readFile(req.sha256sums, "utf8");
    } catch (err) {
      throw new AssetError("INVALID", `cannot read ${req.sha256sums}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    sums = parseChecksumList(text, "sha256");
    if (sums.size === 0) throw new AssetError("INVALID", `${req.sha256sums} has no sha256 lines ("<64 hex>  <file name>")`);
  }
  // Copy and check both files before either enters the cache: a pair is
  // imported whole or not at all.
  const staged: Array<{ key: AssetKey; tmp: string; expected: string | undefined }> = [];
  try {
    for (const file of ["kernel", "initramfs"] as const satisfies readonly AssetFile[]) {
      const source = req[file];
      const key: AssetKey = { source: "import", schematic: req.schematic, version: req.version.text, arch: req.arch, file };
      let expected: string | undefined;
      if (sums) {
        const names = [basename(source), releaseFileName(file, req.arch), factoryFileName(file, req.arch)];
        const name = names.find((n) => sums!.has(n));
        if (!name) throw new AssetError("NO_CHECKSUM", `${req.sha256sums} lists none of ${names.join(", ")}`);
        expected = sums.get(name);
      }
      await mkdir(cache.dirFor(key), { recursive: true, mode: 0o755 });
      const tmp = cache.tempPathFor(key);
      staged.push({ key, tmp, expected });
      try {
        await copyFile(source, tmp);
        // Boot files are public; the copy must not keep an operator's private mode.
        await chmod(tmp, 0o644);
      } catch (err) {
        throw new AssetError("INVALID", `cannot read ${source}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      if (expected !== undefined) {
        const actual = (await digestFile(tmp)).sha256;
        if (actual !== expected) throw new ChecksumMismatchError(`import ${file} ${source}`, "sha256", expected, actual, req.sha256sums!);
      }
    }
    const out: CachedAsset[] = [];
    for (const s of staged) {
      const entry = await cache.commit(s.key, s.tmp, {
        sha256: s.expected,
        basis: sums ? `${req.sha256sums}` : "the imported file itself (no checksum list given)",
        verifiedBy: sums ? "sha256sums" : "unverified-import",
        upstream: null,
      });
      if (!sums) log.warn({ file: req[s.key.file], sha256: entry.sha256 }, "imported without a checksum list: compare this sha256 with the published one");
      out.push(entry);
    }
    return out;
  } finally {
    await Promise.all(staged.map((s) => rm(s.tmp, { force: true })));
  }
}

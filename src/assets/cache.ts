import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import { z } from "zod";
import { digestFile, type FileDigests } from "./checksums.js";
import {
  ARCHES,
  ASSET_FILES,
  ASSET_SOURCES,
  ChecksumMismatchError,
  keyString,
  SCHEMATIC_ID,
  type AssetKey,
} from "./types.js";

/**
 * Content store for Talos boot files, one file per (source, schematic,
 * version, arch, file):
 *
 *   <cacheDir>/talos/<source>/<schematic|_>/<version>/<arch>/<kernel|initramfs>
 *   <cacheDir>/talos/<source>/<schematic|_>/<version>/<arch>/<kernel|initramfs>.json   the record
 *
 * The record (manifest) beside each file is the commit marker: a file
 * counts only when its manifest exists, is valid and names its size. Bytes
 * arrive in a temporary file in the same directory, are checked, renamed
 * into place, and only then is the manifest written (by rename too). A
 * crash leaves at worst a temporary file or a file without a manifest;
 * `gc` removes both. Records live with the files rather than in SQLite so
 * that the cache directory is self-describing: copied to an air-gapped
 * host, or deleted, it never disagrees with a database.
 */

const VERIFIED_BY = ["release-checksums", "first-fetch", "sha256sums", "unverified-import"] as const;
export type VerifiedBy = (typeof VERIFIED_BY)[number];

const manifestSchema = z.object({
  format: z.literal(1),
  source: z.enum(ASSET_SOURCES),
  schematic: z.string().regex(SCHEMATIC_ID).nullable(),
  version: z.string().min(1),
  arch: z.enum(ARCHES),
  file: z.enum(ASSET_FILES),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  sha512: z.string().regex(/^[0-9a-f]{128}$/),
  size: z.number().int().min(0),
  upstream: z.string().nullable(),
  verifiedBy: z.enum(VERIFIED_BY),
  /** What the bytes were checked against, in words: `sha512sum.txt of v1.14.7`. */
  basis: z.string(),
  fetchedAt: z.string(),
});
export type Manifest = z.output<typeof manifestSchema>;

export interface CachedAsset {
  key: AssetKey;
  path: string;
  sha256: string;
  size: number;
  manifest: Manifest;
}

/** What a new file must match; any digest left out is recorded, not checked. */
export interface Expectation {
  sha256?: string;
  sha512?: string;
  size?: number;
  /** For the error message and the record: where the expected values came from. */
  basis: string;
  verifiedBy: VerifiedBy;
  upstream: string | null;
}

/** Produces the bytes of a key into `tmp` and says what they must match. */
export type Producer = (tmp: string) => Promise<Expectation>;

const VERSION_DIR = /^[0-9]+\.[0-9]+\.[0-9]+(?:-[0-9A-Za-z.-]+)?$/;
/** Temporary files: `<file>.part-<pid>-<random>`. */
export const PART_FILE = /^(kernel|initramfs)\.part-\d+-[0-9a-f]+$/;

export class AssetCache {
  readonly root: string;
  private readonly inflight = new Map<string, Promise<CachedAsset>>();
  /** Files re-hashed by this process, by path, with the stat they had: reuse checks them once. */
  private readonly checked = new Map<string, string>();

  constructor(
    readonly cacheDir: string,
    private readonly log: Logger,
  ) {
    this.root = join(cacheDir, "talos");
  }

  dirFor(key: Omit<AssetKey, "file">): string {
    return join(this.root, key.source, key.schematic ?? "_", key.version, key.arch);
  }

  pathFor(key: AssetKey): string {
    return join(this.dirFor(key), key.file);
  }

  manifestPathFor(key: AssetKey): string {
    return `${this.pathFor(key)}.json`;
  }

  async readManifest(key: AssetKey): Promise<Manifest | undefined> {
    let text: string;
    try {
      text = await readFile(this.manifestPathFor(key), "utf8");
    } catch {
      return undefined;
    }
    try {
      const m = manifestSchema.parse(JSON.parse(text));
      const same = m.source === key.source && m.schematic === key.schematic && m.version === key.version && m.arch === key.arch && m.file === key.file;
      if (same) return m;
    } catch {
      // fall through
    }
    this.log.warn({ path: this.manifestPathFor(key) }, "ignoring an invalid asset record");
    return undefined;
  }

  /**
   * The verified entry, or undefined. The first use in this process re-hashes
   * the file against its record ("verify on reuse"); later uses compare the
   * file's stat with the one hashed. A file that no longer matches loses its
   * bytes (the record stays, so the re-download must match it again).
   */
  async get(key: AssetKey): Promise<CachedAsset | undefined> {
    const manifest = await this.readManifest(key);
    if (!manifest) return undefined;
    const path = this.pathFor(key);
    let st;
    try {
      st = await stat(path);
    } catch {
      return undefined;
    }
    if (!st.isFile() || st.size !== manifest.size) {
      this.log.warn({ path, size: st.size, recorded: manifest.size }, "cached asset has the wrong size; it will be fetched again");
      await rm(path, { force: true });
      return undefined;
    }
    const fingerprint = `${st.ino}:${st.size}:${st.mtimeMs}`;
    if (this.checked.get(path) !== fingerprint) {
      const d = await digestFile(path);
      if (d.sha256 !== manifest.sha256) {
        this.log.error({ path, expected: manifest.sha256, actual: d.sha256 }, "cached asset changed on disk; removed, it will be fetched again");
        await rm(path, { force: true });
        this.checked.delete(path);
        return undefined;
      }
      this.checked.set(path, fingerprint);
    }
    return { key, path, sha256: manifest.sha256, size: manifest.size, manifest };
  }

  /**
   * The entry for a key: from the cache, or produced once however many
   * callers ask at the same time.
   */
  ensure(key: AssetKey, produce: Producer): Promise<CachedAsset> {
    const id = keyString(key);
    let p = this.inflight.get(id);
    if (!p) {
      p = (async () => (await this.get(key)) ?? (await this.fill(key, produce)))().finally(() => this.inflight.delete(id));
      this.inflight.set(id, p);
    }
    return p;
  }

  /** True while a download for the key runs in this process. */
  busy(key: AssetKey): boolean {
    return this.inflight.has(keyString(key));
  }

  tempPathFor(key: AssetKey): string {
    return `${this.pathFor(key)}.part-${process.pid}-${randomBytes(6).toString("hex")}`;
  }

  private async fill(key: AssetKey, produce: Producer): Promise<CachedAsset> {
    await mkdir(this.dirFor(key), { recursive: true, mode: 0o755 });
    const tmp = this.tempPathFor(key);
    try {
      const expect = await produce(tmp);
      // A record that survived its bytes pins them: the same sha256 again.
      const previous = await this.readManifest(key);
      return await this.commit(key, tmp, expect, previous);
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /**
   * Checks `tmp` against the expectation (and a previous record of the key),
   * then moves it into place and writes the record. On any mismatch the
   * temporary file is removed and nothing enters the cache.
   */
  async commit(key: AssetKey, tmp: string, expect: Expectation, previous?: Manifest): Promise<CachedAsset> {
    let d: FileDigests;
    try {
      d = await digestFile(tmp);
      const what = `${key.source} ${key.file} ${key.arch} v${key.version}${key.schematic ? ` (schematic ${key.schematic.slice(0, 12)}…)` : ""}`;
      if (expect.size !== undefined && d.size !== expect.size) {
        throw new ChecksumMismatchError(what, "size", String(expect.size), String(d.size), expect.basis);
      }
      if (expect.sha512 !== undefined && d.sha512 !== expect.sha512) throw new ChecksumMismatchError(what, "sha512", expect.sha512, d.sha512, expect.basis);
      if (expect.sha256 !== undefined && d.sha256 !== expect.sha256) throw new ChecksumMismatchError(what, "sha256", expect.sha256, d.sha256, expect.basis);
      if (previous && previous.source !== "import" && d.sha256 !== previous.sha256) {
        throw new ChecksumMismatchError(
          what,
          "sha256",
          previous.sha256,
          d.sha256,
          `recorded on ${previous.fetchedAt}; delete ${this.manifestPathFor(key)} to accept new bytes`,
        );
      }
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    const manifest: Manifest = {
      format: 1,
      source: key.source,
      schematic: key.schematic,
      version: key.version,
      arch: key.arch,
      file: key.file,
      sha256: d.sha256,
      sha512: d.sha512,
      size: d.size,
      upstream: expect.upstream,
      verifiedBy: expect.verifiedBy,
      basis: expect.basis,
      fetchedAt: new Date().toISOString(),
    };
    const path = this.pathFor(key);
    await rename(tmp, path);
    const mtmp = `${this.manifestPathFor(key)}.tmp-${process.pid}`;
    await writeFile(mtmp, `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o644 });
    await rename(mtmp, this.manifestPathFor(key));
    this.checked.delete(path);
    this.log.info({ key: keyString(key), sha256: d.sha256, bytes: d.size, verifiedBy: expect.verifiedBy }, "asset cached");
    return { key, path, sha256: d.sha256, size: d.size, manifest };
  }

  /** Removes a key's file and record. */
  async remove(key: AssetKey): Promise<void> {
    await rm(this.pathFor(key), { force: true });
    await rm(this.manifestPathFor(key), { force: true });
    this.checked.delete(this.pathFor(key));
  }

  /** Re-hashes a cached file against its record. */
  async verify(key: AssetKey): Promise<{ ok: true } | { ok: false; problem: string }> {
    const m = await this.readManifest(key);
    if (!m) return { ok: false, problem: "no valid record" };
    let d: FileDigests;
    try {
      d = await digestFile(this.pathFor(key));
    } catch (err) {
      return { ok: false, problem: `cannot read the file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
    }
    if (d.size !== m.size) return { ok: false, problem: `size ${d.size}, recorded ${m.size}` };
    if (d.sha256 !== m.sha256) return { ok: false, problem: `sha256 ${d.sha256}, recorded ${m.sha256}` };
    if (d.sha512 !== m.sha512) return { ok: false, problem: `sha512 ${d.sha512}, recorded ${m.sha512}` };
    return { ok: true };
  }

  /** Every record in the cache, with whether its file is present at the recorded size. */
  async records(): Promise<Array<{ manifest: Manifest; key: AssetKey; present: boolean }>> {
    const out: Array<{ manifest: Manifest; key: AssetKey; present: boolean }> = [];
    for (const dir of await this.entryDirs()) {
      for (const file of ASSET_FILES) {
        const key: AssetKey = { ...dir.key, file };
        const manifest = await this.readManifest(key);
        if (!manifest) continue;
        const size = await stat(this.pathFor(key)).then((s) => (s.isFile() ? s.size : -1), () => -1);
        out.push({ manifest, key, present: size === manifest.size });
      }
    }
    return out;
  }

  /** Verified entries: a valid record and its file at the recorded size (no re-hash; `verify` does that). */
  async list(): Promise<CachedAsset[]> {
    return (await this.records())
      .filter((r) => r.present)
      .map((r) => ({ key: r.key, path: this.pathFor(r.key), sha256: r.manifest.sha256, size: r.manifest.size, manifest: r.manifest }));
  }

  /**
   * The leaf directories `<source>/<schematic>/<version>/<arch>`, with the
   * key they stand for. Names that are not ours are skipped; the walk is
   * four fixed levels deep.
   */
  async entryDirs(): Promise<Array<{ dir: string; key: Omit<AssetKey, "file"> }>> {
    const out: Array<{ dir: string; key: Omit<AssetKey, "file"> }> = [];
    const names = async (dir: string) => readdir(dir).catch(() => [] as string[]);
    for (const source of ASSET_SOURCES) {
      for (const schematic of await names(join(this.root, source))) {
        if (schematic !== "_" && !SCHEMATIC_ID.test(schematic)) continue;
        for (const version of await names(join(this.root, source, schematic))) {
          if (!VERSION_DIR.test(version)) continue;
          for (const arch of await names(join(this.root, source, schematic, version))) {
            if (!(ARCHES as readonly string[]).includes(arch)) continue;
            const key = { source, schematic: schematic === "_" ? null : schematic, version, arch: arch as AssetKey["arch"] };
            out.push({ dir: join(this.root, source, schematic, version, arch), key });
          }
        }
      }
    }
    return out;
  }
}


/** The shape `assets list --json` and `GET /api/v1/assets` print for a verified entry. */
export function entryJson(e: CachedAsset): {
  source: AssetKey["source"];
  version: string;
  arch: AssetKey["arch"];
  schematic: string | null;
  file: AssetKey["file"];
  path: string;
  sha256: string;
  size: number;
} {
  return { source: e.key.source, version: e.key.version, arch: e.key.arch, schematic: e.key.schematic, file: e.key.file, path: e.path, sha256: e.sha256, size: e.size };
}

import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import { AssetCache, type CachedAsset, type Expectation } from "./cache.js";
import { parseChecksumList, type Algorithm } from "./checksums.js";
import { downloadToFile, type DownloadOptions, type DownloadProgress } from "./download.js";
import { registerSchematic, schematicId, type Customization, type Registration } from "./schematic.js";
import { factoryCmdlineUrl, releaseChecksumUrls, releaseFileName, upstreamUrl, type UpstreamUrls } from "./sources.js";
import { AssetError, keyString, type Arch, type AssetFile, type AssetKey, type AssetSetKey } from "./types.js";

/** The resolved asset settings (config keys `talos.*` and `cacheDir`). */
export interface AssetSettings extends UpstreamUrls {
  cacheDir: string;
  installerRegistry: string;
  /** Schematics defined in the config file, by name. */
  schematics: Record<string, Customization>;
}

export interface FetchOptions {
  onProgress?: (file: AssetFile, p: DownloadProgress) => void;
  signal?: AbortSignal;
}

export interface AssetPair {
  kernel: CachedAsset;
  initramfs: CachedAsset;
}

/** After a factory failed to give a command line, boots build it locally for this long before asking again. */
const CMDLINE_RETRY_MS = 10 * 60_000;

/** Download tuning; tests shorten the pauses. */
export type DownloadTuning = Pick<DownloadOptions, "attempts" | "idleTimeoutMs" | "retryDelayMs">;

/**
 * Fetches and verifies Talos boot files into the cache: release files
 * against the release's sha256sum.txt/sha512sum.txt, factory files against
 * the sha256 and size recorded when they were first fetched (the factory
 * publishes no checksums). Imports are never fetched.
 */
export class AssetService {
  readonly cache: AssetCache;
  private readonly sums = new Map<string, Promise<Record<Algorithm, Map<string, string>>>>();
  private readonly registrations = new Map<string, Promise<Registration>>();
  private readonly cmdlineMisses = new Map<string, number>();

  constructor(
    readonly settings: AssetSettings,
    private readonly log: Logger,
    private readonly tuning: DownloadTuning = {},
  ) {
    this.cache = new AssetCache(settings.cacheDir, log);
  }

  /** One verified file, fetched when it is not cached (concurrent callers share the download). */
  ensureFile(key: AssetKey, opts: FetchOptions = {}): Promise<CachedAsset> {
    if (key.source === "import") {
      return this.cache.get(key).then((hit) => {
        if (hit) return hit;
        throw new AssetError("NOT_CACHED", `${keyString(key)} is not in the cache: import it with talos-netboot assets import`);
      });
    }
    return this.cache.ensure(key, (tmp) => this.produce(key, tmp, opts));
  }

  async ensurePair(set: AssetSetKey, opts: FetchOptions = {}): Promise<AssetPair> {
    // Both settle before we answer: a failure is not reported while the other file is still downloading.
    const [kernel, initramfs] = await Promise.allSettled([
      this.ensureFile({ ...set, file: "kernel" }, opts),
      this.ensureFile({ ...set, file: "initramfs" }, opts),
    ]);
    if (kernel.status === "rejected") throw kernel.reason;
    if (initramfs.status === "rejected") throw initramfs.reason;
    return { kernel: kernel.value, initramfs: initramfs.value };
  }

  /**
   * Which cached set serves (schematic, version, arch): the downloaded one,
   * else an operator's import of the same, else the downloadable source
   * (fetched on demand).
   */
  async pickSource(ref: Omit<AssetSetKey, "source">): Promise<AssetSetKey> {
    const download: AssetSetKey = { ...ref, source: ref.schematic === null ? "release" : "factory" };
    const imported: AssetSetKey = { ...ref, source: "import" };
    if (await this.hasPair(download)) return download;
    if (await this.hasPair(imported)) return imported;
    return download;
  }

  /** Both files of a set are in the cache, verified. */
  async hasPair(set: AssetSetKey): Promise<boolean> {
    return (await this.cache.get({ ...set, file: "kernel" })) !== undefined && (await this.cache.get({ ...set, file: "initramfs" })) !== undefined;
  }

  /**
   * Registers a customization with the factory (memoised per ID). Answers
   * the ID the factory's URLs use; a factory that disagrees with our local
   * computation is logged, and its answer wins for downloads.
   */
  register(customization: Customization): Promise<Registration> {
    const local = schematicId(customization);
    let p = this.registrations.get(local);
    if (!p) {
      p = registerSchematic(this.settings.factoryUrl, customization).then((r) => {
        if (r.id !== r.localId) {
          this.log.warn({ factory: r.id, local: r.localId }, "the Image Factory computed another schematic ID than ours; using the factory's");
        }
        return r;
      });
      p.catch(() => this.registrations.delete(local));
      this.registrations.set(local, p);
    }
    return p;
  }

  /**
   * The factory's PXE command line for a schematic: from the cache, else
   * fetched (and kept, so the next boot needs no factory). Undefined when
   * no factory answers: callers then build the line themselves.
   */
  async factoryCmdline(schematic: string, version: string, arch: Arch, timeoutMs = 5_000): Promise<string | undefined> {
    const dir = this.cache.dirFor({ source: "factory", schematic, version, arch });
    const path = join(dir, `cmdline-metal-${arch}`);
    try {
      return (await readFile(path, "utf8")).trim();
    } catch {
      // not cached
    }
    const url = factoryCmdlineUrl(this.settings.factoryUrl, schematic, version, arch);
    // An unreachable factory must not slow every boot: ask again only after a pause.
    const missedAt = this.cmdlineMisses.get(url);
    if (missedAt !== undefined && Date.now() - missedAt < CMDLINE_RETRY_MS) return undefined;
    const miss = () => (this.cmdlineMisses.set(url, Date.now()), undefined);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
      const text = (await res.text()).trim();
      if (!res.ok || !/^\S+(\s+\S+)*$/.test(text) || text.length > 4096) {
        this.log.warn({ url, status: res.status }, "the factory gave no usable kernel command line; building it locally");
        return miss();
      }
      await mkdir(dir, { recursive: true, mode: 0o755 });
      await writeFile(`${path}.tmp-${process.pid}`, `${text}\n`);
      await rename(`${path}.tmp-${process.pid}`, path);
      return text;
    } catch (err) {
      this.log.info({ url, err: (err as Error).message }, "no factory reachable for the kernel command line; building it locally");
      return miss();
    }
  }

  /** The release's checksum lists (memoised per version; a failure or an empty answer is not). */
  private releaseSums(version: string): Promise<Record<Algorithm, Map<string, string>>> {
    let p = this.sums.get(version);
    if (!p) {
      p = this.loadReleaseSums(version);
      // A release is immutable once its lists exist; until then (a mirror
      // still syncing), ask again next time.
      p.then(
        (s) => s.sha256.size + s.sha512.size === 0 && this.sums.delete(version),
        () => this.sums.delete(version),
      );
      this.sums.set(version, p);
    }
    return p;
  }

  private async loadReleaseSums(version: string): Promise<Record<Algorithm, Map<string, string>>> {
    const urls = releaseChecksumUrls(this.settings.releasesUrl, version);
    const get = async (algorithm: Algorithm): Promise<Map<string, string>> => {
      try {
        const res = await fetch(urls[algorithm], { signal: AbortSignal.timeout(30_000) });
        if (res.status === 404) return new Map();
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        return parseChecksumList(await res.text(), algorithm);
      } catch (err) {
        throw new AssetError("NO_CHECKSUM", `GET ${urls[algorithm]}: ${(err as Error).message}`);
      }
    };
    const [sha256, sha512] = await Promise.all([get("sha256"), get("sha512")]);
    return { sha256, sha512 };
  }

  private async produce(key: AssetKey, tmp: string, opts: FetchOptions): Promise<Expectation> {
    const url = upstreamUrl(key, this.settings);
    if (!url) throw new AssetError("INVALID", `${keyString(key)}: no upstream to fetch it from`);
    let expect: Expectation;
    if (key.source === "release") {
      // Checksums first: a release without them is never downloaded.
      const name = releaseFileName(key.file, key.arch);
      const sums = await this.releaseSums(key.version);
      const sha256 = sums.sha256.get(name);
      const sha512 = sums.sha512.get(name);
      if (!sha256 && !sha512) {
        throw new AssetError("NO_CHECKSUM", `Talos v${key.version}: neither sha256sum.txt nor sha512sum.txt lists ${name}; not downloading unverifiable files`);
      }
      const lists = [sha512 ? "sha512sum.txt" : "", sha256 ? "sha256sum.txt" : ""].filter(Boolean).join(" and ");
      expect = { sha256, sha512, basis: `${lists} of Talos v${key.version}`, verifiedBy: "release-checksums", upstream: url };
    } else {
      expect = { basis: "first fetch from the Image Factory", verifiedBy: "first-fetch", upstream: url };
    }
    this.log.info({ key: keyString(key), url }, "downloading Talos boot file");
    await downloadToFile({ ...this.tuning, url, dest: tmp, signal: opts.signal, onProgress: (p) => opts.onProgress?.(key.file, p) });
    return expect;
  }
}

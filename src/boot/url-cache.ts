import { createHash, randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Logger } from "pino";

/**
 * Profiles may name their kernel/initrd by http(s) URL. The first request
 * downloads it into the state dir (to a temporary name, renamed into place
 * only when complete, so a cut download never becomes a cache entry); later
 * requests are served from disk. Concurrent first requests share one download.
 */
export class UrlCache {
  private readonly inflight = new Map<string, Promise<string>>();

  constructor(
    private readonly dir: string,
    private readonly log: Logger,
    private readonly timeoutMs = 10 * 60_000,
  ) {}

  pathFor(url: string): string {
    return join(this.dir, createHash("sha256").update(url).digest("hex"));
  }

  async ensure(url: string): Promise<string> {
    const path = this.pathFor(url);
    try {
      if ((await stat(path)).isFile()) return path;
    } catch {
      // not cached yet
    }
    let p = this.inflight.get(url);
    if (!p) {
      p = this.download(url, path).finally(() => this.inflight.delete(url));
      this.inflight.set(url, p);
    }
    return p;
  }

  private async download(url: string, path: string): Promise<string> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const tmp = `${path}.part-${randomBytes(6).toString("hex")}`;
    this.log.info({ url }, "downloading boot file");
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(this.timeoutMs), redirect: "follow" });
      if (!res.ok || !res.body) throw new Error(`GET ${url}: HTTP ${res.status}`);
      const expected = Number(res.headers.get("content-length") ?? NaN);
      await pipeline(Readable.fromWeb(res.body as import("node:stream/web").ReadableStream), createWriteStream(tmp, { mode: 0o644 }));
      const size = (await stat(tmp)).size;
      if (Number.isFinite(expected) && size !== expected) throw new Error(`GET ${url}: got ${size} bytes, Content-Length said ${expected}`);
      await rename(tmp, path);
      this.log.info({ url, bytes: size }, "boot file cached");
      return path;
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }
}

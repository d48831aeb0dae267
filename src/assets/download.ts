import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { stat } from "node:fs/promises";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { AssetError } from "./types.js";

export interface DownloadProgress {
  bytes: number;
  /** Unknown without a Content-Length. */
  total: number | undefined;
}

export interface DownloadOptions {
  url: string;
  /** The temporary file to fill (created or truncated; appended to when resuming). */
  dest: string;
  /** Requests in all, the first included. */
  attempts?: number;
  /** No byte for this long ends the attempt. */
  idleTimeoutMs?: number;
  /** Pause before retry n is n × this. */
  retryDelayMs?: number;
  signal?: AbortSignal;
  onProgress?: (p: DownloadProgress) => void;
}

export interface DownloadResult {
  bytes: number;
  attempts: number;
  /** Attempts that continued where the previous one stopped (HTTP 206). */
  resumed: number;
}

/** What the first full answer said: enough to ask for the rest of the same bytes. */
interface Validator {
  etag: string | null;
  lastModified: string | null;
  ranges: boolean;
  total: number | undefined;
}

class Retryable extends Error {}

const RETRY_STATUS = new Set([408, 425, 429, 500, 502, 503, 504]);

function contentLength(res: Response): number | undefined {
  const v = res.headers.get("content-length");
  return v !== null && /^\d+$/.test(v) ? Number(v) : undefined;
}

/** `bytes <start>-<end>/<total|*>` */
function contentRangeStart(res: Response): number | undefined {
  const m = /^bytes (\d+)-\d+\/(?:\d+|\*)$/.exec(res.headers.get("content-range") ?? "");
  return m ? Number(m[1]) : undefined;
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (ms <= 0 || signal?.aborted) return resolve();
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
  });

/**
 * Streams a URL into a file with bounded retries. A cut connection resumes
 * with a Range request when the server offered byte ranges and a validator
 * (ETag or Last-Modified, sent back as If-Range, so a changed file restarts
 * instead of splicing two versions); otherwise — the Image Factory sends
 * neither — the next attempt starts over. A body shorter than its
 * Content-Length is a cut, never a success. Memory stays flat: bytes go
 * from the socket to the file.
 */
export async function downloadToFile(opts: DownloadOptions): Promise<DownloadResult> {
  const attempts = Math.max(1, opts.attempts ?? 3);
  const idleTimeoutMs = opts.idleTimeoutMs ?? 60_000;
  const retryDelayMs = opts.retryDelayMs ?? 1_000;
  let validator: Validator | undefined;
  let resumed = 0;
  let lastError = "";

  for (let attempt = 1; attempt <= attempts; attempt++) {
    if (opts.signal?.aborted) throw new AssetError("DOWNLOAD_FAILED", `GET ${opts.url}: cancelled`);
    const have = validator ? await sizeOf(opts.dest) : 0;
    const headers: Record<string, string> = { "accept-encoding": "identity" };
    const canResume = have > 0 && validator?.ranges === true && (validator.etag ?? validator.lastModified) !== null;
    if (canResume) {
      headers.range = `bytes=${have}-`;
      headers["if-range"] = (validator!.etag ?? validator!.lastModified)!;
    }

    const idle = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => idle.abort(new Error(`no data for ${idleTimeoutMs} ms`)), idleTimeoutMs);
    };
    const signal = opts.signal ? AbortSignal.any([opts.signal, idle.signal]) : idle.signal;
    arm();
    try {
      const res = await fetch(opts.url, { headers, signal, redirect: "follow" });
      let append = false;
      if (res.status === 206 && canResume && contentRangeStart(res) === have) {
        append = true;
        resumed++;
      } else if (res.status === 200) {
        validator = {
          etag: res.headers.get("etag"),
          lastModified: res.headers.get("last-modified"),
          ranges: (res.headers.get("accept-ranges") ?? "").toLowerCase() === "bytes",
          total: contentLength(res),
        };
      } else {
        await res.body?.cancel().catch(() => undefined);
        const reason = `HTTP ${res.status}${res.status === 206 ? " with an unexpected Content-Range" : ""}`;
        if (res.status === 206 || RETRY_STATUS.has(res.status)) {
          validator = undefined;
          throw new Retryable(reason);
        }
        throw new AssetError("DOWNLOAD_FAILED", `GET ${opts.url}: ${reason}`);
      }
      if (!res.body) throw new Retryable("no response body");

      const total = append ? validator!.total : contentLength(res);
      let bytes = append ? have : 0;
      opts.onProgress?.({ bytes, total });
      const counter = new Transform({
        transform(chunk: Buffer, _enc, done) {
          arm();
          bytes += chunk.length;
          opts.onProgress?.({ bytes, total });
          done(null, chunk);
        },
      });
      const file = createWriteStream(opts.dest, { flags: append ? "a" : "w", mode: 0o644 });
      try {
        await pipeline(Readable.fromWeb(res.body as WebReadableStream<Uint8Array>), counter, file);
      } finally {
        // A failed pipeline destroys the file stream while a write may still
        // be in flight: its bytes must be on disk before the next attempt
        // measures the file to resume from it.
        if (!file.closed) await once(file, "close");
      }
      if (total !== undefined && bytes !== total) throw new Retryable(`got ${bytes} of ${total} bytes`);
      return { bytes, attempts: attempt, resumed };
    } catch (err) {
      if (err instanceof AssetError) throw err;
      if (opts.signal?.aborted) throw new AssetError("DOWNLOAD_FAILED", `GET ${opts.url}: cancelled`);
      lastError = idle.signal.aborted ? String((idle.signal.reason as Error).message) : describe(err);
      if (attempt < attempts) await sleep(retryDelayMs * attempt, opts.signal);
    } finally {
      clearTimeout(timer);
    }
  }
  throw new AssetError("DOWNLOAD_FAILED", `GET ${opts.url}: failed after ${attempts} attempt${attempts === 1 ? "" : "s"}: ${lastError}`);
}

function describe(err: unknown): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  const cause = e.cause?.code ?? e.cause?.message;
  return cause ? `${e.message} (${cause})` : e.message;
}

import { createHash } from "node:crypto";
import { constants as fsConstants, createReadStream, type BigIntStats, type ReadStream } from "node:fs";
import { open, stat, type FileHandle } from "node:fs/promises";
import type { Context } from "hono";
import type { StatusCode } from "hono/utils/http-status";

/**
 * Serving boot files (kernels, initramfs, EFI binaries) and rendered boot
 * scripts to firmware over HTTP, exact about RFC 9110: validators,
 * conditional requests, single byte ranges, HEAD.
 *
 * Files are streamed from an open file handle with backpressure: memory per
 * client is a chunk or two, whatever the file size. The headers (length,
 * ETag, Last-Modified) come from fstat() of the very descriptor the bytes are
 * read from, so a kernel swapped by rename while a client is downloading never
 * produces headers of one file and bytes of another.
 */

/** What a response body delivered; see {@link SendFileOptions.onBody}. */
export interface SendBodyInfo {
  /** Bytes handed to the HTTP response (written to the socket, not necessarily acknowledged by the client). */
  bytesSent: number;
  /** True when every byte of the response body was handed over (always true for bodiless responses). */
  complete: boolean;
  /** The response's status: 200, 206, 304, 404, 412, 416, ... */
  status: number;
}

export interface SendFileOptions {
  /** Content-Type of the file; default `application/octet-stream`. */
  contentType?: string;
  /**
   * Called exactly once per response that sendFile produces:
   * - a streamed body (GET 200/206): when the body finished (`complete: true`,
   *   `bytesSent` = Content-Length) or when it stopped early — the client went
   *   away, or the file shrank/failed while being read (`complete: false`,
   *   `bytesSent` = bytes actually pushed). Called after the file descriptor is
   *   closed.
   * - a response without a body (HEAD, 304, 404, 412, 416, empty file): right
   *   before sendFile resolves, with `bytesSent: 0, complete: true`.
   * A streamed body that nobody ever reads or cancels (a middleware throwing the
   * Response away) never reports. Exceptions thrown by onBody are reported as
   * process warnings and otherwise ignored.
   */
  onBody?: (info: SendBodyInfo) => void;
}

export interface SendBytesOptions {
  contentType: string;
  /** Default `no-store`: rendered scripts are per-machine and change with its state. */
  cacheControl?: string;
}

const DEFAULT_CONTENT_TYPE = "application/octet-stream";
/** Read size per chunk: the memory one streaming client costs (plus socket buffers). */
const CHUNK_BYTES = 256 * 1024;

/** Stat/open failures that mean "there is no such file here". */
const NOT_FOUND_CODES = new Set(["ENOENT", "ENOTDIR", "ELOOP", "ENAMETOOLONG", "EISDIR"]);
const FORBIDDEN_CODES = new Set(["EACCES", "EPERM"]);

/**
 * Serve a regular file. Missing or not a regular file → the app's 404
 * (`c.notFound()`); unreadable (EACCES/EPERM) → 403; other I/O errors throw.
 * Headers set earlier with `c.header()` (e.g. Cache-Control) are kept.
 */
export async function sendFile(c: Context, path: string, opts: SendFileOptions = {}): Promise<Response> {
  const method = c.req.method;
  const report = (status: number, bytesSent = 0, complete = true): void =>
    safeReport(opts.onBody, { bytesSent, complete, status });
  const bodiless = (res: Response): Response => {
    report(res.status);
    return res;
  };

  // stat() by path first: it rejects FIFOs, devices and directories without
  // opening them (opening a FIFO for reading would block until a writer shows up).
  let fh: FileHandle;
  try {
    const st = await stat(path);
    if (!st.isFile()) return bodiless(await c.notFound());
    fh = await open(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  } catch (err) {
    return bodiless(await missingOrForbidden(c, err));
  }

  let handedOver = false;
  try {
    const st = await fh.stat({ bigint: true });
    if (!st.isFile()) return bodiless(await c.notFound());

    const size = Number(st.size);
    const mtimeSec = Number(st.mtimeNs / 1_000_000_000n);
    const etag = fileEtag(st);
    const lastModified = new Date(mtimeSec * 1000).toUTCString();
    const validators = { ETag: etag, "Last-Modified": lastModified };
    const headers: Record<string, string> = {
      "Content-Type": opts.contentType ?? DEFAULT_CONTENT_TYPE,
      "Accept-Ranges": "bytes",
      ...validators,
    };

    const pre = evaluatePreconditions(c.req.raw.headers, method, etag, mtimeSec);
    if (pre === 304) return bodiless(c.newResponse(null, 304, validators));
    if (pre === 412) return bodiless(c.newResponse(null, 412, { ...headers, "Content-Length": "0" }));

    let status: 200 | 206 = 200;
    let start = 0;
    let end = size - 1;
    // Range is defined for GET only (RFC 9110 §14.2): HEAD gets the 200 headers.
    const rangeHeader = method === "GET" ? c.req.header("Range") : undefined;
    if (rangeHeader !== undefined && ifRangeHolds(c.req.header("If-Range"), etag, mtimeSec)) {
      const range = parseRange(rangeHeader, size);
      if (range === "unsatisfiable") {
        return bodiless(
          c.newResponse(null, 416, { ...headers, "Content-Range": `bytes */${size}`, "Content-Length": "0" }),
        );
      }
      if (range !== undefined) {
        status = 206;
        [start, end] = range;
        headers["Content-Range"] = `bytes ${start}-${end}/${size}`;
      }
    }
    const length = end - start + 1;
    headers["Content-Length"] = String(length);

    if (method === "HEAD" || length === 0) return bodiless(c.newResponse(null, status, headers));

    const body = fileBody(fh, path, start, end, (bytesSent, complete) => report(status, bytesSent, complete));
    handedOver = true;
    return c.newResponse(body, status, headers);
  } finally {
    if (!handedOver) await fh.close();
  }
}

/**
 * Serve bytes rendered in memory (iPXE/GRUB scripts, machine configs):
 * Content-Length always, `Cache-Control: no-store` unless told otherwise, an
 * ETag hashed from the bytes, If-None-Match → 304, HEAD without a body.
 * Range requests are not supported (the full 200 is always a valid answer).
 */
export function sendBytes(c: Context, data: Buffer | string, opts: SendBytesOptions): Response {
  const buf = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  const etag = `"${createHash("sha256").update(buf).digest("base64url").slice(0, 32)}"`;
  const cacheControl = opts.cacheControl ?? "no-store";
  const method = c.req.method;

  const pre = evaluatePreconditions(c.req.raw.headers, method, etag, undefined);
  if (pre === 304) return c.newResponse(null, 304, { ETag: etag, "Cache-Control": cacheControl });
  const headers: Record<string, string> = {
    "Content-Type": opts.contentType,
    "Cache-Control": cacheControl,
    ETag: etag,
  };
  if (pre === 412) return c.newResponse(null, 412, { ...headers, "Content-Length": "0" });
  headers["Content-Length"] = String(buf.byteLength);
  if (method === "HEAD") return c.newResponse(null, 200, headers);
  const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength) as Uint8Array<ArrayBuffer>;
  return c.newResponse(bytes, 200, headers);
}

// ---------------------------------------------------------------------------
// Streaming

/**
 * A pull-based web stream over `fs.createReadStream(fd)`: one chunk is read
 * only when the HTTP layer asks for one (highWaterMark 0), so a slow client
 * holds the file reader back instead of making the process buffer the file.
 * Cancelling (client gone) destroys the read stream, which closes the file
 * handle; `done` runs after that close.
 */
function fileBody(
  fh: FileHandle,
  path: string,
  start: number,
  end: number,
  done: (bytesSent: number, complete: boolean) => void,
): ReadableStream<Uint8Array> {
  const expected = end - start + 1;
  let rs: ReadStream | undefined;
  let chunks: AsyncIterator<Buffer> | undefined;
  let sent = 0;
  let cancelled = false;
  let settled = false;
  const settle = (): void => {
    if (settled) return;
    settled = true;
    // All bytes handed over counts as complete even when the client closes
    // before our end-of-stream is observed (curl does, having its Content-Length).
    done(sent, sent === expected);
  };

  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (cancelled) return;
        if (rs === undefined || chunks === undefined) {
          rs = createReadStream(path, { fd: fh, start, end, highWaterMark: CHUNK_BYTES, autoClose: true });
          rs.once("close", settle);
          chunks = rs[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
        }
        try {
          const next = await chunks.next();
          if (cancelled) return;
          if (next.done) {
            if (sent !== expected) {
              // The file shrank under us: fail the response (the connection is
              // reset) rather than let firmware accept a short kernel.
              controller.error(new Error(`${path}: file shrank while being sent (${sent} of ${expected} bytes)`));
              return;
            }
            controller.close();
            return;
          }
          sent += next.value.byteLength;
          controller.enqueue(next.value);
        } catch (err) {
          if (cancelled) return;
          rs.destroy();
          controller.error(err);
        }
      },
      cancel() {
        cancelled = true;
        if (rs !== undefined) {
          rs.destroy(); // closes the file handle, then emits "close" → settle
        } else {
          fh.close().then(settle, settle);
        }
      },
    },
    { highWaterMark: 0 },
  );
}

function safeReport(onBody: SendFileOptions["onBody"], info: SendBodyInfo): void {
  if (onBody === undefined) return;
  try {
    onBody(info);
  } catch (err) {
    process.emitWarning(`sendFile onBody callback threw: ${err instanceof Error ? err.message : String(err)}`);
  }
}

async function missingOrForbidden(c: Context, err: unknown): Promise<Response> {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code !== undefined && NOT_FOUND_CODES.has(code)) return c.notFound();
  if (code !== undefined && FORBIDDEN_CODES.has(code)) return c.newResponse(null, 403, { "Content-Length": "0" });
  throw err;
}

// ---------------------------------------------------------------------------
// Validators and preconditions (RFC 9110 §8.8, §13)

/** Strong ETag from stat: size, mtime in ns, inode. Never reads the body. */
function fileEtag(st: BigIntStats): string {
  return `"${st.size.toString(16)}-${st.mtimeNs.toString(16)}-${st.ino.toString(16)}"`;
}

interface EntityTag {
  weak: boolean;
  opaque: string;
}

/** `*` or a comma-separated list of entity-tags; malformed members are skipped. */
function parseEtagList(value: string): "*" | EntityTag[] {
  if (value.trim() === "*") return "*";
  const tags: EntityTag[] = [];
  // An opaque-tag may itself contain commas, so match tags rather than split.
  for (const m of value.matchAll(/(W\/)?"([^"]*)"/g)) tags.push({ weak: m[1] !== undefined, opaque: m[2] ?? "" });
  return tags;
}

function parseEtag(value: string): EntityTag | undefined {
  const m = /^(W\/)?"([^"]*)"$/.exec(value.trim());
  return m ? { weak: m[1] !== undefined, opaque: m[2] ?? "" } : undefined;
}

/** Weak comparison: opaque tags equal, W/ ignored. */
function weakMatch(a: EntityTag, b: EntityTag): boolean {
  return a.opaque === b.opaque;
}

/** Strong comparison: both strong and opaque tags equal. */
function strongMatch(a: EntityTag, b: EntityTag): boolean {
  return !a.weak && !b.weak && a.opaque === b.opaque;
}

/** An HTTP-date in whole seconds, or undefined when not a valid date. */
function parseHttpDate(value: string | undefined | null): number | undefined {
  if (value === undefined || value === null) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : Math.floor(ms / 1000);
}

/**
 * RFC 9110 §13.2.2 steps 1–4: If-Match, If-Unmodified-Since, If-None-Match,
 * If-Modified-Since. Returns 304 (not modified), 412 (precondition failed) or
 * 200 (go on).
 */
function evaluatePreconditions(
  headers: Headers,
  method: string,
  etagValue: string,
  mtimeSec: number | undefined,
): 200 | 304 | 412 {
  const etag = parseEtag(etagValue);
  if (etag === undefined) throw new Error(`invalid own ETag ${etagValue}`);
  const getOrHead = method === "GET" || method === "HEAD";

  const ifMatch = headers.get("if-match");
  if (ifMatch !== null) {
    const list = parseEtagList(ifMatch);
    if (list !== "*" && !list.some((t) => strongMatch(t, etag))) return 412;
  } else if (mtimeSec !== undefined) {
    const since = parseHttpDate(headers.get("if-unmodified-since"));
    if (since !== undefined && mtimeSec > since) return 412;
  }

  const ifNoneMatch = headers.get("if-none-match");
  if (ifNoneMatch !== null) {
    const list = parseEtagList(ifNoneMatch);
    if (list === "*" || list.some((t) => weakMatch(t, etag))) return getOrHead ? 304 : 412;
  } else if (getOrHead && mtimeSec !== undefined) {
    const since = parseHttpDate(headers.get("if-modified-since"));
    if (since !== undefined && mtimeSec <= since) return 304;
  }
  return 200;
}

/**
 * RFC 9110 §13.1.5: no If-Range → ranges apply. An entity-tag must match
 * strongly; a date must equal Last-Modified exactly. Otherwise the full 200.
 */
function ifRangeHolds(ifRange: string | undefined, etagValue: string, mtimeSec: number): boolean {
  if (ifRange === undefined) return true;
  const value = ifRange.trim();
  if (value.startsWith('"') || value.startsWith("W/")) {
    const theirs = parseEtag(value);
    const ours = parseEtag(etagValue);
    return theirs !== undefined && ours !== undefined && strongMatch(theirs, ours);
  }
  const date = parseHttpDate(value);
  return date !== undefined && date === mtimeSec;
}

/**
 * One byte range of a `size`-byte representation (RFC 9110 §14.1.2):
 * `[first, last]` inclusive, `"unsatisfiable"` (→ 416), or undefined when the
 * header is to be ignored (→ 200): malformed, another unit, or several ranges
 * (serving the whole representation to a multi-range request is allowed).
 */
function parseRange(header: string, size: number): [number, number] | "unsatisfiable" | undefined {
  const m = /^bytes=(.*)$/i.exec(header.trim());
  if (!m) return undefined;
  const specs = (m[1] ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (specs.length !== 1) return undefined;
  const spec = /^(\d*)-(\d*)$/.exec(specs[0] ?? "");
  if (!spec) return undefined;
  const [, firstText = "", lastText = ""] = spec;
  // BigInt: a client may send more digits than a double holds exactly.
  const total = BigInt(size);
  if (firstText === "") {
    if (lastText === "") return undefined;
    const suffix = BigInt(lastText);
    if (suffix === 0n || total === 0n) return "unsatisfiable";
    const first = suffix >= total ? 0n : total - suffix;
    return [Number(first), size - 1];
  }
  const first = BigInt(firstText);
  let last = lastText === "" ? total - 1n : BigInt(lastText);
  if (lastText !== "" && last < first) return undefined;
  if (first >= total) return "unsatisfiable";
  if (last >= total) last = total - 1n;
  return [Number(first), Number(last)];
}

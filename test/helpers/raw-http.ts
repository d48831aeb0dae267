/**
 * HTTP/1.1 over a plain TCP socket, byte for byte: fetch() and node:http
 * normalise or refuse the very request lines hostile-input tests must send
 * (`..`, backslashes, NUL bytes, encoded dots, lying or missing lengths).
 * Every request is bounded; the connection is closed after one response.
 */
import { connect } from "node:net";

export interface RawResponse {
  /** 0 when no status line arrived (connection closed or timed out first). */
  status: number;
  headers: Map<string, string>;
  /** The body, de-chunked when the response was chunked. */
  body: Buffer;
  /** Everything the server sent. */
  raw: Buffer;
  /** The bound passed before the server closed the connection. */
  timedOut: boolean;
}

export interface RawRequestOptions {
  /** Upper bound for the whole exchange. Default 10 s. */
  timeoutMs?: number;
  /**
   * Resolve as soon as a complete response head has arrived, without waiting
   * for the server to close: for requests whose body is never finished on
   * purpose.
   */
  headOnly?: boolean;
}

/** Sends `parts` in order on one connection and reads the response until the server closes it. */
export function rawHttp(port: number, parts: Array<string | Buffer>, opts: RawRequestOptions = {}, host = "127.0.0.1"): Promise<RawResponse> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let settled = false;
    const socket = connect(port, host);
    const finish = (timedOut: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(parseResponse(Buffer.concat(chunks), timedOut));
    };
    const timer = setTimeout(() => finish(true), opts.timeoutMs ?? 10_000);
    socket.on("data", (d) => {
      chunks.push(d);
      if (opts.headOnly && Buffer.concat(chunks).includes("\r\n\r\n")) finish(false);
    });
    socket.on("close", () => finish(false));
    socket.on("error", () => finish(false));
    // No half-close after writing: Node's HTTP server drops a connection whose
    // client ended its side before a streamed response was written. The
    // requests carry `Connection: close`, so the server ends the exchange.
    socket.on("connect", () => {
      for (const p of parts) socket.write(p);
    });
  });
}

/** A GET for `target` exactly as given (no normalisation), with extra header lines. */
export function rawGet(port: number, target: string | Buffer, headers: string[] = [], opts: RawRequestOptions = {}): Promise<RawResponse> {
  const head = Buffer.concat([
    Buffer.from("GET "),
    Buffer.isBuffer(target) ? target : Buffer.from(target, "latin1"),
    Buffer.from(` HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n${headers.map((h) => `${h}\r\n`).join("")}\r\n`, "latin1"),
  ]);
  return rawHttp(port, [head], opts);
}

function parseResponse(raw: Buffer, timedOut: boolean): RawResponse {
  const headers = new Map<string, string>();
  const end = raw.indexOf("\r\n\r\n");
  if (end < 0) return { status: 0, headers, body: Buffer.alloc(0), raw, timedOut };
  const lines = raw.subarray(0, end).toString("latin1").split("\r\n");
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? "")?.[1] ?? 0);
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  let body = raw.subarray(end + 4);
  if (headers.get("transfer-encoding")?.toLowerCase() === "chunked") body = dechunk(body);
  return { status, headers, body: Buffer.from(body), raw, timedOut };
}

/** Chunked transfer coding (RFC 9112 §7.1); a truncated stream yields what arrived. */
function dechunk(b: Buffer): Buffer {
  const out: Buffer[] = [];
  let i = 0;
  while (i < b.length) {
    const eol = b.indexOf("\r\n", i);
    if (eol < 0) break;
    const size = Number.parseInt(b.subarray(i, eol).toString("latin1").split(";")[0]!, 16);
    if (!Number.isFinite(size) || size === 0) break;
    out.push(b.subarray(eol + 2, eol + 2 + size));
    i = eol + 2 + size + 2;
  }
  return Buffer.concat(out);
}

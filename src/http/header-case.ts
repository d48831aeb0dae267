import { createServer as createHttpServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer, type ServerOptions as HttpsOptions } from "node:https";

/**
 * `content-length` → `Content-Length`. HTTP header names are
 * case-insensitive, but GRUB's HTTP client (grub-core/net/http.c) only
 * recognises `Content-Length: ` and `Transfer-Encoding: chunked` spelled
 * exactly so — without it a GRUB config never runs and a kernel is refused.
 * Web `Headers` (and so Hono) lower-case every name.
 */
export function canonicalHeaderName(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_, dash: string, c: string) => dash + c.toUpperCase());
}

type WriteHead = ServerResponse["writeHead"];

function canonicalHeaders(headers: unknown): unknown {
  if (Array.isArray(headers)) {
    // [[name, value], …] or a flat [name, value, …] list.
    if (headers.length > 0 && Array.isArray(headers[0])) return headers.map(([n, v]: [string, unknown]) => [canonicalHeaderName(n), v]);
    return headers.map((v: unknown, i: number) => (i % 2 === 0 && typeof v === "string" ? canonicalHeaderName(v) : v));
  }
  if (headers && typeof headers === "object") {
    return Object.fromEntries(Object.entries(headers as Record<string, unknown>).map(([n, v]) => [canonicalHeaderName(n), v]));
  }
  return headers;
}

/** Wraps a request listener so every response writes canonical header names. */
function withCanonicalHeaders(listener: RequestListener): RequestListener {
  return (req: IncomingMessage, res: ServerResponse) => {
    const original = res.writeHead.bind(res) as (...args: unknown[]) => ServerResponse;
    res.writeHead = ((status: number, ...rest: unknown[]) => {
      const args = rest.map((a) => (typeof a === "string" ? a : canonicalHeaders(a)));
      return original(status, ...args);
    }) as WriteHead;
    listener(req, res);
  };
}

/** `createServer` for @hono/node-server: plain HTTP with canonical header names. */
export function createCanonicalHttpServer(options: object, listener: RequestListener): Server {
  return createHttpServer(options, withCanonicalHeaders(listener));
}

/** The same over TLS. */
export function createCanonicalHttpsServer(options: HttpsOptions, listener: RequestListener): Server {
  return createHttpsServer(options, withCanonicalHeaders(listener));
}

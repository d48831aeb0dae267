import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { createReadStream, readdirSync, readlinkSync, realpathSync } from "node:fs";
import * as fsp from "node:fs/promises";
import type { Server } from "node:http";
import { connect, type AddressInfo, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { sendBytes, sendFile, type SendBodyInfo } from "../../src/http/send-file.js";
import { requireTool } from "../helpers/tools.js";

// A real @hono/node-server on 127.0.0.1:0 in this process, driven by Node's
// fetch, raw sockets (to see exactly what goes on the wire) and curl.

const MiB = 1024 * 1024;
const SMALL_SIZE = 5 * MiB + 12_345; // not a multiple of the read chunk
const BIG_SIZE = 64 * MiB;
const WAIT = { timeout: 15_000, interval: 20 }; // bounded waits; never asserted as durations

let dir: string;
let smallPath: string;
let small: Buffer;
let bigPath: string;
let bigSha: string;
let server: Server;
let base: string;
let port: number;

const bodies = new Map<string, SendBodyInfo[]>();
let tagCounter = 0;
const newTag = (): string => `t${++tagCounter}`;

const sha256 = (data: Uint8Array): string => createHash("sha256").update(data).digest("hex");

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

async function sha256Body(res: Response): Promise<{ sha: string; bytes: number }> {
  const hash = createHash("sha256");
  let bytes = 0;
  if (res.body) {
    for await (const chunk of res.body) {
      hash.update(chunk);
      bytes += chunk.byteLength;
    }
  }
  return { sha: hash.digest("hex"), bytes };
}

/** Descriptors of this process open on `file` (a realpath). */
function fdsFor(file: string): number {
  let n = 0;
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === file) n++;
    } catch {
      // closed while we looked
    }
  }
  return n;
}

const fdCount = (): number => readdirSync("/proc/self/fd").length;

function url(name: string, tag?: string, query: Record<string, string> = {}): string {
  const params = new URLSearchParams(query);
  if (tag !== undefined) params.set("tag", tag);
  const qs = params.toString();
  return `${base}/files/${name}${qs ? `?${qs}` : ""}`;
}

async function bodyInfo(tag: string): Promise<SendBodyInfo> {
  const infos = await vi.waitFor(() => {
    const got = bodies.get(tag);
    if (!got || got.length === 0) throw new Error(`no onBody for ${tag} yet`);
    return got;
  }, WAIT);
  expect(infos).toHaveLength(1); // exactly once
  return infos[0]!;
}

interface RawResponse {
  status: number;
  headers: Map<string, string>;
  head: string;
  body: Buffer;
}

/** One request on a fresh connection (Connection: close); everything the server wrote. */
async function raw(method: string, path: string, headers: Record<string, string> = {}): Promise<RawResponse> {
  const sock = connect(port, "127.0.0.1");
  const lines = [`${method} ${path} HTTP/1.1`, "Host: 127.0.0.1", "Connection: close"];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  sock.write(`${lines.join("\r\n")}\r\n\r\n`);
  const chunks: Buffer[] = [];
  sock.on("data", (d: Buffer) => chunks.push(d));
  await once(sock, "end");
  sock.destroy();
  const all = Buffer.concat(chunks);
  const split = all.indexOf("\r\n\r\n");
  expect(split).toBeGreaterThan(0);
  const head = all.subarray(0, split).toString("latin1");
  const [statusLine = "", ...fields] = head.split("\r\n");
  const map = new Map<string, string>();
  for (const f of fields) {
    const i = f.indexOf(":");
    map.set(f.slice(0, i).trim().toLowerCase(), f.slice(i + 1).trim());
  }
  return { status: Number(statusLine.split(" ")[1]), headers: map, head, body: all.subarray(split + 4) };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface SlowClient {
  sock: Socket;
  /** Resolves once the first bytes arrived; the socket is then paused (a stalled firmware). */
  started: Promise<void>;
  /** Bytes received so far, headers included. */
  received(): number;
  /** Resolves when the server closed the connection. */
  done: Promise<{ head: string; bodyBytes: number; sha: string }>;
}

/** A raw GET that stops reading after its first chunk until `sock.resume()`. */
function slowClient(path: string): SlowClient {
  const sock = connect(port, "127.0.0.1");
  sock.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
  let head: Buffer | string = Buffer.alloc(0);
  let bodyBytes = 0;
  let total = 0;
  const hash = createHash("sha256");
  let markStarted: () => void = () => undefined;
  const started = new Promise<void>((resolve) => (markStarted = resolve));
  sock.on("error", () => undefined); // a reset is an outcome here, not a failure
  sock.on("data", (d: Buffer) => {
    if (total === 0) {
      sock.pause();
      markStarted();
    }
    total += d.length;
    let body = d;
    if (typeof head !== "string") {
      const buf: Buffer = Buffer.concat([head, d]);
      const split = buf.indexOf("\r\n\r\n");
      if (split < 0) {
        head = buf;
        return;
      }
      head = buf.subarray(0, split).toString("latin1");
      body = buf.subarray(split + 4);
    }
    bodyBytes += body.length;
    hash.update(body);
  });
  const done = once(sock, "close").then(() => ({
    head: typeof head === "string" ? head : head.toString("latin1"),
    bodyBytes,
    sha: hash.digest("hex"),
  }));
  return { sock, started, received: () => total, done };
}

beforeAll(async () => {
  dir = realpathSync(await fsp.mkdtemp(join(tmpdir(), "send-file-")));
  smallPath = join(dir, "kernel.bin");
  small = randomBytes(SMALL_SIZE);
  await fsp.writeFile(smallPath, small);
  await fsp.copyFile(smallPath, join(dir, "kernel-copy.bin")); // same bytes, another inode
  await fsp.writeFile(join(dir, "empty.bin"), "");
  await fsp.mkdir(join(dir, "subdir"));

  // 64 MiB, mostly sparse, with random blocks at both ends and in the middle.
  bigPath = join(dir, "big.img");
  const fh = await fsp.open(bigPath, "w");
  await fh.truncate(BIG_SIZE);
  for (const pos of [0, BIG_SIZE / 2 - 1000, BIG_SIZE - 256 * 1024]) await fh.write(randomBytes(256 * 1024), 0, 256 * 1024, pos);
  await fh.close();
  bigSha = await sha256File(bigPath);

  const app = new Hono();
  app.get("/files/:name", (c) => {
    const tag = c.req.query("tag");
    return sendFile(c, join(dir, c.req.param("name")), {
      contentType: c.req.query("type"),
      onBody: (info) => {
        if (tag === undefined) return;
        const list = bodies.get(tag) ?? [];
        list.push(info);
        bodies.set(tag, list);
      },
    });
  });
  app.get("/script", (c) => sendBytes(c, "#!ipxe\necho héllo ✓\nchain http://x/next\n", { contentType: "text/plain; charset=utf-8" }));
  app.get("/config", (c) =>
    sendBytes(c, Buffer.from("machine:\n  type: worker\n"), { contentType: "application/yaml", cacheControl: "private, max-age=5" }),
  );

  server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }) as Server;
  if (!server.listening) await once(server, "listening");
  port = (server.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  if (server) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  if (dir) await fsp.rm(dir, { recursive: true, force: true });
});

describe("sendFile", () => {
  it("GET streams the whole file byte-identical, with length, type and validators", async () => {
    const tag = newTag();
    const res = await fetch(url("kernel.bin", tag));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-length")).toBe(String(SMALL_SIZE));
    expect(res.headers.get("content-type")).toBe("application/octet-stream");
    expect(res.headers.get("accept-ranges")).toBe("bytes");
    expect(res.headers.get("content-range")).toBeNull();
    const st = await fsp.stat(smallPath);
    expect(res.headers.get("last-modified")).toBe(new Date(Math.floor(st.mtimeMs / 1000) * 1000).toUTCString());
    expect(res.headers.get("etag")).toMatch(/^"[0-9a-f]+-[0-9a-f]+-[0-9a-f]+"$/);
    const { sha, bytes } = await sha256Body(res);
    expect(bytes).toBe(SMALL_SIZE);
    expect(sha).toBe(sha256(small));
    expect(await bodyInfo(tag)).toEqual({ bytesSent: SMALL_SIZE, complete: true, status: 200 });
    expect(fdsFor(smallPath)).toBe(0);
  });

  it("uses the given Content-Type", async () => {
    const res = await fetch(url("kernel.bin", undefined, { type: "application/efi" }));
    expect(res.headers.get("content-type")).toBe("application/efi");
    await res.body?.cancel();
  });

  it("the ETag comes from stat (size, mtime, inode), not from the bytes", async () => {
    const etagOf = async (name: string): Promise<string> => {
      const res = await fetch(url(name), { method: "HEAD" });
      return res.headers.get("etag") ?? "";
    };
    const a = await etagOf("kernel.bin");
    expect(await etagOf("kernel.bin")).toBe(a); // stable
    expect(a.startsWith(`"${SMALL_SIZE.toString(16)}-`)).toBe(true);
    expect(await etagOf("kernel-copy.bin")).not.toBe(a); // same bytes, other inode

    const touched = join(dir, "touched.bin");
    await fsp.writeFile(touched, "x");
    const before = await etagOf("touched.bin");
    await fsp.utimes(touched, new Date("2020-01-01T00:00:00Z"), new Date("2020-01-01T00:00:00Z"));
    expect(await etagOf("touched.bin")).not.toBe(before);
  });

  it("HEAD: the GET headers, no body on the wire, no descriptor left open", async () => {
    const get = await fetch(url("kernel.bin"));
    await get.body?.cancel();
    const tag = newTag();
    const head = await fetch(url("kernel.bin", tag), { method: "HEAD" });
    expect(head.status).toBe(200);
    for (const h of ["content-length", "content-type", "accept-ranges", "etag", "last-modified"]) {
      expect(head.headers.get(h), h).toBe(get.headers.get(h));
    }
    expect(await bodyInfo(tag)).toEqual({ bytesSent: 0, complete: true, status: 200 });

    const wire = await raw("HEAD", "/files/kernel.bin");
    expect(wire.status).toBe(200);
    expect(wire.headers.get("content-length")).toBe(String(SMALL_SIZE));
    expect(wire.body.length).toBe(0);
    expect(fdsFor(smallPath)).toBe(0);
  });

  it("HEAD ignores Range (defined for GET only)", async () => {
    const res = await fetch(url("kernel.bin"), { method: "HEAD", headers: { Range: "bytes=0-9" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-length")).toBe(String(SMALL_SIZE));
    expect(res.headers.get("content-range")).toBeNull();
  });

  it.each([
    ["missing", "nope.bin"],
    ["a directory", "subdir"],
  ])("404 for %s, without throwing", async (_what, name) => {
    const tag = newTag();
    const res = await fetch(url(name, tag));
    expect(res.status).toBe(404);
    await res.body?.cancel();
    expect(await bodyInfo(tag)).toEqual({ bytesSent: 0, complete: true, status: 404 });
  });

  describe("Range", () => {
    const S = SMALL_SIZE;
    it.each([
      ["bytes=0-99", 0, 99],
      ["bytes=100-", 100, S - 1],
      ["bytes=-100", S - 100, S - 1],
      ["bytes=5-5", 5, 5],
      ["bytes=1000-99999999999999999999999", 1000, S - 1], // last-pos clamped
      [`bytes=-${S + 10}`, 0, S - 1], // suffix longer than the file: all of it
      ["bytes=-1", S - 1, S - 1],
      ["BYTES=7-8", 7, 8], // the unit is case-insensitive
      ["bytes=10-19,", 10, 19], // empty list members are ignored
      [`bytes=${S - 1}-`, S - 1, S - 1],
    ])("%s → 206", async (range, first, last) => {
      const tag = newTag();
      const res = await fetch(url("kernel.bin", tag), { headers: { Range: range } });
      expect(res.status).toBe(206);
      expect(res.headers.get("content-range")).toBe(`bytes ${first}-${last}/${S}`);
      expect(res.headers.get("content-length")).toBe(String(last - first + 1));
      expect(res.headers.get("etag")).toMatch(/^"/);
      const body = Buffer.from(await res.arrayBuffer());
      expect(body.equals(small.subarray(first, last + 1))).toBe(true);
      expect(await bodyInfo(tag)).toEqual({ bytesSent: last - first + 1, complete: true, status: 206 });
    });

    it.each([[`bytes=${S}-`], [`bytes=${S + 5}-${S + 10}`], ["bytes=-0"]])("%s → 416 bytes */size", async (range) => {
      const tag = newTag();
      const res = await fetch(url("kernel.bin", tag), { headers: { Range: range } });
      expect(res.status).toBe(416);
      expect(res.headers.get("content-range")).toBe(`bytes */${S}`);
      expect((await res.arrayBuffer()).byteLength).toBe(0);
      expect(await bodyInfo(tag)).toEqual({ bytesSent: 0, complete: true, status: 416 });
      expect(fdsFor(smallPath)).toBe(0);
    });

    it.each([
      ["bytes=0-1,5-6"], // multi-range: the full 200 is allowed
      ["bytes=5-2"], // last < first: invalid
      ["bytes=abc"],
      ["items=0-1"],
      ["bytes=0-1-2"],
      ["bytes="],
      ["bytes=-"],
      ["bytes=1.5-2"],
      ["bytes 0-1"],
    ])("%s → ignored, full 200", async (range) => {
      const res = await fetch(url("kernel.bin"), { headers: { Range: range } });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-range")).toBeNull();
      expect(res.headers.get("content-length")).toBe(String(S));
      expect((await sha256Body(res)).sha).toBe(sha256(small));
    });

    it("an empty file: 200 with Content-Length 0, every range unsatisfiable", async () => {
      const tag = newTag();
      const res = await fetch(url("empty.bin", tag));
      expect(res.status).toBe(200);
      expect(res.headers.get("content-length")).toBe("0");
      expect((await res.arrayBuffer()).byteLength).toBe(0);
      expect(await bodyInfo(tag)).toEqual({ bytesSent: 0, complete: true, status: 200 });
      const r = await raw("GET", "/files/empty.bin", { Range: "bytes=0-" });
      expect(r.status).toBe(416);
      expect(r.headers.get("content-range")).toBe("bytes */0");
      expect(r.body.length).toBe(0);
    });
  });

  describe("conditional requests", () => {
    let etag: string;
    let lastModified: string;
    beforeAll(async () => {
      const res = await fetch(url("kernel.bin"), { method: "HEAD" });
      etag = res.headers.get("etag") ?? "";
      lastModified = res.headers.get("last-modified") ?? "";
    });

    it.each([
      ["the ETag", (e: string) => e],
      ["the weak form (weak comparison)", (e: string) => `W/${e}`],
      ["a list holding it", (e: string) => `"nope", ${e} , W/"other"`],
      ["*", () => "*"],
    ])("If-None-Match with %s → 304 with ETag and no body", async (_what, value) => {
      const tag = newTag();
      const r = await raw("GET", `/files/kernel.bin?tag=${tag}`, { "If-None-Match": value(etag) });
      expect(r.status).toBe(304);
      expect(r.headers.get("etag")).toBe(etag);
      expect(r.headers.get("last-modified")).toBe(lastModified);
      expect(r.headers.has("content-range")).toBe(false);
      expect(r.body.length).toBe(0);
      expect(await bodyInfo(tag)).toEqual({ bytesSent: 0, complete: true, status: 304 });
      expect(fdsFor(smallPath)).toBe(0);
    });

    it("If-None-Match on HEAD → 304; not matching → 200", async () => {
      expect((await fetch(url("kernel.bin"), { method: "HEAD", headers: { "If-None-Match": etag } })).status).toBe(304);
      const res = await fetch(url("kernel.bin"), { headers: { "If-None-Match": '"something-else"' } });
      expect(res.status).toBe(200);
      expect((await sha256Body(res)).bytes).toBe(SMALL_SIZE);
    });

    it("If-Modified-Since, only without If-None-Match", async () => {
      const lm = Date.parse(lastModified);
      const status = async (headers: Record<string, string>): Promise<number> => {
        const res = await fetch(url("kernel.bin"), { method: "HEAD", headers });
        return res.status;
      };
      expect(await status({ "If-Modified-Since": lastModified })).toBe(304);
      expect(await status({ "If-Modified-Since": new Date(lm + 3600_000).toUTCString() })).toBe(304);
      expect(await status({ "If-Modified-Since": new Date(lm - 3600_000).toUTCString() })).toBe(200);
      expect(await status({ "If-Modified-Since": "not a date" })).toBe(200);
      // If-None-Match present (and not matching): If-Modified-Since is ignored.
      expect(await status({ "If-Modified-Since": lastModified, "If-None-Match": '"other"' })).toBe(200);
    });

    it("If-Range: a strongly matching ETag or the exact Last-Modified keeps the range, else the full 200", async () => {
      const get = async (ifRange: string): Promise<Response> =>
        fetch(url("kernel.bin"), { headers: { Range: "bytes=10-19", "If-Range": ifRange } });
      for (const ok of [etag, lastModified]) {
        const res = await get(ok);
        expect(res.status, ok).toBe(206);
        expect(Buffer.from(await res.arrayBuffer()).equals(small.subarray(10, 20))).toBe(true);
      }
      const older = new Date(Date.parse(lastModified) - 1000).toUTCString();
      for (const stale of ['"changed"', `W/${etag}`, older, "garbage"]) {
        const res = await get(stale);
        expect(res.status, stale).toBe(200);
        expect(res.headers.get("content-length")).toBe(String(SMALL_SIZE));
        expect((await sha256Body(res)).sha).toBe(sha256(small));
      }
    });

    it("If-Match / If-Unmodified-Since failing → 412", async () => {
      const lm = Date.parse(lastModified);
      const status = async (headers: Record<string, string>): Promise<number> =>
        (await fetch(url("kernel.bin"), { method: "HEAD", headers })).status;
      expect(await status({ "If-Match": '"other"' })).toBe(412);
      expect(await status({ "If-Match": `W/${etag}` })).toBe(412); // strong comparison
      expect(await status({ "If-Match": etag })).toBe(200);
      expect(await status({ "If-Match": "*" })).toBe(200);
      expect(await status({ "If-Unmodified-Since": new Date(lm - 3600_000).toUTCString() })).toBe(412);
      expect(await status({ "If-Unmodified-Since": lastModified })).toBe(200);
    });
  });

  it.skipIf(process.getuid?.() === 0)("403 for a file the daemon may not read (as non-root)", async () => {
    const secret = join(dir, "secret.bin");
    await fsp.writeFile(secret, "x", { mode: 0o000 });
    const tag = newTag();
    const res = await fetch(url("secret.bin", tag));
    expect(res.status).toBe(403);
    expect(await bodyInfo(tag)).toEqual({ bytesSent: 0, complete: true, status: 403 });
  });

  it("a file replaced by rename mid-download: that download keeps the old bytes, the next gets the new", async () => {
    const path = join(dir, "replaced.img");
    await fsp.copyFile(bigPath, path);
    const oldEtag = (await fetch(url("replaced.img"), { method: "HEAD" })).headers.get("etag");
    const tag = newTag();
    const client = slowClient(`/files/replaced.img?tag=${tag}`);
    await client.started;
    await fsp.writeFile(join(dir, "replaced.new"), "new kernel");
    await fsp.rename(join(dir, "replaced.new"), path);
    client.sock.resume();
    const got = await client.done;
    expect(got.head).toMatch(new RegExp(`\\r\\ncontent-length: ${BIG_SIZE}(\\r|$)`, "i"));
    expect(got.bodyBytes).toBe(BIG_SIZE);
    expect(got.sha).toBe(bigSha);
    expect(await bodyInfo(tag)).toEqual({ bytesSent: BIG_SIZE, complete: true, status: 200 });

    const next = await fetch(url("replaced.img"));
    expect(next.headers.get("etag")).not.toBe(oldEtag);
    expect(await next.text()).toBe("new kernel");
  });

  it("a file that shrinks mid-download: the connection is cut short, never padded; complete=false", async () => {
    const path = join(dir, "shrinking.img");
    await fsp.writeFile(path, "");
    await fsp.truncate(path, BIG_SIZE);
    const tag = newTag();
    const client = slowClient(`/files/shrinking.img?tag=${tag}`);
    await client.started;
    await fsp.truncate(path, BIG_SIZE / 2);
    // @hono/node-server logs the stream error with console.error; keep the output clean.
    const quiet = vi.spyOn(console, "error").mockImplementation(() => undefined);
    try {
      client.sock.resume();
      const got = await client.done;
      expect(got.bodyBytes).toBeLessThanOrEqual(BIG_SIZE / 2);
      const info = await bodyInfo(tag);
      expect(info).toEqual({ bytesSent: BIG_SIZE / 2, complete: false, status: 200 });
    } finally {
      quiet.mockRestore();
    }
    await vi.waitFor(() => expect(fdsFor(path)).toBe(0), WAIT);
  });

  it("a client aborting mid-download closes the file and reports complete=false", async () => {
    const baselineFds = fdCount();
    expect(fdsFor(bigPath)).toBe(0);
    const tag = newTag();
    const abort = new AbortController();
    const res = await fetch(url("big.img", tag), { signal: abort.signal });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    let received = 0;
    while (received < MiB) {
      const { value, done } = await reader.read();
      if (done) break;
      received += value.byteLength;
    }
    expect(fdsFor(bigPath)).toBe(1); // the download holds exactly one descriptor
    abort.abort();
    await reader.read().catch(() => undefined);

    await vi.waitFor(() => expect(fdsFor(bigPath)).toBe(0), WAIT);
    const info = await bodyInfo(tag);
    expect(info.complete).toBe(false);
    expect(info.status).toBe(200);
    expect(info.bytesSent).toBeGreaterThanOrEqual(received);
    expect(info.bytesSent).toBeLessThan(BIG_SIZE);
    await vi.waitFor(() => expect(fdCount()).toBeLessThanOrEqual(baselineFds), WAIT);
  });
});

describe("sendBytes", () => {
  const script = "#!ipxe\necho héllo ✓\nchain http://x/next\n";

  it("GET: exact Content-Length in bytes, no-store by default, an ETag", async () => {
    const res = await fetch(`${base}/script`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/plain; charset=utf-8");
    expect(res.headers.get("content-length")).toBe(String(Buffer.byteLength(script)));
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("etag")).toMatch(/^"[A-Za-z0-9_-]+"$/);
    expect(await res.text()).toBe(script);
  });

  it("a Buffer and an explicit Cache-Control", async () => {
    const res = await fetch(`${base}/config`);
    expect(res.headers.get("cache-control")).toBe("private, max-age=5");
    expect(res.headers.get("content-length")).toBe(String("machine:\n  type: worker\n".length));
    expect(res.headers.get("etag")).not.toBe((await fetch(`${base}/script`, { method: "HEAD" })).headers.get("etag"));
    expect(await res.text()).toBe("machine:\n  type: worker\n");
  });

  it("If-None-Match → 304 with ETag, no body; HEAD → headers, no body", async () => {
    const etag = (await fetch(`${base}/script`, { method: "HEAD" })).headers.get("etag") ?? "";
    for (const inm of [etag, `W/${etag}`, "*"]) {
      const r = await raw("GET", "/script", { "If-None-Match": inm });
      expect(r.status, inm).toBe(304);
      expect(r.headers.get("etag")).toBe(etag);
      expect(r.headers.get("cache-control")).toBe("no-store");
      expect(r.body.length).toBe(0);
    }
    expect((await fetch(`${base}/script`, { headers: { "If-None-Match": '"x"' } })).status).toBe(200);
    const head = await raw("HEAD", "/script");
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe(String(Buffer.byteLength(script)));
    expect(head.headers.get("etag")).toBe(etag);
    expect(head.body.length).toBe(0);
  });
});

const hasCurl = requireTool("curl", "curl");

describe.skipIf(!hasCurl)("with curl", () => {
  interface CurlResult {
    code: number | null;
    stdout: Buffer;
    stderr: string;
  }
  // --noproxy '*': never let an http_proxy in the environment take this off loopback.
  const curlBase = ["-q", "--silent", "--show-error", "--noproxy", "*", "--max-time", "120"];

  // Asynchronous on purpose: the server runs in this process's event loop.
  function curl(args: string[]): Promise<CurlResult> {
    return new Promise((resolve, reject) => {
      const child = spawn("curl", [...curlBase, ...args], { stdio: ["ignore", "pipe", "pipe"] });
      const out: Buffer[] = [];
      let err = "";
      child.stdout.on("data", (d: Buffer) => out.push(d));
      child.stderr.on("data", (d: Buffer) => (err += d.toString()));
      child.on("error", reject);
      child.on("close", (code) => resolve({ code, stdout: Buffer.concat(out), stderr: err }));
    });
  }

  it("downloads a byte-identical file", async () => {
    const out = join(dir, "curl-full.out");
    const r = await curl(["-o", out, "-w", "%{http_code}", url("kernel.bin")]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toBe("200");
    expect(await sha256File(out)).toBe(sha256(small));
  });

  it("-I (HEAD) shows the length and validators", async () => {
    const r = await curl(["-I", url("kernel.bin")]);
    expect(r.code).toBe(0);
    const text = r.stdout.toString();
    expect(text).toMatch(/^HTTP\/1\.1 200/);
    expect(text).toMatch(new RegExp(`^content-length: ${SMALL_SIZE}\\r$`, "im"));
    expect(text).toMatch(/^accept-ranges: bytes\r$/im);
    expect(text).toMatch(/^etag: "/im);
    expect(fdsFor(smallPath)).toBe(0);
  });

  it("--range a-b, --range -n and a multi-range", async () => {
    const a = await curl(["--range", "100-199", "-w", "\n%{http_code}", url("kernel.bin")]);
    expect(a.code).toBe(0);
    const split = a.stdout.lastIndexOf("\n");
    expect(a.stdout.subarray(split + 1).toString()).toBe("206");
    expect(a.stdout.subarray(0, split).equals(small.subarray(100, 200))).toBe(true);

    const b = await curl(["--range", "-4096", url("kernel.bin")]);
    expect(b.stdout.equals(small.subarray(SMALL_SIZE - 4096))).toBe(true);

    const out = join(dir, "curl-multi.out");
    const m = await curl(["--range", "0-1,5-6", "-o", out, "-w", "%{http_code}", url("kernel.bin")]);
    expect(m.stdout.toString()).toBe("200");
    expect(await sha256File(out)).toBe(sha256(small));
  });

  it("-C - resumes a partial download into an identical file", async () => {
    const out = join(dir, "curl-resume.out");
    const have = 1_000_003;
    await fsp.writeFile(out, small.subarray(0, have));
    const tag = newTag();
    const r = await curl(["-C", "-", "-o", out, "-w", "%{http_code}", url("kernel.bin", tag)]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toBe("206");
    expect(await sha256File(out)).toBe(sha256(small));
    expect(await bodyInfo(tag)).toEqual({ bytesSent: SMALL_SIZE - have, complete: true, status: 206 });
  });

  it("-C - on a file already complete: 416 */size, which curl accepts as done", async () => {
    const out = join(dir, "curl-complete.out");
    await fsp.writeFile(out, small);
    const r = await curl(["-C", "-", "-o", out, "-w", "%{http_code}", url("kernel.bin")]);
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toBe("416");
    expect(await sha256File(out)).toBe(sha256(small));
  });

  it("a killed curl closes the file on the server and reports complete=false", async () => {
    const tag = newTag();
    const child = spawn("curl", [...curlBase, "-o", "-", url("big.img", tag)], { stdio: ["ignore", "pipe", "ignore"] });
    const exited = once(child, "close");
    // Take one chunk, then stop reading: curl blocks on the pipe and cannot finish.
    await new Promise<void>((resolve) => {
      child.stdout.once("data", () => {
        child.stdout.pause();
        resolve();
      });
    });
    expect(fdsFor(bigPath)).toBe(1);
    child.kill("SIGKILL");
    await exited;
    await vi.waitFor(() => expect(fdsFor(bigPath)).toBe(0), WAIT);
    const info = await bodyInfo(tag);
    expect(info.complete).toBe(false);
    expect(info.bytesSent).toBeGreaterThan(0);
    expect(info.bytesSent).toBeLessThan(BIG_SIZE);
  });
});

describe("memory with a 64 MiB file", () => {
  const CLIENTS = 4;

  interface Sample {
    rss: number;
    arrayBuffers: number;
  }
  const sample = (): Sample => {
    const m = process.memoryUsage();
    return { rss: m.rss, arrayBuffers: m.arrayBuffers };
  };
  const growth = (peak: Sample, base0: Sample): Sample => ({
    rss: peak.rss - base0.rss,
    arrayBuffers: peak.arrayBuffers - base0.arrayBuffers,
  });
  const maxOf = (a: Sample, b: Sample): Sample => ({
    rss: Math.max(a.rss, b.rss),
    arrayBuffers: Math.max(a.arrayBuffers, b.arrayBuffers),
  });

  // Without backpressure the server would read each file into memory: CLIENTS × 64 MiB.
  const RSS_BOUND = 128 * MiB;
  const BUFFERS_BOUND = 48 * MiB;

  it("slow clients that stop reading do not make the server buffer the file", async () => {
    const before = sample();
    const clients = Array.from({ length: CLIENTS }, () => {
      const tag = newTag();
      return { tag, client: slowClient(`/files/big.img?tag=${tag}`) };
    });
    await Promise.all(clients.map((c) => c.client.started));

    // Give an unbounded reader every chance to show itself, watching memory.
    let peak = sample();
    for (let i = 0; i < 40; i++) {
      await sleep(25);
      peak = maxOf(peak, sample());
    }
    const g = growth(peak, before);
    expect(g.arrayBuffers, `arrayBuffers grew by ${g.arrayBuffers}`).toBeLessThan(BUFFERS_BOUND);
    expect(g.rss, `rss grew by ${g.rss}`).toBeLessThan(RSS_BOUND);
    for (const c of clients) expect(c.client.received()).toBeLessThan(BIG_SIZE);

    for (const c of clients) c.client.sock.resume();
    for (const c of clients) {
      const got = await c.client.done;
      expect(got.head).toMatch(new RegExp(`\\r\\ncontent-length: ${BIG_SIZE}(\\r|$)`, "i"));
      expect(got.bodyBytes).toBe(BIG_SIZE);
      expect(got.sha).toBe(bigSha);
      expect(await bodyInfo(c.tag)).toEqual({ bytesSent: BIG_SIZE, complete: true, status: 200 });
    }
    await vi.waitFor(() => expect(fdsFor(bigPath)).toBe(0), WAIT);
  });

  it("concurrent full downloads stay bounded and are byte-identical", async () => {
    const before = sample();
    let peak = before;
    const timer = setInterval(() => (peak = maxOf(peak, sample())), 10);
    try {
      const results = await Promise.all(
        Array.from({ length: CLIENTS }, async () => sha256Body(await fetch(url("big.img")))),
      );
      for (const r of results) expect(r).toEqual({ sha: bigSha, bytes: BIG_SIZE });
    } finally {
      clearInterval(timer);
    }
    peak = maxOf(peak, sample());
    const g = growth(peak, before);
    expect(g.rss, `rss grew by ${g.rss}`).toBeLessThan(RSS_BOUND);
    await vi.waitFor(() => expect(fdsFor(bigPath)).toBe(0), WAIT);
  });
});

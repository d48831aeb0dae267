import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import type { TftpResolution, TftpResolver, TftpSource } from "../../src/boot/types.js";
import { silentLogger } from "../../src/log.js";
import { Metrics } from "../../src/metrics.js";
import { PortBindError } from "../../src/net/errors.js";
import { encodeAck, encodeError, encodeRequest } from "../../src/tftp/codec.js";
import { TftpServer, type TftpServerOptions } from "../../src/tftp/server.js";
import { RawPeer, tftpGet, type Received } from "../helpers/tftp-client.js";

const HOST = "127.0.0.1";

let dir: string;
const content = new Map<string, Buffer>();
const served = new Map<string, TftpSource>();

async function addFile(name: string, data: Buffer): Promise<void> {
  const path = join(dir, name.replaceAll("/", "_"));
  await writeFile(path, data);
  content.set(name, data);
  served.set(name, { kind: "file", path });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tftp-server-test-"));
  await addFile("hello.txt", Buffer.from("hello from talos-netboot\n"));
  await addFile("three-blocks.bin", randomBytes(2 * 512 + 476));
  await addFile("exact.bin", randomBytes(2 * 512));
  await addFile("exact-1468.bin", randomBytes(3 * 1468));
  await addFile("empty.bin", Buffer.alloc(0));
  await addFile("medium.bin", randomBytes(200_003));
  await addFile("grub/grub.cfg", Buffer.from("set timeout=1\n"));
  await mkdir(join(dir, "a-directory"));
  served.set("a-directory", { kind: "file", path: join(dir, "a-directory") });
  served.set("vanished.bin", { kind: "file", path: join(dir, "was-deleted.bin") });
  const rendered = Buffer.from("#!ipxe\nchain http://127.0.0.1/boot.ipxe\n");
  content.set("rendered.ipxe", rendered);
  served.set("rendered.ipxe", { kind: "buffer", data: rendered });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Harness {
  server: TftpServer;
  metrics: Metrics;
  port: number;
  resolve: ReturnType<typeof vi.fn<TftpResolver["resolve"]>>;
  completed: ReturnType<typeof vi.fn<NonNullable<TftpResolver["completed"]>>>;
}

const running: TftpServer[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.stop()));
});

/** A server on an ephemeral loopback port, resolving from the `served` map; short timeouts keep retransmission tests quick. */
async function startServer(overrides: Partial<TftpServerOptions> = {}): Promise<Harness> {
  const metrics = new Metrics();
  const resolve = vi.fn<TftpResolver["resolve"]>((name): TftpResolution => {
    const source = served.get(name);
    return source ? { ok: true, source } : { ok: false, code: 1, message: "file not found" };
  });
  const completed = vi.fn<NonNullable<TftpResolver["completed"]>>();
  const server = new TftpServer({
    port: 0,
    address: HOST,
    resolver: { resolve, completed },
    log: silentLogger(),
    metrics,
    timeoutMs: 300,
    retries: 3,
    ...overrides,
  });
  await server.start();
  running.push(server);
  return { server, metrics, port: server.listeningPort, resolve, completed };
}

async function metric(m: { get(): Promise<{ values: { value: number; labels: object }[] }> }, labels: Record<string, string> = {}): Promise<number> {
  const { values } = await m.get();
  const hit = values.find((v) => Object.entries(labels).every(([k, want]) => (v.labels as Record<string, unknown>)[k] === want));
  return hit?.value ?? 0;
}

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, limitMs = 10_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Next packet or a test failure naming what was expected. */
async function expectNext(peer: RawPeer, what: string, waitMs = 5000): Promise<Received> {
  const r = await peer.next(waitMs);
  if (!r) throw new Error(`no packet while waiting for ${what}`);
  return r;
}

/** Vitest's deep equality walks Buffers element by element (slow at 200 kB); hashes compare fast and print short. */
function expectSame(actual: Buffer | undefined | false, name: string): void {
  const want = content.get(name);
  if (!want) throw new Error(`no test content named ${name}`);
  expect(actual instanceof Buffer ? { size: actual.length, sha256: sha256(actual) } : actual).toEqual({ size: want.length, sha256: sha256(want) });
}

function sha256(b: Buffer): string {
  return createHash("sha256").update(b).digest("hex");
}

describe("transfers", () => {
  it("serves a small file with plain RFC 1350 (no options, no OACK)", async () => {
    const h = await startServer();
    const r = await tftpGet({ port: h.port, name: "hello.txt" });
    expect(r.error).toBeUndefined();
    expect(r.oack).toBeUndefined();
    expectSame(r.data, "hello.txt");
    expect(r.serverTid).not.toBe(h.port); // a fresh TID, not the listening port
    await waitFor("transfer accounting", () => h.server.activeTransfers === 0);
    expect(await metric(h.metrics.tftpTransfers, { outcome: "ok" })).toBe(1);
    expect(await metric(h.metrics.tftpBytes)).toBe(content.get("hello.txt")!.length);
    expect(await metric(h.metrics.tftpActive)).toBe(0);
  });

  it("serves multi-block files at blksize 512", async () => {
    const h = await startServer();
    const r = await tftpGet({ port: h.port, name: "three-blocks.bin" });
    expectSame(r.data, "three-blocks.bin");
    expect(r.blocks).toBe(3);
    expect(r.lastBlockLength).toBe(476);
  });

  it("ends an exact multiple of blksize with an empty block", async () => {
    const h = await startServer();
    const r = await tftpGet({ port: h.port, name: "exact.bin" });
    expectSame(r.data, "exact.bin");
    expect(r.blocks).toBe(3);
    expect(r.lastBlockLength).toBe(0);
    const big = await tftpGet({ port: h.port, name: "exact-1468.bin", options: { blksize: 1468 } });
    expectSame(big.data, "exact-1468.bin");
    expect(big.blocks).toBe(4);
    expect(big.lastBlockLength).toBe(0);
  });

  it("serves an empty file as one empty block", async () => {
    const h = await startServer();
    const r = await tftpGet({ port: h.port, name: "empty.bin" });
    expect(r.error).toBeUndefined();
    expect(r.blocks).toBe(1);
    expect(r.size).toBe(0);
  });

  it("serves in-memory sources", async () => {
    const h = await startServer();
    const r = await tftpGet({ port: h.port, name: "rendered.ipxe", options: { tsize: 0 } });
    expectSame(r.data, "rendered.ipxe");
    expect(r.oack?.get("tsize")).toBe(String(content.get("rendered.ipxe")!.length));
  });

  it("negotiates blksize 1468 and answers tsize with the real size", async () => {
    const h = await startServer();
    const r = await tftpGet({ port: h.port, name: "medium.bin", options: { blksize: 1468, tsize: 0 } });
    expect(r.oack).toEqual(new Map([["blksize", "1468"], ["tsize", String(content.get("medium.bin")!.length)]]));
    expectSame(r.data, "medium.bin");
    expect(r.blocks).toBe(Math.floor(200_003 / 1468) + 1);
  });

  it("caps blksize at the configured maximum", async () => {
    const h = await startServer({ maxBlksize: 1024 });
    const r = await tftpGet({ port: h.port, name: "medium.bin", options: { blksize: 65464 } });
    expect(r.oack?.get("blksize")).toBe("1024");
    expectSame(r.data, "medium.bin");
  });

  it.each([4, 8])("sends windows of %d blocks (RFC 7440)", async (windowsize) => {
    const h = await startServer();
    const r = await tftpGet({ port: h.port, name: "medium.bin", options: { blksize: 1468, windowsize } });
    expect(r.oack?.get("windowsize")).toBe(String(windowsize));
    expectSame(r.data, "medium.bin");
    expect(r.duplicates).toBe(0);
    expect(await metric(h.metrics.tftpRetransmits)).toBe(0);
  });

  it("caps windowsize at the configured maximum", async () => {
    const h = await startServer({ maxWindowsize: 2 });
    const r = await tftpGet({ port: h.port, name: "medium.bin", options: { windowsize: 16 } });
    expect(r.oack?.get("windowsize")).toBe("2");
    expectSame(r.data, "medium.bin");
  });

  it("wraps block numbers past 65535 (a 33.5 MB file at blksize 512)", async () => {
    const size = 65_536 * 512 + 1234;
    const data = randomBytes(size);
    await addFile("big.bin", data);
    const h = await startServer();
    const r = await tftpGet({ port: h.port, name: "big.bin", options: { windowsize: 64, tsize: 0 }, keepData: false });
    expect(r.error).toBeUndefined();
    expect(r.oack?.get("tsize")).toBe(String(size));
    expect(r.blocks).toBe(Math.floor(size / 512) + 1);
    expect(r.size).toBe(size);
    expect(r.sha256).toBe(sha256(data));
  }, 120_000);

  it("reports completed transfers to the resolver, once", async () => {
    const h = await startServer();
    await tftpGet({ port: h.port, name: "medium.bin", options: { blksize: 1468, windowsize: 4 } });
    await waitFor("completion", () => h.completed.mock.calls.length > 0);
    expect(h.completed).toHaveBeenCalledTimes(1);
    expect(h.completed.mock.calls[0]![0]).toMatchObject({ name: "medium.bin", bytes: 200_003, blksize: 1468, windowsize: 4 });
    expect(h.completed.mock.calls[0]![0].client.address).toBe(HOST);
  });

  it("reads a leading-slash name relative to the root", async () => {
    const h = await startServer();
    const r = await tftpGet({ port: h.port, name: "/grub/grub.cfg" });
    expectSame(r.data, "grub/grub.cfg");
    expect(h.resolve.mock.calls[0]![0]).toBe("grub/grub.cfg");
  });

  it("serves netascii requests byte for byte", async () => {
    const h = await startServer();
    const r = await tftpGet({ port: h.port, name: "hello.txt", mode: "NetASCII" });
    expectSame(r.data, "hello.txt");
  });

  it("serves many transfers at once", async () => {
    const h = await startServer();
    const names = ["medium.bin", "three-blocks.bin", "hello.txt", "exact.bin"];
    const results = await Promise.all(
      Array.from({ length: 24 }, (_, i) => tftpGet({ port: h.port, name: names[i % names.length]!, options: { blksize: 1468, windowsize: 1 + (i % 8) } })),
    );
    results.forEach((r, i) => expectSame(r.data, names[i % names.length]!));
    await waitFor("all transfers to end", () => h.server.activeTransfers === 0);
    expect(await metric(h.metrics.tftpTransfers, { outcome: "ok" })).toBe(24);
  });
});

describe("tsize probe", () => {
  it("ends quietly when the client answers the OACK with error 8, then serves the real request", async () => {
    const h = await startServer();
    const probe = await tftpGet({ port: h.port, name: "medium.bin", options: { tsize: 0 }, abortAfterOack: { code: 8, message: "tsize only" } });
    expect(probe.oack?.get("tsize")).toBe("200003");
    expect(probe.blocks).toBe(0);
    await waitFor("probe transfer to end", () => h.server.activeTransfers === 0);
    expect(await metric(h.metrics.tftpTransfers, { outcome: "aborted" })).toBe(1);
    const real = await tftpGet({ port: h.port, name: "medium.bin", options: { blksize: 1468 } });
    expectSame(real.data, "medium.bin");
    await waitFor("real transfer to end", () => h.server.activeTransfers === 0);
    expect(h.completed).toHaveBeenCalledTimes(1);
  });
});

describe("loss and retransmission", () => {
  it("resends a lost DATA after the timeout", async () => {
    const h = await startServer();
    const r = await tftpGet({ port: h.port, name: "three-blocks.bin", dropData: (block, copy) => block === 2 && copy === 1 });
    expectSame(r.data, "three-blocks.bin");
    expect(await metric(h.metrics.tftpRetransmits)).toBeGreaterThanOrEqual(1);
    // Retransmissions are not new bytes.
    expect(await metric(h.metrics.tftpBytes)).toBe(content.get("three-blocks.bin")!.length);
  });

  it("resends after a lost ACK, and the duplicate DATA is re-acknowledged", async () => {
    const h = await startServer();
    const r = await tftpGet({ port: h.port, name: "three-blocks.bin", dropAck: (block, copy) => block === 1 && copy === 1 });
    expectSame(r.data, "three-blocks.bin");
    expect(r.duplicates).toBeGreaterThanOrEqual(1);
    expect(await metric(h.metrics.tftpRetransmits)).toBeGreaterThanOrEqual(1);
  });

  it("resends the OACK when the client repeats its RRQ, and never on its own timer", async () => {
    const h = await startServer({ timeoutMs: 100, retries: 20 });
    const peer = await RawPeer.open();
    try {
      const rrq = encodeRequest("rrq", "hello.txt", "octet", [{ name: "blksize", value: "1024" }]);
      await peer.send(rrq, h.port);
      const first = await expectNext(peer, "OACK");
      expect(first.packet.op).toBe("oack");
      // Many timeouts pass: no OACK comes by itself (atftp aborts on an unrequested one).
      expect(await peer.next(1_000)).toBeUndefined();
      // The client lost it and asks again from the same port: the same transfer answers.
      await peer.send(rrq, h.port);
      const second = await expectNext(peer, "OACK again");
      expect(second.packet.op).toBe("oack");
      expect(second.from.port).toBe(first.from.port);
      expect(h.server.activeTransfers).toBe(1);
      await peer.send(encodeAck(0), second.from.port);
      const d1 = await expectNext(peer, "DATA 1");
      expectSame(d1.packet.op === "data" && d1.packet.data, "hello.txt");
      await peer.send(encodeAck(1), d1.from.port);
    } finally {
      await peer.close();
    }
    await waitFor("transfer to end", () => h.server.activeTransfers === 0);
    expect(await metric(h.metrics.tftpTransfers, { outcome: "ok" })).toBe(1);
  });

  it("backs off exponentially between retransmissions, capped", async () => {
    const h = await startServer({ timeoutMs: 50, retries: 5 });
    const peer = await RawPeer.open();
    const times: number[] = [];
    try {
      await peer.send(encodeRequest("rrq", "three-blocks.bin", "octet", []), h.port);
      for (let i = 0; i < 10; i++) {
        const r = await expectNext(peer, "retransmission or ERROR", 10_000);
        if (r.packet.op === "error") break;
        times.push(performance.now());
      }
    } finally {
      await peer.close();
    }
    expect(times).toHaveLength(6);
    // The timeout, then doubling up to 8× (lower bounds only: a loaded machine fires timers late, never early).
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    const minimum = [50, 100, 200, 400, 400];
    gaps.forEach((g, i) => expect(g, `gap ${i + 1} of ${gaps.map(Math.round).join(", ")} ms`).toBeGreaterThanOrEqual(minimum[i]! - 5));
  });

  it("in windowed mode, an ACK inside the window restarts from there without waiting for a timeout", async () => {
    // A server timeout far beyond the client's patience: only ACK-driven resends can finish this.
    // Block 3 is mid-window (the client sees the gap at block 4 and ACKs 2); block 44 ends its
    // window [41..44], so the client only notices on its own timeout and re-ACKs 43.
    const h = await startServer({ timeoutMs: 60_000 });
    const r = await tftpGet({
      port: h.port,
      name: "medium.bin",
      options: { blksize: 1468, windowsize: 4 },
      dropData: (block, copy) => (block === 3 || block === 44) && copy === 1,
      waitMs: 1000,
      retries: 1,
    });
    expect(r.error).toBeUndefined();
    expectSame(r.data, "medium.bin");
    expect(await metric(h.metrics.tftpRetransmits)).toBeGreaterThanOrEqual(2);
  });

  it("does not answer duplicate ACKs with duplicate DATA (no sorcerer's apprentice)", async () => {
    const h = await startServer({ timeoutMs: 60_000 });
    const peer = await RawPeer.open();
    try {
      await peer.send(encodeRequest("rrq", "three-blocks.bin", "octet"), h.port);
      const d1 = await expectNext(peer, "DATA 1");
      expect(d1.packet).toMatchObject({ op: "data", block: 1 });
      const tid = d1.from.port;
      await peer.send(encodeAck(1), tid);
      const d2 = await expectNext(peer, "DATA 2");
      expect(d2.packet).toMatchObject({ op: "data", block: 2 });
      // Late duplicates of ACK 1, after DATA 2 went out: the classic trigger. They must be
      // ignored (the server's own timeout is a minute away, so anything arriving is a resend).
      for (let i = 0; i < 2; i++) {
        await peer.send(encodeAck(1), tid);
        expect(await peer.next(300)).toBeUndefined();
      }
      await peer.send(encodeAck(2), tid);
      const d3 = await expectNext(peer, "DATA 3");
      expect(d3.packet).toMatchObject({ op: "data", block: 3 });
      await peer.send(encodeAck(3), tid);
    } finally {
      await peer.close();
    }
    await waitFor("transfer to end", () => h.server.activeTransfers === 0);
    expect(await metric(h.metrics.tftpRetransmits)).toBe(0);
    expect(await metric(h.metrics.tftpTransfers, { outcome: "ok" })).toBe(1);
  });

  it.each([
    ["without options (DATA 1)", [] as { name: string; value: string }[], "data"],
    ["after an OACK", [{ name: "tsize", value: "0" }], "oack"],
  ])("gives up after the configured retries %s, tells the client, frees the transfer", async (_what, options, firstOp) => {
    const h = await startServer({ timeoutMs: 100, retries: 3 });
    const peer = await RawPeer.open();
    const seen: string[] = [];
    let final: Received | undefined;
    try {
      await peer.send(encodeRequest("rrq", "three-blocks.bin", "octet", options), h.port);
      // Never acknowledge. Bounded: 1 + retries sends, then ERROR, and a margin.
      for (let i = 0; i < 10; i++) {
        const r = await expectNext(peer, "retransmission or ERROR");
        if (r.packet.op === "error") {
          final = r;
          break;
        }
        seen.push(r.packet.op === "data" ? `data${r.packet.block}` : r.packet.op);
      }
    } finally {
      await peer.close();
    }
    // DATA is retransmitted; an OACK is sent once (the client's repeated RRQ would ask for it again).
    expect(seen).toEqual(firstOp === "data" ? ["data1", "data1", "data1", "data1"] : ["oack"]);
    expect(final?.packet).toEqual({ op: "error", code: 0, message: "timeout" });
    await waitFor("transfer to be freed", () => h.server.activeTransfers === 0);
    expect(await metric(h.metrics.tftpTransfers, { outcome: "timeout" })).toBe(1);
    expect(await metric(h.metrics.tftpActive)).toBe(0);
    expect(h.completed).not.toHaveBeenCalled();
  });
});

describe("negotiated timeout", () => {
  it("retransmits on the client's timeout, not the server default", async () => {
    // Server default a minute, client asks 1 s: only the negotiated value can produce the retransmission in time.
    const h = await startServer({ timeoutMs: 60_000, retries: 1 });
    const peer = await RawPeer.open();
    const seen: string[] = [];
    try {
      await peer.send(encodeRequest("rrq", "three-blocks.bin", "octet", [{ name: "timeout", value: "1" }]), h.port);
      const oack = await expectNext(peer, "OACK");
      expect(oack.packet.op === "oack" && oack.packet.options.get("timeout")?.value).toBe("1");
      await peer.send(encodeAck(0), oack.from.port);
      for (let i = 0; i < 5; i++) {
        const r = await expectNext(peer, "DATA or ERROR", 10_000);
        seen.push(r.packet.op === "data" ? `data${r.packet.block}` : r.packet.op);
        if (r.packet.op === "error") break;
      }
    } finally {
      await peer.close();
    }
    expect(seen).toEqual(["data1", "data1", "error"]);
  });
});

describe("transfer IDs", () => {
  it("answers a stranger on a transfer's port with error 5 and carries on", async () => {
    const h = await startServer({ timeoutMs: 200 });
    const client = await RawPeer.open();
    const stranger = await RawPeer.open();
    try {
      await client.send(encodeRequest("rrq", "three-blocks.bin", "octet"), h.port);
      const d1 = await expectNext(client, "DATA 1");
      const tid = d1.from.port;
      await stranger.send(encodeAck(1), tid);
      const err = await expectNext(stranger, "ERROR 5");
      expect(err.packet).toMatchObject({ op: "error", code: 5 });
      expect(err.from.port).toBe(tid);
      // Had the stranger's ACK counted, the next thing the client sees would be DATA 2.
      const again = await expectNext(client, "DATA 1 retransmission");
      expect(again.packet).toMatchObject({ op: "data", block: 1 });
      let block = 1;
      for (let i = 0; i < 10 && block < 3; i++) {
        await client.send(encodeAck(block), tid);
        const next = await expectNext(client, `DATA ${block + 1}`);
        if (next.packet.op === "data" && next.packet.block === block + 1) block++;
      }
      await client.send(encodeAck(3), tid);
      expect(block).toBe(3);
    } finally {
      await client.close();
      await stranger.close();
    }
    await waitFor("transfer to end", () => h.server.activeTransfers === 0);
    expect(await metric(h.metrics.tftpTransfers, { outcome: "ok" })).toBe(1);
  });

  it("counts and drops malformed packets on a transfer's port without disturbing it", async () => {
    const h = await startServer({ timeoutMs: 60_000 });
    const peer = await RawPeer.open();
    try {
      await peer.send(encodeRequest("rrq", "three-blocks.bin", "octet"), h.port);
      const d1 = await expectNext(peer, "DATA 1");
      const tid = d1.from.port;
      await peer.send(Buffer.from([0, 4, 0]), tid); // a truncated ACK
      await peer.send(Buffer.from([0, 42]), tid);
      for (let block = 1; block <= 3; block++) {
        await peer.send(encodeAck(block), tid);
        if (block < 3) expect((await expectNext(peer, `DATA ${block + 1}`)).packet).toMatchObject({ op: "data", block: block + 1 });
      }
    } finally {
      await peer.close();
    }
    await waitFor("transfer to end", () => h.server.activeTransfers === 0);
    expect(await metric(h.metrics.malformedPackets, { protocol: "tftp" })).toBe(2);
    expect(await metric(h.metrics.tftpTransfers, { outcome: "ok" })).toBe(1);
  });

  it("ends the transfer when the client sends an ERROR mid-transfer", async () => {
    const h = await startServer({ timeoutMs: 60_000 });
    const peer = await RawPeer.open();
    try {
      await peer.send(encodeRequest("rrq", "three-blocks.bin", "octet"), h.port);
      const d1 = await expectNext(peer, "DATA 1");
      await peer.send(encodeError(0, "user cancelled"), d1.from.port);
    } finally {
      await peer.close();
    }
    await waitFor("transfer to end", () => h.server.activeTransfers === 0);
    expect(await metric(h.metrics.tftpTransfers, { outcome: "aborted" })).toBe(1);
  });
});

describe("refusals", () => {
  it.each([
    "../etc/passwd",
    "a/../../b",
    "//etc/passwd",
    "%2e%2e/etc/passwd",
    "..%2fetc%2fpasswd",
    "a\\..\\b",
    "grub/./grub.cfg",
    "ipxe.efi\u0001",
  ])("refuses %j with error 2 without asking the resolver", async (name) => {
    const h = await startServer();
    const r = await tftpGet({ port: h.port, name });
    expect(r.error).toEqual({ code: 2, message: "access violation" });
    expect(h.resolve).not.toHaveBeenCalled();
  });

  it("a leading-slash absolute path is only a name to look up: not found", async () => {
    const h = await startServer();
    const r = await tftpGet({ port: h.port, name: "/etc/passwd" });
    expect(r.error?.code).toBe(1);
    expect(r.size).toBe(0);
  });

  it("answers a name the resolver does not know with error 1", async () => {
    const h = await startServer();
    const r = await tftpGet({ port: h.port, name: "no-such-file.efi" });
    expect(r.error).toEqual({ code: 1, message: "file not found" });
    expect(await metric(h.metrics.tftpTransfers, { outcome: "error" })).toBe(1);
  });

  it("passes the resolver's refusal code through", async () => {
    const h = await startServer();
    h.resolve.mockReturnValueOnce({ ok: false, code: 2, message: "not for this machine" });
    const r = await tftpGet({ port: h.port, name: "hello.txt" });
    expect(r.error).toEqual({ code: 2, message: "not for this machine" });
  });

  it("answers error 0 when the resolver throws, and keeps serving", async () => {
    const h = await startServer();
    h.resolve.mockImplementationOnce(() => {
      throw new Error("boom");
    });
    const r = await tftpGet({ port: h.port, name: "hello.txt" });
    expect(r.error?.code).toBe(0);
    const ok = await tftpGet({ port: h.port, name: "hello.txt" });
    expectSame(ok.data, "hello.txt");
  });

  it("answers error 1 for a file that vanished and for a directory", async () => {
    const h = await startServer();
    expect((await tftpGet({ port: h.port, name: "vanished.bin" })).error?.code).toBe(1);
    expect((await tftpGet({ port: h.port, name: "a-directory" })).error?.code).toBe(1);
    expect(h.server.activeTransfers).toBe(0);
  });

  it("refuses writes with error 2", async () => {
    const h = await startServer();
    const peer = await RawPeer.open();
    try {
      await peer.send(encodeRequest("wrq", "hello.txt", "octet"), h.port);
      const r = await expectNext(peer, "ERROR");
      expect(r.packet).toEqual({ op: "error", code: 2, message: "read-only server" });
    } finally {
      await peer.close();
    }
    expect(h.resolve).not.toHaveBeenCalled();
  });

  it.each(["mail", "binary"])("refuses mode %s with error 4", async (mode) => {
    const h = await startServer();
    const r = await tftpGet({ port: h.port, name: "hello.txt", mode });
    expect(r.error?.code).toBe(4);
  });

  it("refuses requests beyond maxTransfers, and serves again once a slot frees", async () => {
    const h = await startServer({ maxTransfers: 1, timeoutMs: 60_000 });
    const holder = await RawPeer.open();
    try {
      await holder.send(encodeRequest("rrq", "hello.txt", "octet"), h.port);
      const d1 = await expectNext(holder, "DATA 1");
      expect(h.server.activeTransfers).toBe(1);
      const busy = await tftpGet({ port: h.port, name: "hello.txt" });
      expect(busy.error?.code).toBe(0);
      expect(busy.error?.message).toMatch(/busy/);
      await holder.send(encodeAck(1), d1.from.port);
    } finally {
      await holder.close();
    }
    await waitFor("slot to free", () => h.server.activeTransfers === 0);
    expectSame((await tftpGet({ port: h.port, name: "hello.txt" })).data, "hello.txt");
  });
});

describe("malformed packets", () => {
  it("are counted and dropped; the server keeps serving", async () => {
    const h = await startServer();
    const peer = await RawPeer.open();
    const bad = [
      Buffer.from([1]),
      Buffer.from([0, 9, 0, 0]),
      Buffer.from([0, 1, ...Buffer.from("no-terminator")]),
      Buffer.from([0, 1, 0, ...Buffer.from("octet"), 0]),
      Buffer.from([0, 1, ...Buffer.from("f"), 0, ...Buffer.from("octet"), 0, ...Buffer.from("blksize"), 0]),
    ];
    try {
      for (const b of bad) await peer.send(b, h.port);
      const r = await tftpGet({ port: h.port, name: "hello.txt" });
      expectSame(r.data, "hello.txt");
      await waitFor("malformed count", async () => (await metric(h.metrics.malformedPackets, { protocol: "tftp" })) === bad.length);
      // Dropped means no answer at all.
      expect(await peer.next(50)).toBeUndefined();
    } finally {
      await peer.close();
    }
  });
});

describe("lifecycle", () => {
  it("fails to bind a busy port with a PortBindError naming tftp.port", async () => {
    const h = await startServer();
    const second = new TftpServer({ port: h.port, address: HOST, resolver: { resolve: h.resolve }, log: silentLogger(), metrics: new Metrics() });
    const err = await second.start().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PortBindError);
    expect(err).toMatchObject({ code: "EADDRINUSE", configKey: "tftp.port", port: h.port });
  });

  it("stop() cuts active transfers, tells their clients, and is idempotent", async () => {
    const h = await startServer({ timeoutMs: 60_000 });
    const peer = await RawPeer.open();
    try {
      await peer.send(encodeRequest("rrq", "medium.bin", "octet"), h.port);
      await expectNext(peer, "DATA 1");
      expect(h.server.activeTransfers).toBe(1);
      await h.server.stop();
      expect(h.server.activeTransfers).toBe(0);
      const bye = await expectNext(peer, "shutdown ERROR");
      expect(bye.packet).toMatchObject({ op: "error", code: 0 });
      await h.server.stop();
      // The listening port is closed: a new request gets nothing.
      await peer.send(encodeRequest("rrq", "hello.txt", "octet"), h.port);
      expect(await peer.next(200)).toBeUndefined();
    } finally {
      await peer.close();
    }
    expect(await metric(h.metrics.tftpActive)).toBe(0);
  });

  it("stop() while a request is still being resolved starts no transfer and frees the slot", async () => {
    const h = await startServer();
    let release!: (r: TftpResolution) => void;
    h.resolve.mockImplementationOnce(() => new Promise<TftpResolution>((r) => (release = r)));
    const peer = await RawPeer.open();
    try {
      await peer.send(encodeRequest("rrq", "hello.txt", "octet"), h.port);
      await waitFor("the resolver to be asked", () => h.resolve.mock.calls.length === 1);
      expect(h.server.activeTransfers).toBe(1);
      const stopped = h.server.stop();
      release({ ok: true, source: served.get("hello.txt")! });
      await stopped;
      expect(h.server.activeTransfers).toBe(0);
      expect(await peer.next(200)).toBeUndefined();
    } finally {
      await peer.close();
    }
    expect(await metric(h.metrics.tftpActive)).toBe(0);
  });

  it("rejects invalid limits at construction", () => {
    const base = { port: 0, resolver: { resolve: () => ({ ok: false as const, code: 1 as const, message: "" }) }, log: silentLogger(), metrics: new Metrics() };
    expect(() => new TftpServer({ ...base, maxBlksize: 7 })).toThrow(RangeError);
    expect(() => new TftpServer({ ...base, maxBlksize: 65465 })).toThrow(RangeError);
    expect(() => new TftpServer({ ...base, maxWindowsize: 0 })).toThrow(RangeError);
    expect(() => new TftpServer({ ...base, maxTransfers: 0 })).toThrow(RangeError);
  });
});

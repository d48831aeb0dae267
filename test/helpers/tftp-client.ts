/**
 * A small TFTP client for tests, built on the project's codec, with hooks to
 * lose packets deterministically. RawPeer gives packet-level control for
 * protocol tests; tftpGet runs a whole RFC 1350/2347/7440 download.
 */
import { createHash } from "node:crypto";
import { createSocket, type Socket } from "node:dgram";
import { decodePacket, encodeAck, encodeError, encodeRequest, type TftpPacket } from "../../src/tftp/codec.js";

export interface Received {
  packet: TftpPacket;
  from: { address: string; port: number };
}

/** A UDP socket on 127.0.0.1 that queues decoded packets. */
export class RawPeer {
  private readonly queue: Received[] = [];
  private waiter: ((r: Received) => void) | undefined;
  /** Datagrams that did not decode (kept so a test can assert there were none). */
  undecodable = 0;

  private constructor(private readonly socket: Socket) {
    socket.on("message", (msg, rinfo) => {
      let packet: TftpPacket;
      try {
        packet = decodePacket(msg);
      } catch {
        this.undecodable++;
        return;
      }
      const r = { packet, from: { address: rinfo.address, port: rinfo.port } };
      const w = this.waiter;
      if (w) {
        this.waiter = undefined;
        w(r);
      } else {
        this.queue.push(r);
      }
    });
  }

  static async open(): Promise<RawPeer> {
    const socket = createSocket("udp4");
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind({ port: 0, address: "127.0.0.1" }, () => {
        socket.off("error", reject);
        resolve();
      });
    });
    return new RawPeer(socket);
  }

  get port(): number {
    return this.socket.address().port;
  }

  send(buf: Buffer, port: number, host = "127.0.0.1"): Promise<void> {
    return new Promise((resolve, reject) => this.socket.send(buf, port, host, (err) => (err ? reject(err) : resolve())));
  }

  /** The next packet, or undefined when none arrives within waitMs. */
  next(waitMs: number): Promise<Received | undefined> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        resolve(undefined);
      }, waitMs);
      this.waiter = (r) => {
        clearTimeout(timer);
        resolve(r);
      };
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      try {
        this.socket.close(() => resolve());
      } catch {
        resolve();
      }
    });
  }
}

export interface GetRequest {
  port: number;
  name: string;
  host?: string;
  mode?: string;
  options?: Record<string, string | number>;
  /** How long to wait for a packet before sending the last ACK (or the RRQ) again. */
  waitMs?: number;
  /** Re-sends before the client gives up. */
  retries?: number;
  /** Overall ceiling, whatever the server does. */
  deadlineMs?: number;
  /** Keep the downloaded bytes (default); large downloads only hash them. */
  keepData?: boolean;
  /** Pretend an incoming DATA never arrived. `copy` counts arrivals of that absolute block, from 1. */
  dropData?: (absBlock: number, copy: number) => boolean;
  /** Pretend our ACK was lost. `copy` counts ACKs of that absolute block we tried to send, from 1. */
  dropAck?: (absBlock: number, copy: number) => boolean;
  /** Answer the OACK with this ERROR instead of ACK 0 (the firmware tsize probe). */
  abortAfterOack?: { code: number; message: string };
}

export interface GetResult {
  /** Set when the server answered with ERROR (or the client gave up: code -1). */
  error?: { code: number; message: string };
  /** OACK options, lower-cased names. */
  oack?: Map<string, string>;
  data?: Buffer;
  size: number;
  sha256: string;
  /** DATA packets accepted in order (= blocks, including a final empty one). */
  blocks: number;
  /** DATA packets that arrived again or out of order. */
  duplicates: number;
  lastBlockLength: number;
  /** The final (short) block arrived and was acknowledged. */
  complete: boolean;
  serverTid?: number;
}

export async function tftpGet(req: GetRequest): Promise<GetResult> {
  const host = req.host ?? "127.0.0.1";
  const waitMs = req.waitMs ?? 2000;
  const retries = req.retries ?? 5;
  const deadline = Date.now() + (req.deadlineMs ?? 60_000);
  const keep = req.keepData ?? true;
  const peer = await RawPeer.open();
  const hash = createHash("sha256");
  const chunks: Buffer[] = [];
  const result: GetResult = { size: 0, sha256: "", blocks: 0, duplicates: 0, lastBlockLength: -1, complete: false };
  let aborted = false;
  const dataCopies = new Map<number, number>();
  const ackCopies = new Map<number, number>();

  const options = Object.entries(req.options ?? {}).map(([name, value]) => ({ name, value: String(value) }));
  const rrq = encodeRequest("rrq", req.name, req.mode ?? "octet", options);
  let blksize = 512;
  let windowsize = 1;
  let tid: number | undefined;
  /** Absolute number of the next block we need. */
  let expected = 1;
  let inWindow = 0;
  let lastSent: () => Promise<void> = () => peer.send(rrq, req.port, host);

  const ack = (abs: number): Promise<void> => {
    const copy = (ackCopies.get(abs) ?? 0) + 1;
    ackCopies.set(abs, copy);
    lastSent = () => peer.send(encodeAck(abs & 0xffff), tid!, host);
    if (req.dropAck?.(abs, copy)) return Promise.resolve();
    return lastSent();
  };

  try {
    await lastSent();
    let silent = 0;
    while (Date.now() < deadline) {
      const r = await peer.next(waitMs);
      if (!r) {
        if (++silent > retries) {
          result.error = { code: -1, message: "client gave up: no answer" };
          break;
        }
        await lastSent();
        continue;
      }
      if (r.from.address !== host) continue;
      if (tid === undefined) tid = r.from.port;
      else if (r.from.port !== tid) continue;
      const p = r.packet;
      if (p.op === "error") {
        result.error = { code: p.code, message: p.message };
        break;
      }
      if (p.op === "oack") {
        if (result.oack) continue; // a retransmitted OACK: our ACK 0 will be re-sent on silence
        silent = 0;
        result.oack = new Map([...p.options].map(([k, o]) => [k, o.value]));
        blksize = Number(result.oack.get("blksize") ?? 512);
        windowsize = Number(result.oack.get("windowsize") ?? 1);
        if (req.abortAfterOack) {
          await peer.send(encodeError(req.abortAfterOack.code, req.abortAfterOack.message), tid, host);
          aborted = true;
          break;
        }
        await ack(0);
        continue;
      }
      if (p.op !== "data") continue;
      // Map the 16-bit wire number to the absolute block nearest to the one we expect.
      const abs = expected + ((((p.block - expected) & 0xffff) ^ 0x8000) - 0x8000);
      const copy = (dataCopies.get(abs) ?? 0) + 1;
      dataCopies.set(abs, copy);
      if (req.dropData?.(abs, copy)) continue;
      silent = 0;
      if (abs !== expected) {
        // Retransmission or a gap: tell the server the last block we hold in order (RFC 7440).
        result.duplicates++;
        inWindow = 0;
        await ack(expected - 1);
        continue;
      }
      hash.update(p.data);
      if (keep) chunks.push(Buffer.from(p.data));
      result.size += p.data.length;
      result.blocks++;
      result.lastBlockLength = p.data.length;
      expected++;
      inWindow++;
      if (p.data.length < blksize) {
        await ack(abs);
        result.serverTid = tid;
        result.complete = true;
        break;
      }
      if (inWindow >= windowsize) {
        inWindow = 0;
        await ack(abs);
      }
    }
    if (!result.complete && !result.error && !aborted) {
      result.error = { code: -1, message: "client deadline passed" };
    }
  } finally {
    await peer.close();
  }
  result.sha256 = hash.digest("hex");
  if (keep) result.data = Buffer.concat(chunks);
  return result;
}

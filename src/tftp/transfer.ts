/**
 * One read transfer: its own UDP socket (a fresh TID, RFC 1350), optional
 * OACK handshake (RFC 2347), windowed DATA (RFC 7440), bounded retransmission.
 */
import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { isIPv6 } from "node:net";
import type { TftpClient } from "../boot/types.js";
import type { Metrics } from "../metrics.js";
import { TftpErrorCode, decodePacket, encodeData, encodeError, encodeOack } from "./codec.js";
import type { Negotiated } from "./options.js";
import type { ByteSource } from "./source.js";

export type TransferOutcome = "ok" | "error" | "timeout" | "aborted";

export interface TransferResult {
  outcome: TransferOutcome;
  /** File bytes sent at least once. */
  bytes: number;
  /** Human detail for non-ok outcomes (client's error message, read failure). */
  detail?: string;
  /** Error code the client sent, when it ended the transfer. */
  clientErrorCode?: number;
  /** The client ended it while our OACK was still unanswered: the tsize-probe pattern. */
  duringOack?: boolean;
}

export interface TransferParams {
  /** A bound socket; the transfer owns it from now on and closes it. */
  socket: Socket;
  client: TftpClient;
  /** Owned too: closed when the transfer ends. */
  source: ByteSource;
  negotiated: Negotiated;
  /** Retransmission timeout; the client's negotiated `timeout` overrides it. */
  timeoutMs: number;
  /** Retransmissions of one window (or OACK) before giving up. */
  retries: number;
  metrics: Metrics;
}

/** Ceiling on how long a final ERROR may take to leave before the socket is closed anyway. */
const FINAL_SEND_GRACE_MS = 1000;
/** The longest wait between retransmissions, in timeouts. */
const MAX_BACKOFF = 8;

export async function bindTransferSocket(address: string): Promise<Socket> {
  const socket = createSocket(isIPv6(address) ? "udp6" : "udp4");
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    socket.once("error", onError);
    socket.bind({ port: 0, address }, () => {
      socket.off("error", onError);
      resolve();
    });
  }).catch((err: unknown) => {
    socket.close();
    throw err;
  });
  return socket;
}

export class Transfer {
  readonly done: Promise<TransferResult>;
  private resolveDone!: (r: TransferResult) => void;

  private readonly socket: Socket;
  private readonly client: TftpClient;
  private readonly source: ByteSource;
  private readonly blksize: number;
  private readonly windowsize: number;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly metrics: Metrics;
  private readonly oack: Buffer | undefined;
  /** Every transfer ends with a block shorter than blksize, 0 bytes when the size is an exact multiple. */
  private readonly totalBlocks: number;

  private state: "idle" | "oack" | "data" | "done" = "idle";
  /** Absolute block numbers (not wrapped at 65535); the wire carries them mod 65536. */
  private acked = 0;
  private sentUpTo = 0;
  private highestEver = 0;
  private bytesSent = 0;
  /** Timeouts since the last progress. */
  private attempts = 0;
  private timerDelay = 0;
  /** Bumped whenever a window send is superseded, so a stale read is not sent. */
  private generation = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(p: TransferParams) {
    this.socket = p.socket;
    this.client = p.client;
    this.source = p.source;
    this.blksize = p.negotiated.blksize;
    this.windowsize = p.negotiated.windowsize;
    this.timeoutMs = p.negotiated.timeoutMs ?? p.timeoutMs;
    this.retries = p.retries;
    this.metrics = p.metrics;
    this.oack = p.negotiated.oack.length > 0 ? encodeOack(p.negotiated.oack) : undefined;
    this.totalBlocks = Math.floor(p.source.size / this.blksize) + 1;
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  get port(): number {
    return this.socket.address().port;
  }

  start(): void {
    if (this.state !== "idle") return;
    this.socket.on("message", (msg, rinfo) => this.onMessage(msg, rinfo));
    this.socket.on("error", (err) => this.finish("error", { detail: `socket error: ${err.message}` }));
    if (this.oack) {
      this.state = "oack";
      this.sendOack();
    } else {
      this.state = "data";
      void this.sendWindow();
    }
  }

  /** End now (server stopping): tell the client, free everything. */
  abort(message: string): void {
    this.finish("aborted", { detail: message, error: [TftpErrorCode.NOT_DEFINED, message] });
  }

  private onMessage(msg: Buffer, rinfo: RemoteInfo): void {
    if (this.state === "done" || this.state === "idle") return;
    if (rinfo.address !== this.client.address || rinfo.port !== this.client.port) {
      // RFC 1350: tell the stranger, leave the transfer alone.
      this.sendTo(encodeError(TftpErrorCode.UNKNOWN_TID, "unknown transfer ID"), rinfo.port, rinfo.address);
      return;
    }
    let packet;
    try {
      packet = decodePacket(msg);
    } catch {
      this.metrics.malformedPackets.inc({ protocol: "tftp" });
      return;
    }
    if (packet.op === "error") {
      this.finish("aborted", {
        detail: `client error ${packet.code}: ${packet.message}`,
        clientErrorCode: packet.code,
        duringOack: this.state === "oack",
      });
    } else if (packet.op === "ack") {
      this.onAck(packet.block);
    }
    // Anything else from the client (a repeated RRQ, DATA) has no meaning mid-transfer: ignored.
  }

  private onAck(wire: number): void {
    if (this.state === "oack") {
      if (wire !== 0) return;
      this.state = "data";
      this.attempts = 0;
      void this.sendWindow();
      return;
    }
    // The only blocks the client can acknowledge are the ones sent; map the
    // 16-bit number to the one among the last 65536 sent.
    const block = this.sentUpTo - ((this.sentUpTo - wire) & 0xffff);
    // Duplicate or stale ACK: ignored, or every duplicate would double the
    // traffic from then on (the sorcerer's apprentice, RFC 1123 4.2.3.1).
    if (block <= this.acked) return;
    this.acked = block;
    this.attempts = 0;
    if (block >= this.totalBlocks) {
      this.finish("ok");
      return;
    }
    // A full window acknowledged: next window. An ACK inside the window
    // (RFC 7440): the client lost what followed it; go on from there.
    void this.sendWindow();
  }

  private sendOack(): void {
    this.armTimer();
    if (this.oack) this.sendTo(this.oack, this.client.port, this.client.address);
  }

  /**
   * The client sent its RRQ again: our OACK was lost. The OACK is resent
   * only then, never on our own timer — some clients (atftp) abort on an
   * OACK they did not ask for.
   */
  resendOack(): void {
    if (this.state === "oack") this.sendOack();
  }

  private async sendWindow(): Promise<void> {
    const generation = ++this.generation;
    // Armed before the read so a read that never returns still ends in a timeout.
    this.armTimer();
    const first = this.acked + 1;
    const last = Math.min(this.acked + this.windowsize, this.totalBlocks);
    const start = (first - 1) * this.blksize;
    const end = Math.min(last * this.blksize, this.source.size);
    let bytes: Buffer;
    try {
      bytes = await this.source.read(start, end - start);
    } catch (err) {
      if (generation !== this.generation) return;
      this.finish("error", {
        detail: `read failed: ${(err as Error).message}`,
        error: [TftpErrorCode.NOT_DEFINED, "read error"],
      });
      return;
    }
    if (generation !== this.generation || this.state !== "data") return;
    for (let block = first; block <= last; block++) {
      const offset = (block - first) * this.blksize;
      const chunk = bytes.subarray(offset, Math.min(offset + this.blksize, bytes.length));
      this.sendTo(encodeData(block & 0xffff, chunk), this.client.port, this.client.address);
      if (block > this.highestEver) {
        this.highestEver = block;
        this.bytesSent += chunk.length;
        this.metrics.tftpBytes.inc(chunk.length);
      } else {
        this.metrics.tftpRetransmits.inc();
      }
    }
    this.sentUpTo = last;
    this.armTimer();
  }

  private onTimeout(): void {
    this.timer = undefined;
    if (this.state !== "oack" && this.state !== "data") return;
    this.attempts++;
    if (this.attempts > this.retries) {
      this.finish("timeout", {
        detail: `no ACK after ${this.retries} retransmissions`,
        error: [TftpErrorCode.NOT_DEFINED, "timeout"],
      });
      return;
    }
    // Waiting for ACK 0: the client repeats its RRQ if the OACK was lost (see resendOack).
    if (this.state === "oack") this.armTimer();
    else void this.sendWindow();
  }

  /**
   * Exponential backoff (RFC 1123 4.2.3.2), capped at 8× the timeout: a
   * client whose own timer restarts on every packet only goes quiet, and
   * re-ACKs, when we slow down.
   */
  private armTimer(): void {
    const delay = Math.min(this.timeoutMs * 2 ** this.attempts, this.timeoutMs * MAX_BACKOFF);
    // refresh() re-arms the same timer (no allocation per window) when the delay is unchanged.
    if (this.timer && delay === this.timerDelay) {
      this.timer.refresh();
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timerDelay = delay;
    this.timer = setTimeout(() => this.onTimeout(), delay);
  }

  private sendTo(buf: Buffer, port: number, address: string): void {
    try {
      this.socket.send(buf, port, address);
    } catch {
      // The socket is closing; the transfer is ending anyway.
    }
  }

  private finish(
    outcome: TransferOutcome,
    extra: { detail?: string; error?: [number, string]; clientErrorCode?: number; duringOack?: boolean } = {},
  ): void {
    if (this.state === "done") return;
    this.state = "done";
    this.generation++;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const result: TransferResult = { outcome, bytes: outcome === "ok" ? this.source.size : this.bytesSent };
    if (extra.detail !== undefined) result.detail = extra.detail;
    if (extra.clientErrorCode !== undefined) result.clientErrorCode = extra.clientErrorCode;
    if (extra.duringOack !== undefined) result.duringOack = extra.duringOack;
    void this.release(extra.error).then(() => this.resolveDone(result));
  }

  private async release(error: [number, string] | undefined): Promise<void> {
    if (error) await this.sendFinal(encodeError(error[0], error[1]));
    await new Promise<void>((resolve) => {
      try {
        this.socket.close(() => resolve());
      } catch {
        resolve(); // already closed
      }
    });
    await this.source.close().catch(() => {});
  }

  /** Waits for the datagram to leave: closing right after send() can cancel it. */
  private sendFinal(buf: Buffer): Promise<void> {
    return new Promise((resolve) => {
      const grace = setTimeout(resolve, FINAL_SEND_GRACE_MS);
      try {
        this.socket.send(buf, this.client.port, this.client.address, () => {
          clearTimeout(grace);
          resolve();
        });
      } catch {
        clearTimeout(grace);
        resolve();
      }
    });
  }
}

/**
 * The TFTP listener: decodes requests, applies the traversal guard, asks the
 * resolver what to serve, and hands each read to its own Transfer. It never
 * decides what a machine boots and never walks paths itself.
 */
import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { isIPv6 } from "node:net";
import type { TftpClient, TftpResolution, TftpResolver } from "../boot/types.js";
import type { Logger } from "../log.js";
import type { Metrics } from "../metrics.js";
import { PortBindError } from "../net/errors.js";
import { TftpDecodeError, TftpErrorCode, decodePacket, encodeError, type TftpPacket } from "./codec.js";
import { checkRequestName } from "./names.js";
import { MAX_BLKSIZE, MAX_WINDOWSIZE, MIN_BLKSIZE, negotiate } from "./options.js";
import { NotRegularFileError, openSource, type ByteSource } from "./source.js";
import { Transfer, bindTransferSocket, type TransferResult } from "./transfer.js";

export interface TftpServerOptions {
  port: number;
  /** Listen address, default 0.0.0.0. Transfers bind their sockets to it too. */
  address?: string;
  resolver: TftpResolver;
  log: Logger;
  metrics: Metrics;
  /** Concurrent transfers; requests beyond it are refused. Default 256. */
  maxTransfers?: number;
  /** Retransmission timeout unless the client negotiates one. Default 1000 ms. */
  timeoutMs?: number;
  /** Retransmissions before a transfer gives up. Default 5. */
  retries?: number;
  /** Default 65464 (the RFC 2348 maximum). */
  maxBlksize?: number;
  /**
   * Default 64. Memory held per transfer is at most one window:
   * maxBlksize × maxWindowsize bytes while it is being sent.
   */
  maxWindowsize?: number;
}

type RequestPacket = Extract<TftpPacket, { op: "rrq" | "wrq" }>;
type ServedResult = TransferResult & { blksize: number; windowsize: number };

export class TftpServer {
  private readonly port: number;
  private readonly address: string;
  private readonly resolver: TftpResolver;
  private readonly log: Logger;
  private readonly metrics: Metrics;
  private readonly maxTransfers: number;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly limits: { maxBlksize: number; maxWindowsize: number };

  private socket: Socket | undefined;
  private boundPort = 0;
  private state: "new" | "starting" | "running" | "stopped" = "new";
  /** Requests admitted: being resolved/opened, or transferring. Bounded by maxTransfers. */
  private slots = 0;
  private readonly transfers = new Set<Transfer>();
  /** Requests in progress by client address:port (undefined while the file is being opened). */
  private readonly byClient = new Map<string, Transfer | undefined>();
  /** Request handlers in flight, so stop() can wait for them to notice. */
  private readonly pending = new Set<Promise<void>>();
  private stopping: Promise<void> | undefined;

  constructor(opts: TftpServerOptions) {
    this.port = opts.port;
    this.address = opts.address ?? "0.0.0.0";
    this.resolver = opts.resolver;
    this.log = opts.log.child({ component: "tftp" });
    this.metrics = opts.metrics;
    this.maxTransfers = checkInt("maxTransfers", opts.maxTransfers ?? 256, 1, 1_000_000);
    this.timeoutMs = checkInt("timeoutMs", opts.timeoutMs ?? 1000, 1, 255_000);
    this.retries = checkInt("retries", opts.retries ?? 5, 0, 100);
    this.limits = {
      maxBlksize: checkInt("maxBlksize", opts.maxBlksize ?? MAX_BLKSIZE, MIN_BLKSIZE, MAX_BLKSIZE),
      maxWindowsize: checkInt("maxWindowsize", opts.maxWindowsize ?? 64, 1, MAX_WINDOWSIZE),
    };
    checkInt("port", this.port, 0, 65535);
  }

  /** Requests admitted and not yet finished (including ones still being resolved). */
  get activeTransfers(): number {
    return this.slots;
  }

  /** The bound port: differs from the configured one when that was 0. */
  get listeningPort(): number {
    return this.boundPort;
  }

  async start(): Promise<void> {
    if (this.state !== "new") throw new Error(`TftpServer.start() called twice (state ${this.state})`);
    this.state = "starting";
    const socket = createSocket(isIPv6(this.address) ? "udp6" : "udp4");
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once("error", reject);
        socket.bind({ port: this.port, address: this.address }, () => {
          socket.off("error", reject);
          resolve();
        });
      });
    } catch (err) {
      socket.close();
      this.state = "stopped";
      throw PortBindError.from(err, "udp", this.port, this.address, "tftp.port");
    }
    this.socket = socket;
    this.boundPort = socket.address().port;
    socket.on("message", (msg, rinfo) => this.onMessage(msg, rinfo));
    socket.on("error", (err) => {
      this.metrics.errors.inc({ component: "tftp" });
      this.log.error({ err }, "tftp listening socket error");
    });
    this.state = "running";
    this.log.info({ address: this.address, port: this.boundPort }, "tftp server listening");
  }

  /** Closes the listener, cuts every transfer (the client gets ERROR 0), waits until all is freed. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    this.state = "stopped";
    const socket = this.socket;
    this.socket = undefined;
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
    // Handlers still resolving see state "stopped" and release their slot themselves.
    for (const t of this.transfers) t.abort("server shutting down");
    await Promise.all([...this.pending]);
  }

  private onMessage(msg: Buffer, rinfo: RemoteInfo): void {
    let packet: TftpPacket;
    try {
      packet = decodePacket(msg);
    } catch (err) {
      // Anything the decoder throws is a bad packet; nothing may escape into the socket's event.
      this.metrics.malformedPackets.inc({ protocol: "tftp" });
      const reason = err instanceof TftpDecodeError ? err.message : String(err);
      this.log.debug({ client: `${rinfo.address}:${rinfo.port}`, reason }, "malformed tftp packet dropped");
      return;
    }
    const client: TftpClient = { address: rinfo.address, port: rinfo.port };
    if (packet.op === "wrq") {
      this.refuse(client, packet.filename, TftpErrorCode.ACCESS_VIOLATION, "read-only server");
      return;
    }
    if (packet.op !== "rrq") {
      // DATA/ACK/ERROR belong on a transfer's port: a late packet of a finished transfer.
      this.log.debug({ client: `${client.address}:${client.port}`, op: packet.op }, "stray tftp packet on the listening port ignored");
      return;
    }
    // A repeated RRQ from the same client port is its retry, not a new
    // transfer: it lost our OACK (or we are still opening the file).
    const key = `${client.address}:${client.port}`;
    if (this.byClient.has(key)) {
      this.byClient.get(key)?.resendOack();
      return;
    }
    this.byClient.set(key, undefined);
    const handling = this.handleRead(packet, client).catch((err: unknown) => {
      // Last line of defence: a handler must never throw into the socket's event loop.
      this.metrics.errors.inc({ component: "tftp" });
      this.log.error({ err, client: `${client.address}:${client.port}` }, "tftp request handler failed");
    });
    this.pending.add(handling);
    void handling.finally(() => {
      this.pending.delete(handling);
      this.byClient.delete(key);
    });
  }

  private async handleRead(req: RequestPacket, client: TftpClient): Promise<void> {
    if (req.mode === "mail") return this.refuse(client, req.filename, TftpErrorCode.ILLEGAL_OPERATION, "mail mode not supported");
    // netascii is served byte for byte: converting line ends would change the
    // size announced in tsize and break random access, and no boot client
    // asks for it; Unix text reads back unchanged through a netascii client.
    if (req.mode !== "octet" && req.mode !== "netascii") {
      return this.refuse(client, req.filename, TftpErrorCode.ILLEGAL_OPERATION, `unknown mode ${req.mode}`);
    }
    const checked = checkRequestName(req.filename);
    if (!checked.ok) {
      return this.refuse(client, req.filename, TftpErrorCode.ACCESS_VIOLATION, "access violation", checked.reason);
    }
    const name = checked.name;
    if (this.slots >= this.maxTransfers) {
      // Code 0 with a plain message: code 3 ("disk full or allocation exceeded") reads as a storage problem.
      return this.refuse(client, name, TftpErrorCode.NOT_DEFINED, "server busy, try again later", `${this.maxTransfers} transfers active`);
    }
    this.slots++;
    this.metrics.tftpActive.inc();
    let result: ServedResult | undefined;
    try {
      result = await this.serve(name, client, req);
    } finally {
      this.slots--;
      this.metrics.tftpActive.dec();
    }
    if (result) this.finished(name, client, result);
  }

  /** Resolves, opens and runs one transfer; undefined when the request was refused instead. */
  private async serve(name: string, client: TftpClient, req: RequestPacket): Promise<ServedResult | undefined> {
    let resolution: TftpResolution;
    try {
      resolution = await this.resolver.resolve(name, client);
    } catch (err) {
      this.metrics.errors.inc({ component: "tftp" });
      this.log.error({ err, name }, "tftp resolver failed");
      this.refuse(client, name, TftpErrorCode.NOT_DEFINED, "internal error");
      return undefined;
    }
    if (!resolution.ok) {
      this.refuse(client, name, resolution.code, resolution.message);
      return undefined;
    }
    if (this.state !== "running") return undefined;

    let source: ByteSource;
    try {
      source = await openSource(resolution.source);
    } catch (err) {
      const [code, message] = openErrorToTftp(err);
      this.refuse(client, name, code, message, (err as Error).message);
      return undefined;
    }
    let socket: Socket;
    try {
      socket = await bindTransferSocket(this.address);
    } catch (err) {
      await source.close().catch(() => {});
      this.metrics.errors.inc({ component: "tftp" });
      this.log.error({ err, name }, "cannot open a tftp transfer socket");
      this.refuse(client, name, TftpErrorCode.NOT_DEFINED, "internal error");
      return undefined;
    }
    if (this.state !== "running") {
      socket.close();
      await source.close().catch(() => {});
      return undefined;
    }

    const negotiated = negotiate(req.options, source.size, this.limits);
    const transfer = new Transfer({
      socket,
      client,
      source,
      negotiated,
      timeoutMs: this.timeoutMs,
      retries: this.retries,
      metrics: this.metrics,
    });
    this.transfers.add(transfer);
    this.byClient.set(`${client.address}:${client.port}`, transfer);
    this.log.debug(
      {
        name,
        client: `${client.address}:${client.port}`,
        tid: transfer.port,
        size: source.size,
        blksize: negotiated.blksize,
        windowsize: negotiated.windowsize,
        oack: negotiated.oack.map((o) => `${o.name}=${o.value}`).join(" ") || undefined,
      },
      "tftp transfer started",
    );
    transfer.start();
    try {
      const result = await transfer.done;
      return { ...result, blksize: negotiated.blksize, windowsize: negotiated.windowsize };
    } finally {
      this.transfers.delete(transfer);
    }
  }

  private finished(name: string, client: TftpClient, r: ServedResult): void {
    this.metrics.tftpTransfers.inc({ outcome: r.outcome });
    const fields = { name, client: `${client.address}:${client.port}`, outcome: r.outcome, bytes: r.bytes, detail: r.detail };
    // A client abandoning a transfer after reading the OACK is the normal tsize probe, not trouble.
    if (r.outcome === "ok" || (r.outcome === "aborted" && (r.duringOack || r.clientErrorCode === undefined))) {
      this.log.debug(fields, "tftp transfer ended");
    } else {
      this.log.info(fields, "tftp transfer failed");
    }
    if (r.outcome !== "ok" || !this.resolver.completed) return;
    try {
      this.resolver.completed({ name, client, bytes: r.bytes, blksize: r.blksize, windowsize: r.windowsize });
    } catch (err) {
      this.log.error({ err, name }, "tftp completion callback failed");
    }
  }

  /** Answers a request with an ERROR from the listening port and counts it; there is no transfer to tear down. */
  private refuse(client: TftpClient, name: string, code: number, message: string, reason?: string): void {
    this.metrics.tftpTransfers.inc({ outcome: "error" });
    this.log.info({ name, client: `${client.address}:${client.port}`, code, message, reason }, "tftp request refused");
    const socket = this.socket;
    if (!socket) return;
    try {
      socket.send(encodeError(code, message), client.port, client.address);
    } catch {
      // Listener closing: nobody to answer for.
    }
  }
}

function openErrorToTftp(err: unknown): [number, string] {
  if (err instanceof NotRegularFileError) return [TftpErrorCode.FILE_NOT_FOUND, "file not found"];
  switch ((err as NodeJS.ErrnoException | undefined)?.code) {
    case "ENOENT":
    case "ENOTDIR":
    case "ELOOP":
      return [TftpErrorCode.FILE_NOT_FOUND, "file not found"];
    case "EACCES":
    case "EPERM":
      return [TftpErrorCode.ACCESS_VIOLATION, "access violation"];
    default:
      return [TftpErrorCode.NOT_DEFINED, "cannot open file"];
  }
}

function checkInt(key: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`TftpServer option ${key} must be an integer in ${min}..${max}, got ${value}`);
  }
  return value;
}

/**
 * ProxyDHCP sockets: 67 (broadcast DISCOVERs) and 4011 (PXE boot server
 * REQUESTs). Thin by design: decode, ask the booter, encode, send. What to
 * boot is decided elsewhere; what a reply looks like is in proxy.ts.
 */
import type dgram from "node:dgram";
import type { AddressInfo } from "node:net";
import type { DhcpBooter } from "../boot/types.js";
import type { Logger } from "../log.js";
import type { Metrics } from "../metrics.js";
import { openUdp } from "../net/udp.js";
import { MessageType, decodeDhcp, encodeDhcp, msgType, type DhcpPacket } from "./codec.js";
import { buildProxyReply, inspectRequest, replyDestination } from "./proxy.js";

export interface DhcpServerOptions {
  /** server.address: what clients are told (option 54, siaddr) and where 4011 listens. */
  address: string;
  /** server.interface: when set, both sockets hear and send on this interface only. */
  interface?: string;
  port: number;
  pxePort: number;
  booter: DhcpBooter;
  log: Logger;
  metrics: Metrics;
}

export class DhcpServer {
  private dhcpSocket: dgram.Socket | undefined;
  private pxeSocket: dgram.Socket | undefined;
  private stopping: Promise<void> | undefined;
  /** Metrics labels: the ports actually bound (differs from the options only when they ask for 0). */
  private portLabel = { dhcp: "", pxe: "" };

  constructor(private readonly opts: DhcpServerOptions) {}

  async start(): Promise<void> {
    if (this.dhcpSocket) throw new Error("DHCP server already started");
    const { address, port, pxePort, log } = this.opts;
    const device = this.opts.interface;
    // Port 67 must be the wildcard address: Linux delivers 255.255.255.255
    // broadcasts only to sockets bound to 0.0.0.0, never to one bound to a
    // unicast address.
    const dhcp = await openUdp({ address: "0.0.0.0", port, device, broadcast: true, configKey: "dhcp.port" });
    let pxe: dgram.Socket;
    try {
      // 4011 is unicast to the address we advertised in option 54. Binding that
      // address makes the kernel answer from it too: bound to 0.0.0.0, a host
      // with several addresses may answer from another one than the client
      // asked. It also fails early (EADDRNOTAVAIL) when server.address is not
      // on this host. Broadcast stays on for the rare request sent from 0.0.0.0.
      pxe = await openUdp({ address, port: pxePort, device, broadcast: true, configKey: "dhcp.pxePort" });
    } catch (err) {
      await closeSocket(dhcp);
      throw err;
    }
    this.dhcpSocket = dhcp;
    this.pxeSocket = pxe;
    this.portLabel = { dhcp: String(dhcp.address().port), pxe: String(pxe.address().port) };
    this.stopping = undefined;
    dhcp.on("message", (msg, rinfo) => this.handle(dhcp, msg, rinfo, false));
    pxe.on("message", (msg, rinfo) => this.handle(pxe, msg, rinfo, true));
    for (const s of [dhcp, pxe]) s.on("error", (err) => log.error({ err }, "DHCP socket error"));
    log.info({ address, interface: device ?? "(all)", port, pxePort }, "ProxyDHCP listening");
  }

  /** Bound addresses, for tests that let the kernel pick ports. */
  addresses(): { dhcp: AddressInfo; pxe: AddressInfo } {
    if (!this.dhcpSocket || !this.pxeSocket) throw new Error("DHCP server is not running");
    return { dhcp: this.dhcpSocket.address(), pxe: this.pxeSocket.address() };
  }

  stop(): Promise<void> {
    if (!this.stopping) {
      const sockets = [this.dhcpSocket, this.pxeSocket].filter((s): s is dgram.Socket => s !== undefined);
      this.dhcpSocket = this.pxeSocket = undefined;
      this.stopping = Promise.all(sockets.map(closeSocket)).then(() => undefined);
    }
    return this.stopping;
  }

  private handle(socket: dgram.Socket, msg: Buffer, rinfo: dgram.RemoteInfo, pxePort: boolean): void {
    try {
      this.answer(socket, msg, rinfo, pxePort);
    } catch (err) {
      // A bug here must cost one packet, never the daemon.
      this.opts.metrics.errors.inc({ component: "dhcp" });
      this.opts.log.error({ err, from: `${rinfo.address}:${rinfo.port}` }, "DHCP request handling failed");
    }
  }

  private answer(socket: dgram.Socket, msg: Buffer, rinfo: dgram.RemoteInfo, pxePort: boolean): void {
    const { metrics, log, booter } = this.opts;
    const from = `${rinfo.address}:${rinfo.port}`;
    let request: DhcpPacket;
    try {
      request = decodeDhcp(msg);
    } catch (err) {
      metrics.malformedPackets.inc({ protocol: "dhcp" });
      log.debug({ from, bytes: msg.length, reason: (err as Error).message }, "malformed DHCP packet dropped");
      return;
    }
    metrics.dhcpPackets.inc({ port: pxePort ? this.portLabel.pxe : this.portLabel.dhcp, kind: kindLabel(request) });

    const verdict = inspectRequest(request, pxePort);
    if (!verdict.ok) {
      // Most traffic on 67 is ordinary DHCP for the site server: no log line per packet.
      metrics.dhcpIgnored.inc({ reason: verdict.reason });
      return;
    }
    const { facts } = verdict;
    const answer = booter.answerDhcp(facts);
    if (answer.kind === "ignore") {
      metrics.dhcpIgnored.inc({ reason: answer.reason });
      log.debug({ mac: facts.mac, arch: facts.arch, reason: answer.reason }, answer.detail);
      return;
    }
    const reply = buildProxyReply(request, answer, this.opts.address);
    const bytes = encodeDhcp(reply);
    const to = replyDestination(request, pxePort, rinfo);
    const type = msgType(reply) === MessageType.OFFER ? "offer" : "ack";
    socket.send(bytes, to.port, to.address, (err) => {
      if (err) {
        metrics.errors.inc({ component: "dhcp" });
        log.warn({ err, mac: facts.mac, to: `${to.address}:${to.port}` }, "ProxyDHCP reply could not be sent");
        return;
      }
      metrics.dhcpReplies.inc({ type, firmware: answer.firmware });
      log.info(
        { mac: facts.mac, xid: request.xid.toString(16), arch: facts.arch, firmware: answer.firmware, bootFile: answer.bootFile, from, to: `${to.address}:${to.port}` },
        `ProxyDHCP ${type} sent`,
      );
    });
  }
}

function kindLabel(p: DhcpPacket): string {
  switch (msgType(p)) {
    case MessageType.DISCOVER:
      return "discover";
    case MessageType.REQUEST:
      return "request";
    case MessageType.INFORM:
      return "inform";
    default:
      return "other";
  }
}

function closeSocket(socket: dgram.Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      socket.close(() => resolve());
    } catch {
      // Already closed (ERR_SOCKET_DGRAM_NOT_RUNNING): nothing left to release.
      resolve();
    }
  });
}

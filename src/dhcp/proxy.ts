/**
 * ProxyDHCP rules (DESIGN §3): which requests we answer, what we tell the boot
 * decision about them, and the exact reply. Pure: packets in, packets out.
 */
import type { DhcpAnswer, FirmwareFacts } from "../boot/types.js";
import { macFromBytes } from "../boot/mac.js";
import {
  BOOTREPLY,
  BOOTREQUEST,
  FILE_LEN,
  MessageType,
  Opt,
  clientArch,
  clientUuid,
  fitsFixedField,
  ipToBytes,
  isZeroIp,
  msgType,
  userClasses,
  vendorClass,
  type DhcpPacket,
} from "./codec.js";

export type DhcpOffer = Extract<DhcpAnswer, { kind: "offer" }>;

export const DHCP_SERVER_PORT = 67;
export const DHCP_CLIENT_PORT = 68;
const LIMITED_BROADCAST = "255.255.255.255";
/** PXE spec 2.1 option 43 sub-option 6: bit 3 = boot from `file` in this reply, skip boot server discovery. */
const PXE_DISCOVERY_CONTROL = 6;
const DISCOVERY_USE_BOOTFILE = 0x08;

export type RequestVerdict =
  | { ok: true; facts: FirmwareFacts }
  /** `reason` is a metrics label. */
  | { ok: false; reason: "not-request" | "unsupported-message" | "not-pxe" | "no-mac" };

/**
 * Classifies a decoded packet. Port 67 answers only DISCOVER: a REQUEST there
 * belongs to the site DHCP server's lease exchange, and an ACK from us would
 * be a second, addressless ACK in it (dnsmasq stays silent there too, as the
 * captures show). Port 4011 answers only REQUEST (PXE boot server
 * discovery / BINL); INFORM there is only used with boot menus we never send.
 */
export function inspectRequest(packet: DhcpPacket, pxePort: boolean): RequestVerdict {
  if (packet.op !== BOOTREQUEST) return { ok: false, reason: "not-request" };
  const type = msgType(packet);
  const wanted = pxePort ? MessageType.REQUEST : MessageType.DISCOVER;
  const vendor = vendorClass(packet);
  const httpClient = vendor?.startsWith("HTTPClient") ?? false;
  if (!httpClient && !(vendor?.startsWith("PXEClient") ?? false)) return { ok: false, reason: "not-pxe" };
  if (type !== wanted) return { ok: false, reason: "unsupported-message" };
  // Machines are keyed by Ethernet MAC; other link types cannot be matched to a machine record.
  if (packet.hlen !== 6) return { ok: false, reason: "no-mac" };
  return {
    ok: true,
    facts: {
      mac: macFromBytes(packet.chaddr),
      arch: clientArch(packet) ?? archFromVendorClass(vendor!),
      httpClient,
      ipxe: userClasses(packet).includes("iPXE"),
      uuid: clientUuid(packet),
      pxePort,
      giaddr: packet.giaddr,
    },
  };
}

/** The facts the boot decision needs, or null when this packet is not a PXE/HTTP boot request we answer. */
export function readFirmwareFacts(packet: DhcpPacket, pxePort: boolean): FirmwareFacts | null {
  const verdict = inspectRequest(packet, pxePort);
  return verdict.ok ? verdict.facts : null;
}

/** `PXEClient:Arch:00007:UNDI:003000` carries the architecture in decimal; used when option 93 is missing. */
export function archFromVendorClass(vendor: string): number | undefined {
  const m = /^(?:PXEClient|HTTPClient):Arch:(\d{5})(?::|$)/.exec(vendor);
  return m ? Number.parseInt(m[1]!, 10) : undefined;
}

/**
 * The ProxyDHCP reply: boot information only, never an address. Field by
 * field as DESIGN §3 says; option order puts 53 first, as clients expect.
 * A boot file longer than the `file` field goes in option 67 only.
 */
export function buildProxyReply(request: DhcpPacket, answer: DhcpOffer, serverAddress: string): DhcpPacket {
  ipToBytes(serverAddress); // validates early: a bad server address must not reach the wire
  const type = msgType(request) === MessageType.DISCOVER ? MessageType.OFFER : MessageType.ACK;
  const bootFileBytes = Buffer.from(answer.bootFile, "utf8");
  const options = new Map<number, Buffer>();
  options.set(Opt.MESSAGE_TYPE, Buffer.from([type]));
  options.set(Opt.SERVER_ID, ipToBytes(serverAddress));
  options.set(Opt.VENDOR_CLASS, Buffer.from(answer.vendorClass, "latin1"));
  const uuid = request.options.get(Opt.CLIENT_UUID);
  if (uuid) options.set(Opt.CLIENT_UUID, Buffer.from(uuid));
  if (answer.pxeDiscoveryControl) {
    options.set(Opt.VENDOR_SPECIFIC, Buffer.from([PXE_DISCOVERY_CONTROL, 1, DISCOVERY_USE_BOOTFILE, Opt.END]));
  }
  options.set(Opt.BOOTFILE, bootFileBytes);
  return {
    op: BOOTREPLY,
    htype: request.htype,
    hlen: request.hlen,
    hops: 0,
    xid: request.xid,
    secs: 0,
    flags: request.flags,
    // RFC 2131 table 3: ciaddr is 0 in an OFFER and copied from the request in an ACK.
    ciaddr: type === MessageType.ACK ? request.ciaddr : "0.0.0.0",
    yiaddr: "0.0.0.0",
    siaddr: serverAddress,
    giaddr: request.giaddr,
    chaddr: Buffer.from(request.chaddr),
    sname: "",
    file: fitsFixedField(answer.bootFile, FILE_LEN) ? answer.bootFile : "",
    options,
  };
}

export interface Endpoint {
  address: string;
  port: number;
}

/**
 * Where a reply goes. On 67 it is broadcast (the client has no address yet,
 * and yiaddr is 0 so there is nothing to unicast to) or sent to the relay.
 * On 4011 the client already has an address and listens where it sent from.
 */
export function replyDestination(request: DhcpPacket, pxePort: boolean, remote: Endpoint): Endpoint {
  if (pxePort) {
    // A 4011 request from 0.0.0.0 has no address to return to; broadcast on the port it used.
    if (isZeroIp(remote.address)) return { address: LIMITED_BROADCAST, port: remote.port };
    return { address: remote.address, port: remote.port };
  }
  if (!isZeroIp(request.giaddr)) return { address: request.giaddr, port: DHCP_SERVER_PORT };
  return { address: LIMITED_BROADCAST, port: DHCP_CLIENT_PORT };
}

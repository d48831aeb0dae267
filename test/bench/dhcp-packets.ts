/**
 * DHCP load traffic: a firmware's captured DISCOVER, rewritten once per
 * registered MAC (test/helpers/netns.ts), then stamped with a fresh xid per
 * request; replies are matched back by xid. Bytes are edited, never
 * re-encoded by the codec under test.
 */
import { Opt } from "../../src/dhcp/codec.js";
import { captured, rawOptions, rewrite } from "../helpers/netns.js";

const XID = 4;
const CHADDR = 28;
const BOOTREPLY = 2;

/** OVMF's PXE DISCOVER (arch 7, option 60 PXEClient, not iPXE) from the reference capture. */
export function uefiDiscover(): Buffer {
  return captured("uefi-proxy.dhcp.pcap", (d, type) => type === "DISCOVER" && d.dstPort === 67 && d.payload.includes("PXEClient") && !d.payload.includes("iPXE"));
}

/** n distinct QEMU-style MACs, 52:54:00:bb:xx:xx. */
export function benchMacs(n: number): string[] {
  const hex = (b: number) => (b & 0xff).toString(16).padStart(2, "0");
  return Array.from({ length: n }, (_, i) => `52:54:00:bb:${hex(i >> 8)}:${hex(i)}`);
}

/** The template as each MAC would send it (chaddr, and option 61 when it is a type-1 client id). */
export function perMacRequests(template: Buffer, macs: string[]): Buffer[] {
  return macs.map((mac) => rewrite(template, { mac }));
}

/** A copy of the request with this xid. */
export function withXid(request: Buffer, xid: number): Buffer {
  const p = Buffer.from(request);
  p.writeUInt32BE(xid >>> 0, XID);
  return p;
}

export interface ReplyInfo {
  xid: number;
  chaddr: Buffer;
  /** Option 53, or undefined when absent. */
  type: number | undefined;
}

/** The fields a reply is matched by; undefined for anything that is not a BOOTREPLY. */
export function replyInfo(p: Buffer): ReplyInfo | undefined {
  if (p.length < 240 || p[0] !== BOOTREPLY) return undefined;
  const type = rawOptions(p).find(([code]) => code === Opt.MESSAGE_TYPE)?.[1][0];
  return { xid: p.readUInt32BE(XID), chaddr: p.subarray(CHADDR, CHADDR + 6), type };
}

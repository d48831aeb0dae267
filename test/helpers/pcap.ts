/**
 * Just enough of libpcap's classic file format to pull UDP datagrams out of
 * the reference captures: Ethernet (optionally one VLAN tag), IPv4, UDP.
 * Other frames are skipped; a damaged file throws.
 */
import { readFileSync } from "node:fs";

export interface UdpDatagram {
  /** Seconds since the first record of the file. */
  time: number;
  src: string;
  srcPort: number;
  dst: string;
  dstPort: number;
  payload: Buffer;
}

const LINKTYPE_ETHERNET = 1;
const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_VLAN = 0x8100;
const IPPROTO_UDP = 17;

export function readPcap(path: string): UdpDatagram[] {
  return parsePcap(readFileSync(path));
}

export function parsePcap(buf: Buffer): UdpDatagram[] {
  if (buf.length < 24) throw new Error("pcap: shorter than the 24-byte file header");
  const magic = buf.readUInt32LE(0);
  // Microsecond and nanosecond magics, each in either byte order.
  const formats: Record<number, { le: boolean; nano: boolean }> = {
    0xa1b2c3d4: { le: true, nano: false },
    0xd4c3b2a1: { le: false, nano: false },
    0xa1b23c4d: { le: true, nano: true },
    0x4d3cb2a1: { le: false, nano: true },
  };
  const format = formats[magic];
  if (!format) throw new Error(`pcap: unknown magic 0x${magic.toString(16)} (pcapng is not supported)`);
  const u32 = (off: number) => (format.le ? buf.readUInt32LE(off) : buf.readUInt32BE(off));
  const linktype = u32(20) & 0x0fffffff;
  if (linktype !== LINKTYPE_ETHERNET) throw new Error(`pcap: link type ${linktype} is not Ethernet`);

  const out: UdpDatagram[] = [];
  let first: number | undefined;
  let off = 24;
  while (off < buf.length) {
    if (off + 16 > buf.length) throw new Error(`pcap: truncated record header at offset ${off}`);
    const time = u32(off) + u32(off + 4) / (format.nano ? 1e9 : 1e6);
    const caplen = u32(off + 8);
    const start = off + 16;
    if (start + caplen > buf.length) throw new Error(`pcap: record at offset ${off} overruns the file`);
    first ??= time;
    const udp = udpFromEthernet(buf.subarray(start, start + caplen));
    if (udp) out.push({ time: time - first, ...udp });
    off = start + caplen;
  }
  return out;
}

function udpFromEthernet(frame: Buffer): Omit<UdpDatagram, "time"> | undefined {
  let l3 = 14;
  if (frame.length < l3) return undefined;
  let ethertype = frame.readUInt16BE(12);
  if (ethertype === ETHERTYPE_VLAN) {
    if (frame.length < 18) return undefined;
    ethertype = frame.readUInt16BE(16);
    l3 = 18;
  }
  if (ethertype !== ETHERTYPE_IPV4 || frame.length < l3 + 20) return undefined;
  const ihl = (frame[l3]! & 0x0f) * 4;
  if (frame[l3 + 9] !== IPPROTO_UDP) return undefined;
  const fragment = frame.readUInt16BE(l3 + 6) & 0x3fff;
  if (fragment !== 0) return undefined; // fragments are not reassembled
  const l4 = l3 + ihl;
  if (frame.length < l4 + 8) return undefined;
  const udpLen = frame.readUInt16BE(l4 + 4);
  const end = Math.min(frame.length, l4 + udpLen);
  const ip = (o: number) => `${frame[o]}.${frame[o + 1]}.${frame[o + 2]}.${frame[o + 3]}`;
  return {
    src: ip(l3 + 12),
    dst: ip(l3 + 16),
    srcPort: frame.readUInt16BE(l4),
    dstPort: frame.readUInt16BE(l4 + 2),
    payload: Buffer.from(frame.subarray(l4 + 8, end)),
  };
}

/**
 * The `.txt` listings beside the reference captures were decoded by another
 * tool; parsed here they are an independent oracle for our own decoder.
 */
export interface ListedPacket {
  src: string;
  srcPort: number;
  dst: string;
  dstPort: number;
  op: "BOOTREQUEST" | "BOOTREPLY";
  type: string;
  xid: number;
  chaddr: string;
  yiaddr?: string;
  siaddr?: string;
  file?: string;
  options: ListedOption[];
}

export interface ListedOption {
  code: number;
  /** Everything after the code, as printed. */
  text: string;
  /** Raw value bytes when the listing shows them (`hex …`, `(hex …)`, `raw=…`). */
  hex?: string;
}

const PACKET_LINE =
  /^\+[\d.]+s (\d+\.\d+\.\d+\.\d+):(\d+) -> (\d+\.\d+\.\d+\.\d+):(\d+) (BOOTREQUEST|BOOTREPLY) (\S+) xid=([0-9a-f]{8}) chaddr=(\S+)(.*)$/;
const OPTION_LINE = /^\s+opt\s+(\d+) (.*)$/;

export function readCaptureListing(path: string): ListedPacket[] {
  const out: ListedPacket[] = [];
  for (const line of readFileSync(path, "utf8").split("\n")) {
    if (line.trim() === "") continue;
    const p = PACKET_LINE.exec(line);
    if (p) {
      const rest = p[9]!;
      out.push({
        src: p[1]!,
        srcPort: Number(p[2]),
        dst: p[3]!,
        dstPort: Number(p[4]),
        op: p[5] as ListedPacket["op"],
        type: p[6]!,
        xid: Number.parseInt(p[7]!, 16),
        chaddr: p[8]!,
        yiaddr: /yiaddr=(\S+)/.exec(rest)?.[1],
        siaddr: /siaddr=(\S+)/.exec(rest)?.[1],
        file: /file='([^']*)'/.exec(rest)?.[1],
        options: [],
      });
      continue;
    }
    const o = OPTION_LINE.exec(line);
    const current = out.at(-1);
    if (!o || !current) throw new Error(`${path}: unrecognised line ${JSON.stringify(line)}`);
    const text = o[2]!;
    const hex = /\(hex ([0-9a-f]+)\)/.exec(text)?.[1] ?? /\shex ([0-9a-f]+)/.exec(text)?.[1];
    const uuid = /type=(\d+) raw=([0-9a-f]+)/.exec(text);
    current.options.push({
      code: Number(o[1]),
      text,
      hex: hex ?? (uuid ? Number(uuid[1]).toString(16).padStart(2, "0") + uuid[2] : undefined),
    });
  }
  return out;
}

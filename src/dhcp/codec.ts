/**
 * DHCPv4 wire format (RFC 2131/2132, RFC 3396 long options): pure Buffer ⇄
 * packet, no sockets. Options are kept as raw bytes in wire order; typed
 * helpers below read the few the ProxyDHCP server needs.
 */

export const BOOTREQUEST = 1;
export const BOOTREPLY = 2;

export const MessageType = {
  DISCOVER: 1,
  OFFER: 2,
  REQUEST: 3,
  DECLINE: 4,
  ACK: 5,
  NAK: 6,
  RELEASE: 7,
  INFORM: 8,
} as const;

export const Opt = {
  PAD: 0,
  SUBNET_MASK: 1,
  ROUTER: 3,
  DNS: 6,
  VENDOR_SPECIFIC: 43,
  LEASE_TIME: 51,
  OVERLOAD: 52,
  MESSAGE_TYPE: 53,
  SERVER_ID: 54,
  PARAM_REQUEST_LIST: 55,
  VENDOR_CLASS: 60,
  CLIENT_ID: 61,
  TFTP_SERVER: 66,
  BOOTFILE: 67,
  USER_CLASS: 77,
  CLIENT_ARCH: 93,
  CLIENT_NDI: 94,
  CLIENT_UUID: 97,
  END: 255,
} as const;

/** Fixed BOOTP header (236 bytes) followed by the 4-byte magic cookie. */
const HEADER_LEN = 236;
const COOKIE = 0x63825363;
const OPTIONS_START = HEADER_LEN + 4;
/** RFC 1542: relays and old clients (and Linux's in-kernel client) drop replies shorter than a BOOTP packet. */
export const MIN_PACKET_LEN = 300;
export const SNAME_LEN = 64;
export const FILE_LEN = 128;

export interface DhcpPacket {
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  /** Transaction id, unsigned 32-bit. */
  xid: number;
  secs: number;
  flags: number;
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  /** All 16 bytes of the field; the first `hlen` are the hardware address. */
  chaddr: Buffer;
  /** Server host name field, up to the first NUL. */
  sname: string;
  /** Boot file field, up to the first NUL. */
  file: string;
  /** Options in first-seen order; repeated instances already concatenated (RFC 3396). */
  options: Map<number, Buffer>;
}

export class DhcpDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DhcpDecodeError";
  }
}

export function decodeDhcp(buf: Buffer): DhcpPacket {
  if (buf.length < OPTIONS_START) {
    throw new DhcpDecodeError(`packet too short: ${buf.length} bytes, a DHCP packet has at least ${OPTIONS_START}`);
  }
  const op = buf[0]!;
  if (op !== BOOTREQUEST && op !== BOOTREPLY) throw new DhcpDecodeError(`bad op ${op}: expected 1 (BOOTREQUEST) or 2 (BOOTREPLY)`);
  const hlen = buf[2]!;
  if (hlen > 16) throw new DhcpDecodeError(`bad hlen ${hlen}: chaddr holds at most 16 bytes`);
  const cookie = buf.readUInt32BE(HEADER_LEN);
  if (cookie !== COOKIE) {
    throw new DhcpDecodeError(`bad magic cookie 0x${cookie.toString(16).padStart(8, "0")}: not a DHCP packet (plain BOOTP is not served)`);
  }
  return {
    op,
    htype: buf[1]!,
    hlen,
    hops: buf[3]!,
    xid: buf.readUInt32BE(4),
    secs: buf.readUInt16BE(8),
    flags: buf.readUInt16BE(10),
    ciaddr: ipFromBytes(buf, 12),
    yiaddr: ipFromBytes(buf, 16),
    siaddr: ipFromBytes(buf, 20),
    giaddr: ipFromBytes(buf, 24),
    chaddr: Buffer.from(buf.subarray(28, 44)),
    // Option overload (52) is deliberately not honoured: sname/file stay plain strings.
    sname: cString(buf.subarray(44, 44 + SNAME_LEN)),
    file: cString(buf.subarray(108, 108 + FILE_LEN)),
    options: decodeOptions(buf, OPTIONS_START),
  };
}

function decodeOptions(buf: Buffer, start: number): Map<number, Buffer> {
  const parts = new Map<number, Buffer[]>();
  let i = start;
  while (i < buf.length) {
    const code = buf[i]!;
    if (code === Opt.PAD) {
      i += 1;
      continue;
    }
    if (code === Opt.END) break;
    if (i + 1 >= buf.length) throw new DhcpDecodeError(`option ${code} at offset ${i} has no length byte`);
    const len = buf[i + 1]!;
    const end = i + 2 + len;
    if (end > buf.length) {
      throw new DhcpDecodeError(`option ${code} at offset ${i} claims ${len} bytes but only ${buf.length - i - 2} remain`);
    }
    const list = parts.get(code);
    const value = Buffer.from(buf.subarray(i + 2, end));
    if (list) list.push(value);
    else parts.set(code, [value]);
    i = end;
  }
  // A missing END is tolerated: several firmware stacks end the packet right after the last option.
  const options = new Map<number, Buffer>();
  for (const [code, list] of parts) options.set(code, list.length === 1 ? list[0]! : Buffer.concat(list));
  return options;
}

export function encodeDhcp(p: DhcpPacket): Buffer {
  const sname = fixedString(p.sname, SNAME_LEN, "sname");
  const file = fixedString(p.file, FILE_LEN, "file");
  if (p.chaddr.length > 16) throw new RangeError(`chaddr is ${p.chaddr.length} bytes, at most 16 fit`);

  const opts: Buffer[] = [];
  for (const [code, value] of p.options) {
    if (!Number.isInteger(code) || code <= Opt.PAD || code >= Opt.END) throw new RangeError(`option code ${code} cannot be encoded`);
    if (value.length === 0) {
      opts.push(Buffer.from([code, 0]));
      continue;
    }
    // RFC 3396: a value over 255 bytes travels as consecutive instances of the same code.
    for (let off = 0; off < value.length; off += 255) {
      const chunk = value.subarray(off, Math.min(off + 255, value.length));
      opts.push(Buffer.from([code, chunk.length]), chunk);
    }
  }
  opts.push(Buffer.from([Opt.END]));
  const optionBytes = Buffer.concat(opts);

  const out = Buffer.alloc(Math.max(MIN_PACKET_LEN, OPTIONS_START + optionBytes.length));
  out[0] = p.op;
  out[1] = p.htype;
  out[2] = p.hlen;
  out[3] = p.hops;
  out.writeUInt32BE(p.xid >>> 0, 4);
  out.writeUInt16BE(p.secs, 8);
  out.writeUInt16BE(p.flags, 10);
  ipToBytes(p.ciaddr).copy(out, 12);
  ipToBytes(p.yiaddr).copy(out, 16);
  ipToBytes(p.siaddr).copy(out, 20);
  ipToBytes(p.giaddr).copy(out, 24);
  p.chaddr.copy(out, 28);
  sname.copy(out, 44);
  file.copy(out, 108);
  out.writeUInt32BE(COOKIE, HEADER_LEN);
  optionBytes.copy(out, OPTIONS_START);
  return out;
}

/**
 * sname and file are byte fields; latin1 maps each byte to one character and
 * back, so a decoded packet re-encodes byte for byte.
 */
export function fitsFixedField(text: string, len: number): boolean {
  return text.length <= len - 1 && /^[\u0001-\u00ff]*$/.test(text);
}

/** At most len-1 bytes so the NUL terminator always fits. */
function fixedString(text: string, len: number, field: string): Buffer {
  if (!fitsFixedField(text, len)) {
    throw new RangeError(`${field} must be at most ${len - 1} single-byte characters without NUL (got ${text.length} characters)`);
  }
  return Buffer.from(text, "latin1");
}

function cString(field: Buffer): string {
  const nul = field.indexOf(0);
  return field.subarray(0, nul === -1 ? field.length : nul).toString("latin1");
}

function ipFromBytes(buf: Buffer, offset: number): string {
  return `${buf[offset]}.${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}`;
}

const IPV4_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

export function ipToBytes(ip: string): Buffer {
  const m = IPV4_RE.exec(ip);
  const parts = m?.slice(1).map(Number);
  if (!parts || parts.some((n) => n > 255)) throw new RangeError(`not an IPv4 address: ${JSON.stringify(ip)}`);
  return Buffer.from(parts);
}

export function isZeroIp(ip: string): boolean {
  return ip === "0.0.0.0";
}

// ---- typed option helpers -------------------------------------------------

/** Option 53 as a number, undefined when absent or empty (a BOOTP packet). */
export function msgType(p: DhcpPacket): number | undefined {
  const v = p.options.get(Opt.MESSAGE_TYPE);
  return v && v.length >= 1 ? v[0] : undefined;
}

/** Option 60 as text (latin1: vendor classes are ASCII and this never throws). */
export function vendorClass(p: DhcpPacket): string | undefined {
  return p.options.get(Opt.VENDOR_CLASS)?.toString("latin1");
}

/**
 * Option 77 user classes. RFC 3004 frames each class with a length byte, but
 * iPXE sends its class as raw text (`iPXE`, no length): when the bytes do not
 * parse as RFC 3004 frames the whole value is taken as one class.
 */
export function userClasses(p: DhcpPacket): string[] {
  const v = p.options.get(Opt.USER_CLASS);
  if (!v || v.length === 0) return [];
  const framed: string[] = [];
  let i = 0;
  while (i < v.length) {
    const len = v[i]!;
    if (len === 0 || i + 1 + len > v.length) return [v.toString("latin1")];
    framed.push(v.subarray(i + 1, i + 1 + len).toString("latin1"));
    i += 1 + len;
  }
  return framed;
}

/** Option 93: the first architecture type (a client may list several, 2 bytes each, big-endian). */
export function clientArch(p: DhcpPacket): number | undefined {
  const v = p.options.get(Opt.CLIENT_ARCH);
  return v && v.length >= 2 ? v.readUInt16BE(0) : undefined;
}

/** Option 97 (RFC 4578): type 0 followed by 16 UUID bytes, returned as sent; undefined when malformed. */
export function clientUuid(p: DhcpPacket): Buffer | undefined {
  const v = p.options.get(Opt.CLIENT_UUID);
  return v && v.length === 17 && v[0] === 0 ? Buffer.from(v.subarray(1)) : undefined;
}

/**
 * Option 43 as PXE sub-options (code, length, value; PAD skipped, END stops).
 * Returns undefined when the bytes are not well-formed sub-options.
 */
export function vendorSubOptions(p: DhcpPacket): Map<number, Buffer> | undefined {
  const v = p.options.get(Opt.VENDOR_SPECIFIC);
  if (!v) return undefined;
  const out = new Map<number, Buffer>();
  let i = 0;
  while (i < v.length) {
    const code = v[i]!;
    if (code === 0) {
      i += 1;
      continue;
    }
    if (code === 255) return out;
    const len = v[i + 1];
    if (len === undefined || i + 2 + len > v.length) return undefined;
    out.set(code, Buffer.from(v.subarray(i + 2, i + 2 + len)));
    i += 2 + len;
  }
  return out;
}

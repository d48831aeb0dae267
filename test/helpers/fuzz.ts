/**
 * Fuzzing tools shared by the codec fuzz tests and the fuzz sender that runs
 * in a network namespace: a seedable PRNG, mutators, random packet
 * generators, seed corpora, and well-formedness predicates written from the
 * RFCs independently of src/ (they are the oracle the codecs are compared to).
 */
import { randomInt } from "node:crypto";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { encodeAck, encodeData, encodeError, encodeOack, encodeRequest } from "../../src/tftp/codec.js";
import { readPcap } from "./pcap.js";
import { DHCP_OPTIONS_AT, dhcpOptionSpans } from "./dhcp-wire.js";

/** A small, fast, seedable PRNG (sfc32), so every failing run can be replayed from its seed. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(readonly seed: number) {
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = seed >>> 0;
    for (let i = 0; i < 16; i++) this.u32();
  }

  u32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return n <= 0 ? 0 : Math.floor((this.u32() / 0x1_0000_0000) * n);
  }

  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.u32() / 0x1_0000_0000 < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error("pick from an empty list");
    return items[this.int(items.length)]!;
  }

  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) out[i] = this.u32() & 0xff;
    return out;
  }
}

/** FUZZ_SEED from the environment (decimal or 0x hex) to replay a run; a fresh random seed otherwise. */
export function fuzzSeed(): number {
  const env = process.env.FUZZ_SEED;
  if (env !== undefined && env !== "") {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 0 || n > 0xffff_ffff) throw new Error(`FUZZ_SEED must be a 32-bit unsigned integer, got ${env}`);
    return n;
  }
  return randomInt(0, 0xffff_ffff);
}

/** Bytes that tend to matter to parsers: boundaries, terminators, path characters, DHCP PAD/END. */
const INTERESTING = [0x00, 0x01, 0x02, 0x06, 0x10, 0x2e, 0x2f, 0x25, 0x5c, 0x35, 0x3c, 0x7f, 0x80, 0xfe, 0xff];

type Mutator = (rng: Rng, b: Buffer, corpus: readonly Buffer[]) => Buffer;

const MUTATORS: Mutator[] = [
  // Flip one to eight bits.
  (rng, b) => {
    if (b.length === 0) return b;
    for (let n = rng.range(1, 8); n > 0; n--) {
      const i = rng.int(b.length);
      b[i] = b[i]! ^ (1 << rng.int(8));
    }
    return b;
  },
  // Set a byte to an interesting value.
  (rng, b) => {
    if (b.length > 0) b[rng.int(b.length)] = rng.pick(INTERESTING);
    return b;
  },
  // Overwrite a run with random bytes.
  (rng, b) => {
    if (b.length === 0) return b;
    const at = rng.int(b.length);
    rng.bytes(Math.min(rng.range(1, 32), b.length - at)).copy(b, at);
    return b;
  },
  // Truncate.
  (rng, b) => b.subarray(0, rng.int(b.length + 1)),
  // Extend with random bytes or zeros.
  (rng, b) => Buffer.concat([b, rng.chance(0.5) ? rng.bytes(rng.range(1, 64)) : Buffer.alloc(rng.range(1, 64))]),
  // Delete a span.
  (rng, b) => {
    if (b.length === 0) return b;
    const at = rng.int(b.length);
    const len = rng.range(1, Math.min(64, b.length - at));
    return Buffer.concat([b.subarray(0, at), b.subarray(at + len)]);
  },
  // Insert random bytes or a copy of a chunk of the packet itself.
  (rng, b) => {
    const at = rng.int(b.length + 1);
    let chunk: Buffer;
    if (b.length > 0 && rng.chance(0.5)) {
      const from = rng.int(b.length);
      chunk = Buffer.from(b.subarray(from, from + rng.range(1, 64)));
    } else {
      chunk = rng.bytes(rng.range(1, 16));
    }
    return Buffer.concat([b.subarray(0, at), chunk, b.subarray(at)]);
  },
  // Splice: the head of this packet, the tail of another.
  (rng, b, corpus) => {
    const other = rng.pick(corpus);
    return Buffer.concat([b.subarray(0, rng.int(b.length + 1)), other.subarray(rng.int(other.length + 1))]);
  },
];

/** One to four stacked mutations of a copy of `seed` (the seed itself is never modified). */
export function mutate(rng: Rng, seed: Buffer, corpus: readonly Buffer[], extra: readonly Mutator[] = []): Buffer {
  let b = Buffer.from(seed);
  const all = extra.length > 0 ? [...MUTATORS, ...extra] : MUTATORS;
  for (let n = rng.range(1, 4); n > 0; n--) b = Buffer.from(rng.pick(all)(rng, b, corpus));
  return b;
}

// ---- DHCP ----------------------------------------------------------------

const DHCP_COOKIE = 0x63825363;

/**
 * RFC 2131 §2 / RFC 2132 §2, read independently of the codec: a fixed
 * 236-byte header with op 1 or 2 and hlen ≤ 16, the magic cookie, then
 * options (PAD skipped, END stops) that each fit in the packet. A missing END
 * is accepted (firmware omits it).
 */
export function dhcpWellFormed(b: Buffer): boolean {
  if (b.length < DHCP_OPTIONS_AT) return false;
  if (b[0] !== 1 && b[0] !== 2) return false;
  if (b[2]! > 16) return false;
  if (b.readUInt32BE(236) !== DHCP_COOKIE) return false;
  for (const span of dhcpOptionSpans(b)) if (span.overrun) return false;
  return true;
}

/** DHCP options, repeated codes concatenated (RFC 3396); read independently of the codec. */
export function dhcpOptions(b: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  for (const { code, value } of dhcpOptionSpans(b)) {
    const prev = out.get(code);
    out.set(code, prev ? Buffer.concat([prev, value]) : Buffer.from(value));
  }
  return out;
}

/** DHCP-aware mutations: option lengths, the cookie, op/hlen, and options dropped or repeated. */
export const DHCP_MUTATORS: Mutator[] = [
  (rng, b) => {
    const at = [...dhcpOptionSpans(b)].map((o) => o.lengthAt);
    if (at.length > 0) b[rng.pick(at)] = rng.chance(0.5) ? rng.pick(INTERESTING) : rng.int(256);
    return b;
  },
  (rng, b) => {
    if (b.length > 240) b[rng.range(236, 239)] = rng.int(256);
    return b;
  },
  (rng, b) => {
    if (b.length > 3) b[rng.pick([0, 2])] = rng.pick([0, 1, 2, 3, 6, 16, 17, 255]);
    return b;
  },
  // Append a random option before the end (long values exercise RFC 3396 concatenation).
  (rng, b) => {
    const code = rng.pick([43, 53, 55, 60, 61, 77, 93, 94, 97, 175, rng.range(1, 254)]);
    const value = rng.bytes(rng.pick([0, 1, 2, 16, 17, 255]));
    return Buffer.concat([b.subarray(0, Math.max(DHCP_OPTIONS_AT, b.length - 1)), Buffer.from([code, value.length]), value, Buffer.from([255])]);
  },
];

/** A random BOOTP header with the cookie and random options: gets past the header checks into the option parser. */
export function randomDhcp(rng: Rng): Buffer {
  const header = rng.bytes(236);
  header[0] = rng.chance(0.9) ? 1 : rng.int(256);
  header[1] = 1;
  header[2] = rng.chance(0.9) ? 6 : rng.int(256);
  const cookie = Buffer.alloc(4);
  cookie.writeUInt32BE(rng.chance(0.95) ? DHCP_COOKIE : rng.u32(), 0);
  const opts: Buffer[] = [];
  for (let n = rng.int(12); n > 0; n--) {
    const code = rng.chance(0.3) ? rng.pick([0, 53, 55, 57, 60, 61, 77, 93, 94, 97, 255]) : rng.int(256);
    if (code === 0 || code === 255) {
      opts.push(Buffer.from([code]));
      continue;
    }
    const len = rng.chance(0.1) ? rng.int(256) : rng.int(20);
    const value = code === 60 && rng.chance(0.5) ? Buffer.from(rng.pick(["PXEClient:Arch:00007:UNDI:003016", "HTTPClient:Arch:00016", "PXEClient"])) : rng.bytes(len);
    opts.push(Buffer.from([code, rng.chance(0.9) ? value.length : rng.int(256)]), value);
  }
  if (rng.chance(0.7)) opts.push(Buffer.from([255]));
  return Buffer.concat([header, cookie, ...opts]);
}

/** Client requests (BOOTREQUESTs) and server replies from the firmware captures in a pcap directory. */
export function dhcpCorpus(pcapDir: string): { requests: Buffer[]; all: Buffer[] } {
  const requests: Buffer[] = [];
  const all: Buffer[] = [];
  for (const name of readdirSync(pcapDir).filter((n) => n.endsWith(".pcap")).sort()) {
    for (const d of readPcap(join(pcapDir, name))) {
      if (![67, 68, 4011].includes(d.dstPort) || d.payload.length === 0) continue;
      all.push(d.payload);
      if (d.payload[0] === 1) requests.push(d.payload);
    }
  }
  return { requests, all };
}

// ---- TFTP ------------------------------------------------------------------

/** Reads a NUL-terminated field; -1 when there is no NUL. */
function fieldEnd(b: Buffer, start: number): number {
  return b.indexOf(0, start);
}

function optionsWellFormed(b: Buffer, start: number): boolean {
  const seen = new Set<string>();
  let i = start;
  while (i < b.length) {
    // Trailing zero padding (some PXE ROMs) ends the options.
    if (b.subarray(i).every((x) => x === 0)) return true;
    const nameEnd = fieldEnd(b, i);
    if (nameEnd < 0 || nameEnd === i || nameEnd + 1 >= b.length) return false;
    const valueEnd = fieldEnd(b, nameEnd + 1);
    if (valueEnd < 0) return false;
    const name = b.toString("latin1", i, nameEnd).toLowerCase();
    if (seen.has(name)) return false;
    seen.add(name);
    i = valueEnd + 1;
  }
  return true;
}

function validUtf8(b: Buffer): boolean {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(b);
    return true;
  } catch {
    return false;
  }
}

/**
 * RFC 1350 §5 / RFC 2347, read independently of the codec: RRQ/WRQ carry a
 * non-empty NUL-terminated (UTF-8) filename and mode, then option name/value
 * pairs (names unique, any case; trailing zero padding allowed); DATA, ACK and
 * ERROR have a 4-byte header at least; OACK carries option pairs.
 */
export function tftpWellFormed(b: Buffer): boolean {
  if (b.length < 2) return false;
  const op = b.readUInt16BE(0);
  switch (op) {
    case 1:
    case 2: {
      const nameEnd = fieldEnd(b, 2);
      if (nameEnd <= 2 || !validUtf8(b.subarray(2, nameEnd))) return false;
      const modeEnd = fieldEnd(b, nameEnd + 1);
      if (modeEnd <= nameEnd + 1) return false;
      return optionsWellFormed(b, modeEnd + 1);
    }
    case 3:
    case 4:
    case 5:
      return b.length >= 4;
    case 6:
      return optionsWellFormed(b, 2);
    default:
      return false;
  }
}

/** The request's filename and mode when `b` is a well-formed RRQ, else undefined. */
export function tftpReadRequest(b: Buffer): { filename: string; mode: string } | undefined {
  if (!tftpWellFormed(b) || b.readUInt16BE(0) !== 1) return undefined;
  const nameEnd = fieldEnd(b, 2);
  const modeEnd = fieldEnd(b, nameEnd + 1);
  return { filename: b.toString("utf8", 2, nameEnd), mode: b.toString("latin1", nameEnd + 1, modeEnd).toLowerCase() };
}

/** TFTP-aware mutations: opcode, NULs removed or added, option values. */
export const TFTP_MUTATORS: Mutator[] = [
  (rng, b) => {
    if (b.length >= 2) b.writeUInt16BE(rng.chance(0.8) ? rng.range(0, 7) : rng.int(65536), 0);
    return b;
  },
  (rng, b) => {
    const nuls = [...b.keys()].filter((i) => b[i] === 0 && i >= 2);
    if (nuls.length > 0) b[rng.pick(nuls)] = rng.pick([0x2e, 0x2f, 0x41, 0xff]);
    return b;
  },
  (rng, b) => {
    if (b.length > 2) b[rng.range(2, b.length - 1)] = 0;
    return b;
  },
  (rng, b) => {
    const name = rng.pick(["blksize", "windowsize", "tsize", "timeout", "BLKSIZE", "multicast"]);
    const value = rng.pick(["0", "1", "7", "8", "512", "1468", "65464", "65465", "99999999999", "-1", "0x10", " 8", "", "4294967296"]);
    return Buffer.concat([b, Buffer.from(`${name}\0${value}\0`, "latin1")]);
  },
];

/**
 * Well-formed TFTP packets of every kind: the requests firmware and tools
 * send (EDK2, iPXE, tsize probes, traversal attempts), and the packets a
 * client sends during a transfer.
 */
export function tftpCorpus(served: readonly string[]): Buffer[] {
  const names = [
    ...served,
    ...served.map((n) => `/${n}`),
    "pxelinux.0",
    "grub/x86_64-efi/normal.mod",
    "boot/grub/grub.cfg",
    "../etc/passwd",
    "%2e%2e/secret",
    "a\\..\\b",
    "bööt.efi",
  ];
  const out: Buffer[] = [];
  for (const name of names) {
    out.push(encodeRequest("rrq", name, "octet"));
    out.push(encodeRequest("rrq", name, "octet", [{ name: "tsize", value: "0" }]));
    out.push(
      encodeRequest("rrq", name, "octet", [
        { name: "blksize", value: "1468" },
        { name: "windowsize", value: "4" },
        { name: "tsize", value: "0" },
      ]),
    );
    out.push(encodeRequest("rrq", name, "netascii", [{ name: "blksize", value: "1432" }]));
  }
  out.push(encodeRequest("wrq", "upload.bin", "octet"));
  out.push(encodeRequest("rrq", "x", "mail"));
  out.push(encodeAck(0), encodeAck(1), encodeAck(65535));
  out.push(encodeData(1, Buffer.from("data")), encodeData(2, Buffer.alloc(512)));
  out.push(encodeError(0, "client gave up"), encodeError(8, "tsize probe"));
  out.push(encodeOack([{ name: "blksize", value: "1468" }]));
  return out;
}

/** A random datagram of opcode 0–7 with NULs sprinkled in, or plain noise. */
export function randomTftp(rng: Rng): Buffer {
  if (rng.chance(0.2)) return rng.bytes(rng.int(600));
  const body = rng.bytes(rng.int(200));
  for (let i = 0; i < body.length; i++) if (rng.chance(0.08)) body[i] = 0;
  const op = Buffer.alloc(2);
  op.writeUInt16BE(rng.range(0, 7), 0);
  return Buffer.concat([op, body]);
}


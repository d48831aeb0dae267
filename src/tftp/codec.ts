/**
 * TFTP wire format (RFC 1350, options RFC 2347): pure Buffer ⇄ packet.
 * No sockets here, so the codec can be fuzzed and tested in isolation.
 */

export const Opcode = { RRQ: 1, WRQ: 2, DATA: 3, ACK: 4, ERROR: 5, OACK: 6 } as const;

export const TftpErrorCode = {
  NOT_DEFINED: 0,
  FILE_NOT_FOUND: 1,
  ACCESS_VIOLATION: 2,
  DISK_FULL: 3,
  ILLEGAL_OPERATION: 4,
  UNKNOWN_TID: 5,
  FILE_EXISTS: 6,
  NO_SUCH_USER: 7,
  OPTION_REFUSED: 8,
} as const;

/** One option as sent: `name` keeps the sender's spelling so an OACK can echo it back verbatim. */
export interface TftpOption {
  name: string;
  value: string;
}

/** Options keyed by lower-cased name (RFC 2347: names are case-insensitive), in the order sent. */
export type TftpOptions = ReadonlyMap<string, TftpOption>;

export type TftpPacket =
  | { op: "rrq" | "wrq"; filename: string; /** lower-cased */ mode: string; options: TftpOptions }
  | { op: "data"; block: number; data: Buffer }
  | { op: "ack"; block: number }
  | { op: "error"; code: number; message: string }
  | { op: "oack"; options: TftpOptions };

export class TftpDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TftpDecodeError";
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

export function decodePacket(buf: Buffer): TftpPacket {
  if (buf.length < 2) throw new TftpDecodeError(`packet too short (${buf.length} bytes)`);
  const opcode = buf.readUInt16BE(0);
  switch (opcode) {
    case Opcode.RRQ:
    case Opcode.WRQ:
      return decodeRequest(buf, opcode === Opcode.RRQ ? "rrq" : "wrq");
    case Opcode.DATA:
      if (buf.length < 4) throw new TftpDecodeError("DATA packet shorter than its header");
      return { op: "data", block: buf.readUInt16BE(2), data: buf.subarray(4) };
    case Opcode.ACK:
      // Trailing bytes are tolerated: the block number is all that matters and
      // rejecting a padded ACK would stall a transfer for nothing.
      if (buf.length < 4) throw new TftpDecodeError("ACK packet shorter than 4 bytes");
      return { op: "ack", block: buf.readUInt16BE(2) };
    case Opcode.ERROR: {
      if (buf.length < 4) throw new TftpDecodeError("ERROR packet shorter than its header");
      // A missing terminating NUL is tolerated: an abort must be honoured even
      // from a sloppy client, otherwise we keep retransmitting to someone who left.
      const end = buf.indexOf(0, 4);
      const message = buf.toString("latin1", 4, end < 0 ? buf.length : end);
      return { op: "error", code: buf.readUInt16BE(2), message };
    }
    case Opcode.OACK: {
      const options = decodeOptions(buf, 2);
      return { op: "oack", options };
    }
    default:
      throw new TftpDecodeError(`unknown opcode ${opcode}`);
  }
}

function decodeRequest(buf: Buffer, op: "rrq" | "wrq"): TftpPacket {
  const [filenameBytes, afterName] = readField(buf, 2, "filename");
  if (filenameBytes.length === 0) throw new TftpDecodeError("empty filename");
  let filename: string;
  try {
    filename = utf8.decode(filenameBytes);
  } catch {
    throw new TftpDecodeError("filename is not valid UTF-8");
  }
  const [modeBytes, afterMode] = readField(buf, afterName, "mode");
  if (modeBytes.length === 0) throw new TftpDecodeError("empty mode");
  const mode = modeBytes.toString("latin1").toLowerCase();
  return { op, filename, mode, options: decodeOptions(buf, afterMode) };
}

function decodeOptions(buf: Buffer, start: number): TftpOptions {
  const options = new Map<string, TftpOption>();
  let pos = start;
  while (pos < buf.length) {
    // Some PXE ROMs pad requests with zero bytes after the last field.
    if (isAllZero(buf, pos)) break;
    const [nameBytes, afterName] = readField(buf, pos, "option name");
    if (nameBytes.length === 0) throw new TftpDecodeError("empty option name");
    if (afterName >= buf.length) throw new TftpDecodeError(`option ${nameBytes.toString("latin1")} has no value`);
    const [valueBytes, afterValue] = readField(buf, afterName, "option value");
    const name = nameBytes.toString("latin1");
    const key = name.toLowerCase();
    // Two values for one option leave us guessing which the client meant.
    if (options.has(key)) throw new TftpDecodeError(`option ${name} given twice`);
    options.set(key, { name, value: valueBytes.toString("latin1") });
    pos = afterValue;
  }
  return options;
}

/** The bytes up to the next NUL and the offset just past it. */
function readField(buf: Buffer, start: number, what: string): [Buffer, number] {
  const end = buf.indexOf(0, start);
  if (end < 0) throw new TftpDecodeError(`${what} is not NUL-terminated`);
  return [buf.subarray(start, end), end + 1];
}

function isAllZero(buf: Buffer, start: number): boolean {
  for (let i = start; i < buf.length; i++) if (buf[i] !== 0) return false;
  return true;
}

function checkBlock(block: number): void {
  if (!Number.isInteger(block) || block < 0 || block > 0xffff) throw new RangeError(`block number ${block} is not a uint16`);
}

function header(opcode: number, second: number, rest = 0): Buffer {
  const buf = Buffer.allocUnsafe(4 + rest);
  buf.writeUInt16BE(opcode, 0);
  buf.writeUInt16BE(second, 2);
  return buf;
}

export function encodeData(block: number, data: Uint8Array): Buffer {
  checkBlock(block);
  const buf = header(Opcode.DATA, block, data.length);
  buf.set(data, 4);
  return buf;
}

export function encodeAck(block: number): Buffer {
  checkBlock(block);
  return header(Opcode.ACK, block);
}

export function encodeError(code: number, message: string): Buffer {
  checkBlock(code);
  const text = Buffer.from(message, "latin1");
  const buf = header(Opcode.ERROR, code, text.length + 1);
  text.copy(buf, 4);
  buf[buf.length - 1] = 0;
  return buf;
}

export function encodeOack(options: Iterable<TftpOption>): Buffer {
  return Buffer.concat([u16(Opcode.OACK), ...encodeOptionList(options)]);
}

/** A read or write request; the server never sends one, test clients and fuzzers do. */
export function encodeRequest(op: "rrq" | "wrq", filename: string, mode: string, options: Iterable<TftpOption> = []): Buffer {
  return Buffer.concat([
    u16(op === "rrq" ? Opcode.RRQ : Opcode.WRQ),
    cstring(Buffer.from(filename, "utf8"), "filename"),
    cstring(Buffer.from(mode, "latin1"), "mode"),
    ...encodeOptionList(options),
  ]);
}

function encodeOptionList(options: Iterable<TftpOption>): Buffer[] {
  const parts: Buffer[] = [];
  for (const { name, value } of options) {
    parts.push(cstring(Buffer.from(name, "latin1"), "option name"), cstring(Buffer.from(value, "latin1"), "option value"));
  }
  return parts;
}

function u16(n: number): Buffer {
  const buf = Buffer.allocUnsafe(2);
  buf.writeUInt16BE(n, 0);
  return buf;
}

function cstring(bytes: Buffer, what: string): Buffer {
  // An embedded NUL would silently split the field on the wire.
  if (bytes.includes(0)) throw new RangeError(`${what} contains a NUL byte`);
  return Buffer.concat([bytes, Buffer.alloc(1)]);
}

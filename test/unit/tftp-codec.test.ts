import { describe, expect, it } from "vitest";
import {
  TftpDecodeError,
  decodePacket,
  encodeAck,
  encodeData,
  encodeError,
  encodeOack,
  encodeRequest,
} from "../../src/tftp/codec.js";

/** Builds a packet from an opcode and raw string fields, NULs written explicitly. */
function raw(opcode: number, body: string): Buffer {
  const op = Buffer.alloc(2);
  op.writeUInt16BE(opcode, 0);
  return Buffer.concat([op, Buffer.from(body, "latin1")]);
}

describe("decode requests", () => {
  it("reads filename, mode (lower-cased) and options keyed case-insensitively", () => {
    const p = decodePacket(raw(1, "pxelinux.0\0OCTET\0BLKSIZE\x001468\0tsize\x000\0WindowSize\x004\0"));
    expect(p.op).toBe("rrq");
    if (p.op !== "rrq") return;
    expect(p.filename).toBe("pxelinux.0");
    expect(p.mode).toBe("octet");
    expect([...p.options.keys()]).toEqual(["blksize", "tsize", "windowsize"]);
    // The sender's spelling is kept so an OACK can echo it.
    expect(p.options.get("blksize")).toEqual({ name: "BLKSIZE", value: "1468" });
    expect(p.options.get("windowsize")).toEqual({ name: "WindowSize", value: "4" });
  });

  it("distinguishes WRQ from RRQ", () => {
    expect(decodePacket(raw(2, "f\0octet\0")).op).toBe("wrq");
  });

  it("decodes UTF-8 filenames", () => {
    const p = decodePacket(encodeRequest("rrq", "bööt/ü.efi", "octet"));
    expect(p.op === "rrq" && p.filename).toBe("bööt/ü.efi");
  });

  it("tolerates zero padding after the last field", () => {
    const p = decodePacket(Buffer.concat([raw(1, "a\0octet\0tsize\x000\0"), Buffer.alloc(7)]));
    expect(p.op === "rrq" && [...p.options.keys()]).toEqual(["tsize"]);
  });

  it.each([
    ["no NUL after the filename", raw(1, "pxelinux.0")],
    ["no NUL after the mode", raw(1, "pxelinux.0\0octet")],
    ["an empty filename", raw(1, "\0octet\0")],
    ["an empty mode", raw(1, "file\0\0")],
    ["an option without a value", raw(1, "file\0octet\0blksize\0")],
    ["an option value without its NUL", raw(1, "file\0octet\0blksize\x001468")],
    ["an empty option name", raw(1, "file\0octet\0\x001468\0")],
    ["the same option twice (any case)", raw(1, "file\0octet\0blksize\x00512\0BLKSIZE\x001468\0")],
    ["invalid UTF-8 in the filename", Buffer.concat([raw(1, ""), Buffer.from([0x70, 0xff, 0xfe, 0]), Buffer.from("octet\0")])],
  ])("rejects a request with %s", (_what, buf) => {
    expect(() => decodePacket(buf)).toThrow(TftpDecodeError);
  });
});

describe("decode other packets", () => {
  it("DATA carries block number and payload (possibly empty)", () => {
    const p = decodePacket(raw(3, "\x12\x34hello"));
    expect(p).toEqual({ op: "data", block: 0x1234, data: Buffer.from("hello") });
    const empty = decodePacket(raw(3, "\xff\xff"));
    expect(empty.op === "data" && empty.block === 0xffff && empty.data.length).toBe(0);
  });

  it("ACK carries the block number; trailing bytes are ignored", () => {
    expect(decodePacket(raw(4, "\x00\x07"))).toEqual({ op: "ack", block: 7 });
    expect(decodePacket(raw(4, "\xff\xfe\0\0"))).toEqual({ op: "ack", block: 0xfffe });
  });

  it("ERROR carries code and message, with or without the final NUL", () => {
    expect(decodePacket(raw(5, "\x00\x08option refused\0"))).toEqual({ op: "error", code: 8, message: "option refused" });
    expect(decodePacket(raw(5, "\x00\x01gone"))).toEqual({ op: "error", code: 1, message: "gone" });
  });

  it("OACK carries options", () => {
    const p = decodePacket(raw(6, "blksize\x001468\0tsize\x00999\0"));
    expect(p.op === "oack" && [...p.options.values()]).toEqual([
      { name: "blksize", value: "1468" },
      { name: "tsize", value: "999" },
    ]);
  });

  it.each([
    ["an empty datagram", Buffer.alloc(0)],
    ["a single byte", Buffer.from([0])],
    ["opcode 0", raw(0, "x\0octet\0")],
    ["opcode 7", raw(7, "\0\0")],
    ["opcode 0xffff", raw(0xffff, "")],
    ["a DATA without block number", raw(3, "\x01")],
    ["an ACK without block number", raw(4, "\x01")],
    ["an ERROR without code", raw(5, "\x01")],
    ["an OACK with a dangling option", raw(6, "blksize\0")],
  ])("rejects %s", (_what, buf) => {
    expect(() => decodePacket(buf)).toThrow(TftpDecodeError);
  });
});

describe("encode", () => {
  it("DATA, ACK, ERROR, OACK round-trip through decode", () => {
    const payload = Buffer.from([0, 1, 2, 255]);
    expect(decodePacket(encodeData(65535, payload))).toEqual({ op: "data", block: 65535, data: payload });
    expect(decodePacket(encodeAck(0))).toEqual({ op: "ack", block: 0 });
    expect(decodePacket(encodeError(2, "access violation"))).toEqual({ op: "error", code: 2, message: "access violation" });
    const oack = decodePacket(encodeOack([{ name: "BlkSize", value: "1432" }, { name: "tsize", value: "0" }]));
    expect(oack.op === "oack" && oack.options.get("blksize")).toEqual({ name: "BlkSize", value: "1432" });
  });

  it("lays out bytes as RFC 1350 says", () => {
    expect(encodeAck(0x0102)).toEqual(Buffer.from([0, 4, 1, 2]));
    expect(encodeData(1, Buffer.from("ab"))).toEqual(Buffer.from([0, 3, 0, 1, 0x61, 0x62]));
    expect(encodeError(1, "x")).toEqual(Buffer.from([0, 5, 0, 1, 0x78, 0]));
    expect(encodeOack([{ name: "a", value: "1" }])).toEqual(Buffer.from([0, 6, 0x61, 0, 0x31, 0]));
    expect(encodeRequest("wrq", "f", "octet")).toEqual(Buffer.from([0, 2, 0x66, 0, ...Buffer.from("octet"), 0]));
  });

  it("refuses block numbers outside uint16 and embedded NULs", () => {
    expect(() => encodeData(65536, Buffer.alloc(0))).toThrow(RangeError);
    expect(() => encodeAck(-1)).toThrow(RangeError);
    expect(() => encodeRequest("rrq", "a\0b", "octet")).toThrow(RangeError);
    expect(() => encodeOack([{ name: "x", value: "1\x002" }])).toThrow(RangeError);
  });
});

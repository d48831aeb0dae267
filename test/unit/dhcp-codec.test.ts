import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  BOOTREQUEST,
  DhcpDecodeError,
  MIN_PACKET_LEN,
  MessageType,
  Opt,
  clientArch,
  clientUuid,
  decodeDhcp,
  encodeDhcp,
  msgType,
  userClasses,
  vendorClass,
  vendorSubOptions,
  type DhcpPacket,
} from "../../src/dhcp/codec.js";
import { readCaptureListing, readPcap } from "../helpers/pcap.js";
import { haveReference, referenceDir } from "../helpers/reference.js";

const MAGIC = Buffer.from([0x63, 0x82, 0x53, 0x63]);

/** A request built by hand, independent of the encoder under test. */
function rawRequest(options: number[], fill?: (b: Buffer) => void): Buffer {
  const header = Buffer.alloc(236);
  header[0] = 1;
  header[1] = 1;
  header[2] = 6;
  header.writeUInt32BE(0xdeadbeef, 4);
  Buffer.from([0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc]).copy(header, 28);
  fill?.(header);
  return Buffer.concat([header, MAGIC, Buffer.from(options)]);
}

function samplePacket(): DhcpPacket {
  return {
    op: 2,
    htype: 1,
    hlen: 6,
    hops: 1,
    xid: 0xfedcba98,
    secs: 3,
    flags: 0x8000,
    ciaddr: "192.0.2.7",
    yiaddr: "0.0.0.0",
    siaddr: "192.0.2.1",
    giaddr: "198.51.100.254",
    chaddr: Buffer.from("525400123456" + "00".repeat(10), "hex"),
    sname: "boot-server",
    file: "ipxe.efi",
    options: new Map([
      [Opt.MESSAGE_TYPE, Buffer.from([MessageType.OFFER])],
      [Opt.SERVER_ID, Buffer.from([192, 0, 2, 1])],
      [Opt.VENDOR_CLASS, Buffer.from("PXEClient")],
      [200, Buffer.alloc(0)],
    ]),
  };
}

describe("DHCP codec: encoding and decoding", () => {
  it("round-trips every header field and option", () => {
    const p = samplePacket();
    const bytes = encodeDhcp(p);
    expect(decodeDhcp(bytes)).toEqual(p);
    // Fields land at the RFC 2131 offsets, checked on the raw bytes.
    expect(bytes.readUInt32BE(4)).toBe(0xfedcba98);
    expect([...bytes.subarray(20, 24)]).toEqual([192, 0, 2, 1]);
    expect(bytes.subarray(108, 117).toString("latin1")).toBe("ipxe.efi\0");
    expect(bytes.subarray(236, 240)).toEqual(MAGIC);
    expect([...bytes.subarray(240, 243)]).toEqual([53, 1, 2]);
  });

  it("pads short packets to the 300-byte BOOTP minimum and ends options with END", () => {
    const bytes = encodeDhcp(samplePacket());
    expect(bytes.length).toBe(MIN_PACKET_LEN);
    // 53(3) + 54(6) + 60(11) + 200(2) = 22 option bytes, then END.
    expect(bytes[240 + 22]).toBe(Opt.END);
    expect(bytes.subarray(240 + 23).every((b) => b === 0)).toBe(true);
  });

  it("grows past 300 bytes when the options need it", () => {
    const p = samplePacket();
    p.options.set(Opt.BOOTFILE, Buffer.alloc(200, 0x61));
    expect(encodeDhcp(p).length).toBe(240 + 22 + 202 + 1);
  });

  it("skips PAD and stops at END, ignoring whatever follows", () => {
    const buf = rawRequest([0, 0, 53, 1, 1, 0, 60, 3, 0x50, 0x58, 0x45, 255, 77, 200, 1, 2, 3]);
    const p = decodeDhcp(buf);
    expect([...p.options.keys()]).toEqual([53, 60]);
    expect(msgType(p)).toBe(MessageType.DISCOVER);
    expect(vendorClass(p)).toBe("PXE");
  });

  it("tolerates a missing END when the last option ends with the packet", () => {
    const p = decodeDhcp(rawRequest([53, 1, 3, 93, 2, 0, 7]));
    expect(clientArch(p)).toBe(7);
    expect(msgType(p)).toBe(MessageType.REQUEST);
  });

  it("splits values over 255 bytes into consecutive instances and concatenates them back", () => {
    const long = Buffer.from(Array.from({ length: 600 }, (_, i) => i % 251));
    const p = samplePacket();
    p.options = new Map([[Opt.BOOTFILE, long]]);
    const bytes = encodeDhcp(p);
    const lengths: number[] = [];
    for (let i = 240; bytes[i] !== Opt.END; i += 2 + bytes[i + 1]!) {
      expect(bytes[i]).toBe(Opt.BOOTFILE);
      lengths.push(bytes[i + 1]!);
    }
    expect(lengths).toEqual([255, 255, 90]);
    expect(decodeDhcp(bytes).options.get(Opt.BOOTFILE)).toEqual(long);
  });

  it("concatenates repeated instances even when other options sit between them (RFC 3396)", () => {
    const p = decodeDhcp(rawRequest([43, 2, 1, 2, 53, 1, 1, 43, 1, 3, 255]));
    expect(p.options.get(43)).toEqual(Buffer.from([1, 2, 3]));
    expect([...p.options.keys()]).toEqual([43, 53]);
  });

  it("ignores option overload: sname and file stay plain fields", () => {
    // file holds bytes that would be option 67 if overload were honoured.
    const buf = rawRequest([52, 1, 3, 53, 1, 1, 255], (h) => {
      Buffer.from([67, 3, 0x61, 0x62, 0x63, 255]).copy(h, 108);
      Buffer.from("srv").copy(h, 44);
    });
    const p = decodeDhcp(buf);
    expect(p.options.has(Opt.BOOTFILE)).toBe(false);
    expect(p.options.get(Opt.OVERLOAD)).toEqual(Buffer.from([3]));
    expect(p.file).toBe(Buffer.from([67, 3, 0x61, 0x62, 0x63, 255]).toString("latin1"));
    expect(p.sname).toBe("srv");
  });

  it("refuses to encode a file that leaves no room for its NUL", () => {
    const p = samplePacket();
    p.file = "x".repeat(127);
    expect(encodeDhcp(p).subarray(108, 236).indexOf(0)).toBe(127);
    p.file = "x".repeat(128);
    expect(() => encodeDhcp(p)).toThrow(RangeError);
    p.file = "ü".repeat(10) + "€";
    expect(() => encodeDhcp(p)).toThrow(/single-byte/);
  });

  it("refuses option codes that are not options", () => {
    for (const code of [0, 255, 256, -1]) {
      const p = samplePacket();
      p.options.set(code, Buffer.from([1]));
      expect(() => encodeDhcp(p)).toThrow(RangeError);
    }
  });
});

describe("DHCP codec: typed helpers", () => {
  it("reads RFC 3004 framed user classes and iPXE's raw one", () => {
    expect(userClasses(decodeDhcp(rawRequest([77, 4, ...Buffer.from("iPXE"), 255])))).toEqual(["iPXE"]);
    expect(userClasses(decodeDhcp(rawRequest([77, 9, 4, ...Buffer.from("iPXE"), 3, ...Buffer.from("foo"), 255])))).toEqual([
      "iPXE",
      "foo",
    ]);
    expect(userClasses(decodeDhcp(rawRequest([255])))).toEqual([]);
  });

  it("takes the first of several architectures in option 93", () => {
    expect(clientArch(decodeDhcp(rawRequest([93, 4, 0, 16, 0, 7, 255])))).toBe(16);
    expect(clientArch(decodeDhcp(rawRequest([93, 1, 7, 255])))).toBeUndefined();
  });

  it("returns the 16 UUID bytes of option 97 only when the option is well formed", () => {
    const uuid = Array.from({ length: 16 }, (_, i) => i + 1);
    expect(clientUuid(decodeDhcp(rawRequest([97, 17, 0, ...uuid, 255])))).toEqual(Buffer.from(uuid));
    expect(clientUuid(decodeDhcp(rawRequest([97, 17, 1, ...uuid, 255])))).toBeUndefined();
    expect(clientUuid(decodeDhcp(rawRequest([97, 3, 0, 1, 2, 255])))).toBeUndefined();
  });

  it("parses option 43 sub-options, and says when they are malformed", () => {
    expect(vendorSubOptions(decodeDhcp(rawRequest([43, 4, 6, 1, 8, 255, 255])))).toEqual(new Map([[6, Buffer.from([8])]]));
    expect(vendorSubOptions(decodeDhcp(rawRequest([43, 3, 6, 5, 8, 255])))).toBeUndefined();
  });
});

describe("DHCP codec: malformed input", () => {
  const good = rawRequest([53, 1, 1, 255]);
  const cases: [string, Buffer, RegExp][] = [
    ["empty", Buffer.alloc(0), /too short/],
    ["header only", good.subarray(0, 236), /too short/],
    ["bad op", Buffer.concat([Buffer.from([7]), good.subarray(1)]), /bad op 7/],
    ["hlen over 16", Buffer.concat([good.subarray(0, 2), Buffer.from([17]), good.subarray(3)]), /bad hlen 17/],
    ["bad cookie", Buffer.concat([good.subarray(0, 236), Buffer.from([1, 2, 3, 4]), good.subarray(240)]), /magic cookie 0x01020304/],
    ["option without length", rawRequest([53, 1, 1, 60]), /option 60 at offset 243 has no length/],
    ["option overrunning the packet", rawRequest([53, 1, 1, 60, 9, 0x50, 0x58]), /option 60 .* claims 9 bytes but only 2 remain/],
  ];
  for (const [name, buf, message] of cases) {
    it(`rejects ${name} with a DhcpDecodeError`, () => {
      expect(() => decodeDhcp(buf)).toThrow(DhcpDecodeError);
      expect(() => decodeDhcp(buf)).toThrow(message);
    });
  }
});

const havePcaps = haveReference("pcap");

describe.skipIf(!havePcaps)("DHCP codec against the reference captures", () => {
  const dir = referenceDir("pcap");
  const captures = havePcaps ? readdirSync(dir).filter((f) => f.endsWith(".pcap")) : [];

  it("finds captures to check", () => {
    expect(captures.length).toBeGreaterThanOrEqual(5);
  });

  for (const name of captures) {
    it(`decodes ${name} exactly as its listing shows`, () => {
      const datagrams = readPcap(join(dir, name)).filter((d) => [67, 68, 4011].includes(d.dstPort));
      const listing = readCaptureListing(join(dir, name.replace(/\.pcap$/, ".txt")));
      expect(datagrams.length).toBe(listing.length);
      datagrams.forEach((d, i) => {
        const want = listing[i]!;
        const p = decodeDhcp(d.payload);
        expect([d.src, d.srcPort, d.dst, d.dstPort]).toEqual([want.src, want.srcPort, want.dst, want.dstPort]);
        expect(p.op).toBe(want.op === "BOOTREQUEST" ? BOOTREQUEST : 2);
        expect(p.xid).toBe(want.xid);
        expect(p.chaddr.subarray(0, p.hlen).toString("hex").match(/../g)!.join(":")).toBe(want.chaddr);
        expect(msgType(p)).toBe(MessageType[want.type as keyof typeof MessageType]);
        if (want.yiaddr) expect(p.yiaddr).toBe(want.yiaddr);
        if (want.siaddr) expect(p.siaddr).toBe(want.siaddr);
        expect(p.file).toBe(want.file ?? "");
        expect([...p.options.keys()]).toEqual(want.options.map((o) => o.code));
        for (const o of want.options) {
          if (o.hex !== undefined) expect(p.options.get(o.code)!.toString("hex"), `option ${o.code}`).toBe(o.hex);
        }
        // Re-encoding keeps every field and option.
        expect(decodeDhcp(encodeDhcp(p))).toEqual(p);
      });
    });
  }
});

describe("DHCP codec: random damage", () => {
  // Deterministic (seeded) so a failure can be replayed.
  function prng(seed: number): () => number {
    let s = seed >>> 0;
    return () => {
      s = (s + 0x6d2b79f5) >>> 0;
      let t = s;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  const seeds: Buffer[] = [rawRequest([53, 1, 1, 60, 9, ...Buffer.from("PXEClient"), 93, 2, 0, 7, 97, 17, 0, ...Buffer.alloc(16, 7), 255])];
  if (havePcaps) {
    for (const f of readdirSync(referenceDir("pcap")).filter((n) => n.endsWith(".pcap"))) {
      seeds.push(...readPcap(join(referenceDir("pcap"), f)).map((d) => d.payload));
    }
  }

  it("never throws anything but DhcpDecodeError, and what decodes re-encodes", () => {
    const rand = prng(0x5eed);
    const pick = (n: number) => Math.floor(rand() * n);
    let decoded = 0;
    let rejected = 0;
    for (let round = 0; round < 4000; round++) {
      const buf = Buffer.from(seeds[pick(seeds.length)]!);
      let mutated: Buffer = buf;
      switch (round % 4) {
        case 0: // flip bytes, mostly in the options where lengths live
          for (let k = 0, n = 1 + pick(8); k < n; k++) buf[236 + pick(buf.length - 236)] = pick(256);
          break;
        case 1: // truncate anywhere
          mutated = buf.subarray(0, pick(buf.length + 1));
          break;
        case 2: // random header bytes
          for (let k = 0; k < 4; k++) buf[pick(240)] = pick(256);
          break;
        default: // pure noise
          mutated = Buffer.from(Array.from({ length: pick(600) }, () => pick(256)));
      }
      let p: DhcpPacket;
      try {
        p = decodeDhcp(mutated);
      } catch (err) {
        if (!(err instanceof DhcpDecodeError)) throw new Error(`round ${round}: ${String(err)}`);
        rejected++;
        continue;
      }
      decoded++;
      expect(decodeDhcp(encodeDhcp(p))).toEqual(p);
    }
    // Both paths must have been exercised for the loop to mean anything.
    expect(decoded).toBeGreaterThan(100);
    expect(rejected).toBeGreaterThan(100);
  });
});

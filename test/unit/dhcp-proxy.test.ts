import { readdirSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import {
  MessageType,
  Opt,
  decodeDhcp,
  encodeDhcp,
  msgType,
  vendorSubOptions,
  type DhcpPacket,
} from "../../src/dhcp/codec.js";
import {
  archFromVendorClass,
  buildProxyReply,
  inspectRequest,
  readFirmwareFacts,
  replyDestination,
  type DhcpOffer,
} from "../../src/dhcp/proxy.js";
import { readCaptureListing, readPcap, type ListedPacket, type UdpDatagram } from "../helpers/pcap.js";
import { haveReference, referenceDir } from "../helpers/reference.js";

const SERVER = "192.0.2.1";
/** Options a ProxyDHCP reply must never carry: they would hand out or alter an address lease. */
const LEASE_OPTIONS = [Opt.SUBNET_MASK, Opt.ROUTER, Opt.DNS, Opt.LEASE_TIME];

interface CapturedRequest {
  capture: string;
  datagram: UdpDatagram;
  listed: ListedPacket;
  packet: DhcpPacket;
}

const havePcaps = haveReference("pcap");

function loadRequests(): CapturedRequest[] {
  const dir = referenceDir("pcap");
  const out: CapturedRequest[] = [];
  for (const capture of readdirSync(dir).filter((f) => f.endsWith(".pcap"))) {
    const datagrams = readPcap(join(dir, capture)).filter((d) => [67, 68, 4011].includes(d.dstPort));
    const listing = readCaptureListing(join(dir, capture.replace(/\.pcap$/, ".txt")));
    if (datagrams.length !== listing.length) throw new Error(`${capture}: pcap and listing disagree`);
    datagrams.forEach((datagram, i) => {
      const listed = listing[i]!;
      if (listed.op === "BOOTREQUEST") out.push({ capture, datagram, listed, packet: decodeDhcp(datagram.payload) });
    });
  }
  return out;
}

const listedHex = (l: ListedPacket, code: number) => l.options.find((o) => o.code === code)?.hex;

function offer(overrides: Partial<DhcpOffer> = {}): DhcpOffer {
  return { kind: "offer", firmware: "uefi", bootFile: "ipxe.efi", pxeDiscoveryControl: false, vendorClass: "PXEClient", ...overrides };
}

describe.skipIf(!havePcaps)("ProxyDHCP rules on the reference captures", () => {
  let requests: CapturedRequest[] = [];
  beforeAll(() => {
    requests = loadRequests();
  });

  /** The first request in a capture matching a predicate on its listing. */
  function find(capture: string, pred: (l: ListedPacket, d: UdpDatagram) => boolean): CapturedRequest {
    const r = requests.find((x) => x.capture === capture && pred(x.listed, x.datagram));
    if (!r) throw new Error(`no such request in ${capture}`);
    return r;
  }
  const isIpxe = (l: ListedPacket) => listedHex(l, Opt.USER_CLASS) === Buffer.from("iPXE").toString("hex");

  it("reads firmware facts from every request, as the listings describe them", () => {
    let answered = 0;
    let ignored = 0;
    for (const { capture, datagram, listed, packet } of requests) {
      const where = `${capture} ${listed.type} xid=${listed.xid.toString(16)} to :${datagram.dstPort}`;
      const pxePort = datagram.dstPort === 4011;
      const vendor = Buffer.from(listedHex(listed, Opt.VENDOR_CLASS) ?? "", "hex").toString("latin1");
      const bootRequest = /^(PXEClient|HTTPClient)/.test(vendor);
      const served = bootRequest && listed.type === (pxePort ? "REQUEST" : "DISCOVER");
      const facts = readFirmwareFacts(packet, pxePort);
      if (!served) {
        expect(facts, where).toBeNull();
        ignored++;
        continue;
      }
      answered++;
      const arch = listedHex(listed, Opt.CLIENT_ARCH);
      const uuid = listedHex(listed, Opt.CLIENT_UUID);
      expect(facts, where).toEqual({
        mac: listed.chaddr,
        arch: arch === undefined ? undefined : Number.parseInt(arch.slice(0, 4), 16),
        httpClient: vendor.startsWith("HTTPClient"),
        ipxe: isIpxe(listed),
        uuid: uuid === undefined ? undefined : Buffer.from(uuid.slice(2), "hex"),
        pxePort,
        giaddr: "0.0.0.0",
      });
    }
    // The captures hold DISCOVERs on 67, REQUESTs on 4011, and traffic we must leave alone.
    expect(answered).toBeGreaterThanOrEqual(8);
    expect(ignored).toBeGreaterThanOrEqual(8);
  });

  it("ignores the client's REQUEST to the site server on 67, and says why", () => {
    const r = find("uefi-proxy.dhcp.pcap", (l, d) => l.type === "REQUEST" && d.dstPort === 67);
    expect(inspectRequest(r.packet, false)).toEqual({ ok: false, reason: "unsupported-message" });
    const linux = find("uefi-proxy.dhcp.pcap", (l) => !listedHex(l, Opt.VENDOR_CLASS)?.startsWith(Buffer.from("PXE").toString("hex")));
    expect(inspectRequest(linux.packet, false)).toEqual({ ok: false, reason: "not-pxe" });
  });

  it("answers a BIOS DISCOVER with a PXE10 offer: siaddr + file, option 43 discovery control", () => {
    const r = find("bios-proxy.dhcp.pcap", (l) => l.type === "DISCOVER");
    const req = r.packet;
    const answer = offer({ firmware: "bios", bootFile: "undionly.kpxe", pxeDiscoveryControl: true });
    const reply = decodeDhcp(encodeDhcp(buildProxyReply(req, answer, SERVER)));

    expect(reply.op).toBe(2);
    expect([reply.xid, reply.flags, reply.htype, reply.hlen]).toEqual([req.xid, req.flags, req.htype, req.hlen]);
    expect(reply.chaddr).toEqual(req.chaddr);
    expect(reply.yiaddr).toBe("0.0.0.0");
    expect(reply.ciaddr).toBe("0.0.0.0");
    expect(reply.siaddr).toBe(SERVER);
    expect(reply.giaddr).toBe(req.giaddr);
    expect(reply.file).toBe(answer.bootFile);
    expect(msgType(reply)).toBe(MessageType.OFFER);
    expect([...reply.options.keys()]).toEqual([Opt.MESSAGE_TYPE, Opt.SERVER_ID, Opt.VENDOR_CLASS, Opt.CLIENT_UUID, Opt.VENDOR_SPECIFIC, Opt.BOOTFILE]);
    expect(reply.options.get(Opt.SERVER_ID)).toEqual(Buffer.from(SERVER.split(".").map(Number)));
    expect(reply.options.get(Opt.VENDOR_CLASS)!.toString()).toBe("PXEClient");
    expect(reply.options.get(Opt.CLIENT_UUID)).toEqual(req.options.get(Opt.CLIENT_UUID));
    expect(vendorSubOptions(reply)).toEqual(new Map([[6, Buffer.from([8])]]));
    expect(reply.options.get(Opt.VENDOR_SPECIFIC)!.at(-1)).toBe(Opt.END);
    expect(reply.options.get(Opt.BOOTFILE)!.toString()).toBe(answer.bootFile);
    expect(replyDestination(req, false, { address: r.datagram.src, port: r.datagram.srcPort })).toEqual({
      address: "255.255.255.255",
      port: 68,
    });
  });

  it("answers a UEFI x64 DISCOVER with siaddr + file and no option 43", () => {
    const r = find("uefi-proxy.dhcp.pcap", (l, d) => l.type === "DISCOVER" && d.dstPort === 67 && !isIpxe(l));
    const facts = readFirmwareFacts(r.packet, false)!;
    expect(facts.arch).toBe(7);
    expect(facts.ipxe).toBe(false);
    const answer = offer({ bootFile: "ipxe.efi" });
    const built = buildProxyReply(r.packet, answer, SERVER);
    const bytes = encodeDhcp(built);
    const reply = decodeDhcp(bytes);
    expect(reply).toEqual(built);
    expect(msgType(reply)).toBe(MessageType.OFFER);
    expect(reply.yiaddr).toBe("0.0.0.0");
    expect(reply.siaddr).toBe(SERVER);
    expect(reply.xid).toBe(r.listed.xid);
    expect(reply.options.has(Opt.VENDOR_SPECIFIC)).toBe(false);
    for (const code of LEASE_OPTIONS) expect(reply.options.has(code), `option ${code}`).toBe(false);
    expect(reply.options.get(Opt.CLIENT_UUID)!.toString("hex")).toBe(listedHex(r.listed, Opt.CLIENT_UUID));
    // `file` is NUL-terminated on the wire.
    expect(bytes.subarray(108, 108 + answer.bootFile.length + 1).toString("latin1")).toBe(`${answer.bootFile}\0`);
    expect(reply.options.get(Opt.BOOTFILE)!.toString()).toBe(answer.bootFile);
  });

  it("ACKs the UEFI boot server REQUEST on 4011, unicast back to the sender", () => {
    const r = find("uefi-proxy.dhcp.pcap", (l, d) => d.dstPort === 4011 && !isIpxe(l));
    const facts = readFirmwareFacts(r.packet, true)!;
    expect(facts.pxePort).toBe(true);
    const answer = offer({ bootFile: "ipxe.efi" });
    const reply = decodeDhcp(encodeDhcp(buildProxyReply(r.packet, answer, SERVER)));
    expect(msgType(reply)).toBe(MessageType.ACK);
    expect(reply.xid).toBe(r.listed.xid);
    expect(reply.ciaddr).toBe(r.packet.ciaddr);
    expect(reply.yiaddr).toBe("0.0.0.0");
    expect(reply.siaddr).toBe(SERVER);
    expect(reply.file).toBe(answer.bootFile);
    expect(reply.options.get(Opt.SERVER_ID)).toEqual(Buffer.from(SERVER.split(".").map(Number)));
    expect(reply.options.get(Opt.VENDOR_CLASS)!.toString()).toBe("PXEClient");
    expect(reply.options.get(Opt.CLIENT_UUID)).toEqual(r.packet.options.get(Opt.CLIENT_UUID));
    expect(reply.options.has(Opt.VENDOR_SPECIFIC)).toBe(false);
    const from = { address: r.datagram.src, port: r.datagram.srcPort };
    expect(replyDestination(r.packet, true, from)).toEqual(from);
  });

  it("recognises iPXE by its raw user class and offers it an HTTP URL", () => {
    const r = find("uefi-proxy.dhcp.pcap", (l) => l.type === "DISCOVER" && isIpxe(l));
    const facts = readFirmwareFacts(r.packet, false)!;
    expect(facts.ipxe).toBe(true);
    const answer = offer({ firmware: "ipxe", bootFile: `http://${SERVER}:8080/boot/${facts.mac}.ipxe` });
    const reply = decodeDhcp(encodeDhcp(buildProxyReply(r.packet, answer, SERVER)));
    expect(reply.file).toBe(answer.bootFile);
    expect(reply.options.get(Opt.BOOTFILE)!.toString()).toBe(answer.bootFile);
  });

  it("also recognises an RFC 3004 framed iPXE user class, but not a look-alike", () => {
    const base = find("uefi-proxy.dhcp.pcap", (l) => l.type === "DISCOVER" && isIpxe(l)).packet;
    const framed = { ...base, options: new Map(base.options).set(Opt.USER_CLASS, Buffer.from("\x04iPXE\x03foo", "latin1")) };
    expect(readFirmwareFacts(framed, false)!.ipxe).toBe(true);
    const other = { ...base, options: new Map(base.options).set(Opt.USER_CLASS, Buffer.from("iPXE2")) };
    expect(readFirmwareFacts(other, false)!.ipxe).toBe(false);
  });

  it("answers UEFI HTTP Boot with option 60 HTTPClient and an http URL in file", () => {
    const base = find("uefi-proxy.dhcp.pcap", (l, d) => l.type === "DISCOVER" && d.dstPort === 67 && !isIpxe(l)).packet;
    const options = new Map(base.options)
      .set(Opt.VENDOR_CLASS, Buffer.from("HTTPClient:Arch:00016:UNDI:003000"))
      .set(Opt.CLIENT_ARCH, Buffer.from([0, 16]));
    const req = { ...base, options };
    const facts = readFirmwareFacts(req, false)!;
    expect(facts.httpClient).toBe(true);
    expect(facts.arch).toBe(16);
    const answer = offer({ firmware: "uefi-http", vendorClass: "HTTPClient", bootFile: `http://${SERVER}:8080/boot/ipxe.efi` });
    const reply = decodeDhcp(encodeDhcp(buildProxyReply(req, answer, SERVER)));
    expect(reply.options.get(Opt.VENDOR_CLASS)!.toString()).toBe("HTTPClient");
    expect(reply.file).toBe(answer.bootFile);
    expect(reply.options.has(Opt.VENDOR_SPECIFIC)).toBe(false);
  });

  it("keeps giaddr for a relayed DISCOVER and sends the offer to the relay on 67", () => {
    const base = find("bios-proxy.dhcp.pcap", (l) => l.type === "DISCOVER").packet;
    const relayed: DhcpPacket = { ...base, giaddr: "198.51.100.254", hops: 1 };
    const facts = readFirmwareFacts(relayed, false)!;
    expect(facts.giaddr).toBe(relayed.giaddr);
    const reply = buildProxyReply(relayed, offer({ firmware: "bios", bootFile: "undionly.kpxe", pxeDiscoveryControl: true }), SERVER);
    expect(reply.giaddr).toBe(relayed.giaddr);
    expect(reply.hops).toBe(0);
    expect(replyDestination(relayed, false, { address: relayed.giaddr, port: 67 })).toEqual({ address: relayed.giaddr, port: 67 });
  });

  it("falls back to the architecture in option 60 when option 93 is missing", () => {
    const base = find("uefi-proxy.dhcp.pcap", (l, d) => l.type === "DISCOVER" && d.dstPort === 67 && !isIpxe(l)).packet;
    const options = new Map(base.options);
    options.delete(Opt.CLIENT_ARCH);
    const vendor = options.get(Opt.VENDOR_CLASS)!.toString();
    expect(readFirmwareFacts({ ...base, options }, false)!.arch).toBe(archFromVendorClass(vendor));
    expect(archFromVendorClass(vendor)).toBe(Number(/Arch:(\d+)/.exec(vendor)![1]));
    expect(archFromVendorClass("PXEClient")).toBeUndefined();
    expect(archFromVendorClass("HTTPClient:Arch:00019")).toBe(19);
  });

  it("puts a boot file longer than the file field in option 67 only", () => {
    const r = find("uefi-proxy.dhcp.pcap", (l) => l.type === "DISCOVER" && isIpxe(l));
    const url = `http://${SERVER}:8080/boot/${"a".repeat(300)}.ipxe`;
    const bytes = encodeDhcp(buildProxyReply(r.packet, offer({ firmware: "ipxe", bootFile: url }), SERVER));
    const reply = decodeDhcp(bytes);
    expect(reply.file).toBe("");
    expect(reply.options.get(Opt.BOOTFILE)!.toString()).toBe(url);
    const limit = offer({ bootFile: "f".repeat(127) });
    expect(buildProxyReply(r.packet, limit, SERVER).file).toBe(limit.bootFile);
    expect(buildProxyReply(r.packet, { ...limit, bootFile: "f".repeat(128) }, SERVER).file).toBe("");
  });
});

describe("ProxyDHCP rules on hand-made packets", () => {
  function request(overrides: Partial<DhcpPacket> = {}, options: [number, Buffer][] = []): DhcpPacket {
    return {
      op: 1,
      htype: 1,
      hlen: 6,
      hops: 0,
      xid: 0x01020304,
      secs: 0,
      flags: 0,
      ciaddr: "0.0.0.0",
      yiaddr: "0.0.0.0",
      siaddr: "0.0.0.0",
      giaddr: "0.0.0.0",
      chaddr: Buffer.from("aabbccddeeff" + "00".repeat(10), "hex"),
      sname: "",
      file: "",
      options: new Map<number, Buffer>([
        [Opt.MESSAGE_TYPE, Buffer.from([MessageType.DISCOVER])],
        [Opt.VENDOR_CLASS, Buffer.from("PXEClient:Arch:00000:UNDI:002001")],
        ...options,
      ]),
      ...overrides,
    };
  }

  it("answers nothing that is not a PXE or HTTP boot request", () => {
    expect(readFirmwareFacts(request(), false)).not.toBeNull();
    expect(readFirmwareFacts(request({ op: 2 }), false)).toBeNull();
    expect(readFirmwareFacts(request({}, [[Opt.VENDOR_CLASS, Buffer.from("MSFT 5.0")]]), false)).toBeNull();
    expect(readFirmwareFacts(request({}, [[Opt.VENDOR_CLASS, Buffer.from("pxeclient")]]), false)).toBeNull();
    expect(readFirmwareFacts(request({ hlen: 8 }), false)).toBeNull();
    const noVendor = request();
    noVendor.options.delete(Opt.VENDOR_CLASS);
    expect(readFirmwareFacts(noVendor, false)).toBeNull();
    // A DISCOVER on 4011 and an INFORM anywhere are not part of the exchange we serve.
    expect(readFirmwareFacts(request(), true)).toBeNull();
    expect(readFirmwareFacts(request({}, [[Opt.MESSAGE_TYPE, Buffer.from([MessageType.INFORM])]]), true)).toBeNull();
  });

  it("sends a relayed 4011 request back to the sender, and a 4011 request from 0.0.0.0 to broadcast", () => {
    const req = request({ giaddr: "198.51.100.254" }, [[Opt.MESSAGE_TYPE, Buffer.from([MessageType.REQUEST])]]);
    expect(replyDestination(req, true, { address: "203.0.113.9", port: 4011 })).toEqual({ address: "203.0.113.9", port: 4011 });
    expect(replyDestination(req, true, { address: "0.0.0.0", port: 68 })).toEqual({ address: "255.255.255.255", port: 68 });
  });

  it("omits option 97 when the client did not send it, and echoes it byte for byte when it did", () => {
    expect(buildProxyReply(request(), offer(), SERVER).options.has(Opt.CLIENT_UUID)).toBe(false);
    const odd = Buffer.from([0, 1, 2, 3]); // malformed, but echoing is the client's business
    expect(buildProxyReply(request({}, [[Opt.CLIENT_UUID, odd]]), offer(), SERVER).options.get(Opt.CLIENT_UUID)).toEqual(odd);
  });

  it("rejects a server address that is not IPv4", () => {
    expect(() => buildProxyReply(request(), offer(), "fe80::1")).toThrow(/IPv4/);
  });
});

/**
 * The DHCP and TFTP codecs under 100,000+ random and mutated packets each
 * (mutations of the firmware captures in ../shared/reference/pcap when
 * present). Whatever arrives, a decoder returns a packet or throws its own
 * DecodeError — nothing else — and it agrees with well-formedness predicates
 * written from the RFCs (test/helpers/fuzz.ts). What the servers do next with
 * an accepted packet (name guard, option negotiation, the ProxyDHCP reply)
 * must not throw either and must keep its invariants.
 *
 * Seeded: a failure names the seed; `FUZZ_SEED=<n> npm test -- fuzz-codecs` replays it.
 */
import { isDeepStrictEqual } from "node:util";
import { describe, expect, it } from "vitest";
import { DhcpDecodeError, Opt, clientArch, clientUuid, decodeDhcp, encodeDhcp, fitsFixedField, msgType, userClasses, vendorClass, vendorSubOptions, type DhcpPacket } from "../../src/dhcp/codec.js";
import { buildProxyReply, inspectRequest, type DhcpOffer } from "../../src/dhcp/proxy.js";
import { TftpDecodeError, decodePacket, encodeAck, encodeData, encodeOack, encodeRequest, type TftpPacket } from "../../src/tftp/codec.js";
import { checkRequestName } from "../../src/tftp/names.js";
import { MAX_BLKSIZE, MIN_BLKSIZE, negotiate } from "../../src/tftp/options.js";
import { DHCP_MUTATORS, Rng, TFTP_MUTATORS, dhcpCorpus, dhcpWellFormed, fuzzSeed, mutate, randomDhcp, randomTftp, tftpCorpus, tftpWellFormed } from "../helpers/fuzz.js";
import { haveReference, referenceDir } from "../helpers/reference.js";

const PACKETS = 100_000;
const SEED = fuzzSeed();
const SERVER = "192.0.2.1";

/** The whole failure context: replaying needs the seed, diagnosing needs the packet. */
class FuzzFailure extends Error {
  constructor(what: string, index: number, packet: Buffer | string, cause?: unknown) {
    const shown = typeof packet === "string" ? JSON.stringify(packet) : packet.toString("hex");
    super(`${what}\n  seed ${SEED} (replay: FUZZ_SEED=${SEED}), packet #${index}: ${shown}${cause ? `\n  cause: ${String((cause as Error).stack ?? cause)}` : ""}`);
  }
}

function check(ok: boolean, what: string, index: number, packet: Buffer | string): void {
  if (!ok) throw new FuzzFailure(what, index, packet);
}

// The captures, when the reference material is present; without it the
// synthetic seeds below still drive every mutator.
const pcapDir = referenceDir("pcap");
// Outside CI a missing reference only narrows the corpus (haveReference prints why); under CI it fails.
const haveCaptures = haveReference("pcap");

function syntheticDhcpSeeds(): Buffer[] {
  const base: DhcpPacket = {
    op: 1,
    htype: 1,
    hlen: 6,
    hops: 0,
    xid: 0x12345678,
    secs: 4,
    flags: 0x8000,
    ciaddr: "0.0.0.0",
    yiaddr: "0.0.0.0",
    siaddr: "0.0.0.0",
    giaddr: "0.0.0.0",
    chaddr: Buffer.from("525400123456" + "00".repeat(10), "hex"),
    sname: "",
    file: "",
    options: new Map([
      [Opt.MESSAGE_TYPE, Buffer.from([1])],
      [Opt.PARAM_REQUEST_LIST, Buffer.from([1, 3, 6, 43, 60, 66, 67, 97])],
      [Opt.CLIENT_ARCH, Buffer.from([0, 7])],
      [Opt.CLIENT_NDI, Buffer.from([1, 3, 16])],
      [Opt.CLIENT_UUID, Buffer.concat([Buffer.from([0]), Buffer.alloc(16, 0xab)])],
      [Opt.VENDOR_CLASS, Buffer.from("PXEClient:Arch:00007:UNDI:003016")],
    ]),
  };
  const ipxe = { ...base, options: new Map([...base.options, [Opt.USER_CLASS, Buffer.from("iPXE")], [175, Buffer.from([0x13, 1, 1])]]) };
  const request4011 = { ...base, ciaddr: "192.0.2.50", options: new Map([...base.options, [Opt.MESSAGE_TYPE, Buffer.from([3])]]) };
  return [base, ipxe, request4011].map(encodeDhcp);
}

const OFFER: DhcpOffer = { kind: "offer", firmware: "uefi", bootFile: "ipxe.efi", pxeDiscoveryControl: true, vendorClass: "PXEClient" };

describe(`codec fuzzing (seed ${SEED}; replay with FUZZ_SEED=${SEED})`, () => {
  it(`DHCP: ${PACKETS} random and mutated packets decode or throw DhcpDecodeError, as the RFC predicate says`, () => {
    const rng = new Rng(SEED);
    const captures = haveCaptures ? dhcpCorpus(pcapDir) : { requests: [], all: [] };
    const corpus = [...captures.all, ...syntheticDhcpSeeds()];
    // Requests weigh more: they are what reaches the proxy logic.
    const seeds = [...corpus, ...captures.requests, ...captures.requests];
    const stats = { decoded: 0, rejected: 0, roundTripped: 0, answered: 0 };

    for (let i = 0; i < PACKETS; i++) {
      const packet = rng.chance(0.75) ? mutate(rng, rng.pick(seeds), corpus, DHCP_MUTATORS) : rng.chance(0.7) ? randomDhcp(rng) : rng.bytes(rng.int(700));
      const wellFormed = dhcpWellFormed(packet);
      let decoded: DhcpPacket;
      try {
        decoded = decodeDhcp(packet);
      } catch (err) {
        if (!(err instanceof DhcpDecodeError)) throw new FuzzFailure(`decodeDhcp threw ${(err as Error)?.name}, not DhcpDecodeError`, i, packet, err);
        check(!wellFormed, `decodeDhcp rejected a well-formed packet: ${err.message}`, i, packet);
        stats.rejected++;
        continue;
      }
      check(wellFormed, "decodeDhcp accepted a packet the RFC predicate calls malformed", i, packet);
      stats.decoded++;
      try {
        // The typed readers the server uses on every accepted packet.
        msgType(decoded);
        vendorClass(decoded);
        userClasses(decoded);
        clientArch(decoded);
        clientUuid(decoded);
        vendorSubOptions(decoded);
      } catch (err) {
        throw new FuzzFailure("an option reader threw", i, packet, err);
      }

      if (fitsFixedField(decoded.sname, 64) && fitsFixedField(decoded.file, 128)) {
        const again = decodeDhcp(encodeDhcp(decoded));
        check(isDeepStrictEqual(again, decoded), "decode(encode(p)) differs from p", i, packet);
        stats.roundTripped++;
      }

      for (const pxePort of [false, true]) {
        let verdict: ReturnType<typeof inspectRequest>;
        try {
          verdict = inspectRequest(decoded, pxePort);
        } catch (err) {
          throw new FuzzFailure("inspectRequest threw", i, packet, err);
        }
        if (!verdict.ok) continue;
        stats.answered++;
        let reply: DhcpPacket;
        try {
          reply = decodeDhcp(encodeDhcp(buildProxyReply(decoded, OFFER, SERVER)));
        } catch (err) {
          throw new FuzzFailure("building or encoding the ProxyDHCP reply threw", i, packet, err);
        }
        check(reply.op === 2 && reply.xid === decoded.xid && reply.chaddr.equals(decoded.chaddr), "reply header does not match the request", i, packet);
        check(reply.yiaddr === "0.0.0.0" && reply.siaddr === SERVER, "reply offers an address or lacks siaddr", i, packet);
        check(![1, 3, 6, 51, 52].some((c) => reply.options.has(c)), "reply carries an address option", i, packet);
        check(reply.options.get(Opt.SERVER_ID)?.equals(Buffer.from([192, 0, 2, 1])) === true, "reply lacks option 54", i, packet);
        const uuid = decoded.options.get(Opt.CLIENT_UUID);
        check(uuid === undefined || reply.options.get(Opt.CLIENT_UUID)?.equals(uuid) === true, "option 97 not echoed byte for byte", i, packet);
        check(reply.file === "ipxe.efi" && reply.options.get(Opt.BOOTFILE)?.toString() === "ipxe.efi", "boot file missing", i, packet);
      }
    }
    // The fuzzer must reach every layer, or a green run proves little.
    expect(stats.rejected, JSON.stringify(stats)).toBeGreaterThan(PACKETS / 10);
    expect(stats.decoded, JSON.stringify(stats)).toBeGreaterThan(PACKETS / 10);
    expect(stats.roundTripped, JSON.stringify(stats)).toBeGreaterThan(PACKETS / 20);
    expect(stats.answered, JSON.stringify(stats)).toBeGreaterThan(PACKETS / 100);
  });

  it(`TFTP: ${PACKETS} random and mutated packets decode or throw TftpDecodeError, as the RFC predicate says`, () => {
    const rng = new Rng(SEED ^ 0x7f7f7f7f);
    const corpus = tftpCorpus(["ipxe.efi", "undionly.kpxe", "grub/grub.cfg"]);
    const limits = { maxBlksize: MAX_BLKSIZE, maxWindowsize: 64 };
    const stats = { decoded: 0, rejected: 0, requests: 0, namesAccepted: 0 };

    for (let i = 0; i < PACKETS; i++) {
      const packet = rng.chance(0.75) ? mutate(rng, rng.pick(corpus), corpus, TFTP_MUTATORS) : randomTftp(rng);
      const wellFormed = tftpWellFormed(packet);
      let p: TftpPacket;
      try {
        p = decodePacket(packet);
      } catch (err) {
        if (!(err instanceof TftpDecodeError)) throw new FuzzFailure(`decodePacket threw ${(err as Error)?.name}, not TftpDecodeError`, i, packet, err);
        check(!wellFormed, `decodePacket rejected a well-formed packet: ${err.message}`, i, packet);
        stats.rejected++;
        continue;
      }
      check(wellFormed, "decodePacket accepted a packet the RFC predicate calls malformed", i, packet);
      stats.decoded++;

      try {
        switch (p.op) {
          case "rrq":
          case "wrq": {
            stats.requests++;
            const again = decodePacket(encodeRequest(p.op, p.filename, p.mode, p.options.values()));
            check(isDeepStrictEqual(again, p), "request does not survive encode/decode", i, packet);
            const name = checkRequestName(p.filename);
            if (name.ok) {
              stats.namesAccepted++;
              expectPlainName(name.name, i, packet);
            }
            const n = negotiate(p.options, 1_000_000, limits);
            check(n.blksize >= MIN_BLKSIZE && n.blksize <= MAX_BLKSIZE && Number.isInteger(n.blksize), `blksize ${n.blksize} out of range`, i, packet);
            check(n.windowsize >= 1 && n.windowsize <= limits.maxWindowsize && Number.isInteger(n.windowsize), `windowsize ${n.windowsize} out of range`, i, packet);
            check(n.timeoutMs === undefined || (n.timeoutMs >= 1000 && n.timeoutMs <= 255_000), `timeout ${n.timeoutMs} out of range`, i, packet);
            check(n.oack.every((o) => p.options.has(o.name.toLowerCase())), "OACK acknowledges an option the client did not ask", i, packet);
            // The OACK is what goes on the wire: it must encode.
            if (n.oack.length > 0) encodeOack(n.oack);
            break;
          }
          case "data":
            check(encodeData(p.block, p.data).equals(packet), "DATA does not re-encode byte for byte", i, packet);
            break;
          case "ack":
            check(encodeAck(p.block).equals(packet.subarray(0, 4)), "ACK does not re-encode", i, packet);
            break;
          case "oack": {
            const again = decodePacket(encodeOack(p.options.values()));
            check(isDeepStrictEqual(again, p), "OACK does not survive encode/decode", i, packet);
            break;
          }
          case "error":
            check(Number.isInteger(p.code) && p.code >= 0 && p.code <= 0xffff, "error code is not a uint16", i, packet);
            break;
        }
      } catch (err) {
        if (err instanceof FuzzFailure) throw err;
        throw new FuzzFailure(`handling a decoded ${p.op} threw`, i, packet, err);
      }
    }
    expect(stats.rejected, JSON.stringify(stats)).toBeGreaterThan(PACKETS / 10);
    expect(stats.decoded, JSON.stringify(stats)).toBeGreaterThan(PACKETS / 10);
    expect(stats.requests, JSON.stringify(stats)).toBeGreaterThan(PACKETS / 20);
    expect(stats.namesAccepted, JSON.stringify(stats)).toBeGreaterThan(PACKETS / 100);
  });

  it(`TFTP name guard: ${PACKETS} hostile names are refused or come out plain relative names`, () => {
    const rng = new Rng(SEED ^ 0x2e2e2f2f);
    // Traversal material: dots, separators, escapes in any case, NUL and other controls, look-alikes.
    const atoms = [".", "..", "/", "//", "\\", "%2e", "%2E", "%2f", "%5c", "%25", "%252e", "%00", "\0", "\x7f", "\u0085", "\ufffd", "．", "∕", "a", "b.efi", "ipxe.efi", "grub", "C:", " ", "~"];
    let accepted = 0;
    for (let i = 0; i < PACKETS; i++) {
      let raw = "";
      for (let n = rng.range(1, 10); n > 0; n--) raw += rng.pick(atoms);
      let r: ReturnType<typeof checkRequestName>;
      try {
        r = checkRequestName(raw);
      } catch (err) {
        throw new FuzzFailure("checkRequestName threw", i, raw, err);
      }
      if (!r.ok) continue;
      accepted++;
      expectPlainName(r.name, i, raw);
    }
    expect(accepted).toBeGreaterThan(PACKETS / 100);
  });
});

/** What the guard promises for a name it lets through, checked from the outside. */
function expectPlainName(name: string, index: number, packet: Buffer | string): void {
  check(name.length > 0 && !name.startsWith("/"), `accepted name ${JSON.stringify(name)} is absolute or empty`, index, packet);
  check(!name.split("/").some((s) => s === "" || s === "." || s === ".."), `accepted name ${JSON.stringify(name)} has a dot or empty segment`, index, packet);
  check(!name.includes("\\"), `accepted name ${JSON.stringify(name)} has a backslash`, index, packet);
  check(!/%[0-9a-f]{2}/i.test(name), `accepted name ${JSON.stringify(name)} has a percent escape`, index, packet);
  check(!/[\u0000-\u001f\u007f-\u009f]/.test(name), `accepted name ${JSON.stringify(name)} has a control character`, index, packet);
}

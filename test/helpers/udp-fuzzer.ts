/**
 * Sends seeded random and mutated DHCP or TFTP packets at a bounded rate to a
 * running server, usually from a client network namespace, records every
 * reply, and prints one JSON summary line (UdpFuzzReport) when done:
 *
 *   node dist/test/helpers/udp-fuzzer.js --kind dhcp --server A --seed N --count N --pcap DIR
 *   node dist/test/helpers/udp-fuzzer.js --kind tftp --server A --seed N --count N --served a,b
 *        [--batch 50] [--tick-ms 10] [--linger-ms 1500]
 *
 * DHCP: 4 of 5 packets go broadcast to port 67, the rest unicast to 4011,
 * all from port 68 (where broadcast replies arrive). Each packet long enough
 * gets a unique xid, so every reply names the one packet it answers.
 * TFTP: packets go to port 69; one in ten goes to the port of a transfer the
 * server opened (a TID learnt from its replies), to reach the transfer's own
 * decoder. Nothing is ever acknowledged on purpose.
 */
import dgram from "node:dgram";
import { parseArgs } from "node:util";
import { DHCP_MUTATORS, Rng, TFTP_MUTATORS, dhcpCorpus, dhcpWellFormed, mutate, randomDhcp, randomTftp, tftpCorpus, tftpReadRequest, tftpWellFormed } from "./fuzz.js";

export const XID_BASE = 0xf000_0000;

export interface DhcpReplyRecord {
  /** Index of the packet answered, from its xid. */
  seq: number;
  /** Port that packet was sent to (67 or 4011). */
  to: number;
  request: string;
  reply: string;
  from: string;
}

export interface DhcpFuzzReport {
  kind: "dhcp";
  seed: number;
  sent: number;
  /** Packets the RFC predicate calls malformed. */
  malformed: number;
  byPort: Record<string, number>;
  replies: DhcpReplyRecord[];
  /** Replies whose xid names no packet we sent. */
  unmatched: Array<{ reply: string; from: string }>;
  sendErrors: number;
}

export interface TftpFuzzReport {
  kind: "tftp";
  seed: number;
  sent: number;
  toListener: { sent: number; malformed: number; requests: number; readRequests: number };
  toTids: { sent: number; malformed: number };
  /** Replies from port 69, by opcode; anything but ERROR is kept in `listenerNonError` (hex). */
  listenerReplies: Record<string, number>;
  listenerNonError: string[];
  /** Transfer ports that answered, and their replies by opcode. */
  tids: number;
  tidReplies: Record<string, number>;
  /** Replies that are not well-formed TFTP at all (hex, first 20). */
  garbage: string[];
  sendErrors: number;
}

export type UdpFuzzReport = DhcpFuzzReport | TftpFuzzReport;

const { values } = parseArgs({
  options: {
    kind: { type: "string" },
    server: { type: "string" },
    seed: { type: "string" },
    count: { type: "string" },
    pcap: { type: "string" },
    served: { type: "string", default: "" },
    batch: { type: "string", default: "50" },
    "tick-ms": { type: "string", default: "10" },
    "linger-ms": { type: "string", default: "1500" },
  },
});
const server = values.server;
const seed = Number(values.seed);
const count = Number(values.count);
if ((values.kind !== "dhcp" && values.kind !== "tftp") || !server || !Number.isInteger(seed) || !(count > 0) || (values.kind === "dhcp" && !values.pcap)) {
  process.stderr.write("usage: udp-fuzzer --kind dhcp|tftp --server A --seed N --count N [--pcap DIR] [--served a,b]\n");
  process.exit(2);
}
const batch = Number(values.batch);
const tickMs = Number(values["tick-ms"]);
const lingerMs = Number(values["linger-ms"]);
const rng = new Rng(seed);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function open(port: number): Promise<dgram.Socket> {
  const socket = dgram.createSocket("udp4");
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.bind({ address: "0.0.0.0", port }, () => {
      socket.off("error", reject);
      resolve();
    });
  });
  socket.setBroadcast(true);
  // Room for bursts of replies while we are busy sending.
  socket.setRecvBufferSize(8 << 20);
  return socket;
}

function sender(socket: dgram.Socket, counters: { sendErrors: number }) {
  return (buf: Buffer, port: number, address: string) =>
    new Promise<void>((resolve) => {
      socket.send(buf, port, address, (err) => {
        if (err) counters.sendErrors++;
        resolve();
      });
    });
}

async function fuzzDhcp(): Promise<DhcpFuzzReport> {
  const captures = dhcpCorpus(values.pcap!);
  const corpus = captures.all;
  const seeds = [...captures.all, ...captures.requests, ...captures.requests];
  if (seeds.length === 0) throw new Error(`no DHCP packets in ${values.pcap}`);
  const report: DhcpFuzzReport = { kind: "dhcp", seed, sent: 0, malformed: 0, byPort: { "67": 0, "4011": 0 }, replies: [], unmatched: [], sendErrors: 0 };
  const sentPackets: Buffer[] = [];
  const sentTo: number[] = [];
  const socket = await open(68);
  socket.on("message", (msg, rinfo) => {
    const from = `${rinfo.address}:${rinfo.port}`;
    const seq = msg.length >= 8 ? msg.readUInt32BE(4) - XID_BASE : -1;
    const request = seq >= 0 ? sentPackets[seq] : undefined;
    if (request) report.replies.push({ seq, to: sentTo[seq]!, request: request.toString("hex"), reply: msg.toString("hex"), from });
    else report.unmatched.push({ reply: msg.toString("hex"), from });
  });
  const send = sender(socket, report);
  for (let i = 0; i < count; ) {
    const sends: Promise<void>[] = [];
    for (let n = 0; n < batch && i < count; n++, i++) {
      const roll = rng.int(100);
      const packet = roll < 75 ? mutate(rng, rng.pick(seeds), corpus, DHCP_MUTATORS) : roll < 90 ? randomDhcp(rng) : rng.bytes(rng.int(700));
      if (packet.length >= 8) packet.writeUInt32BE(XID_BASE + i, 4);
      const port = rng.chance(0.8) ? 67 : 4011;
      sentPackets[i] = packet;
      sentTo[i] = port;
      report.sent++;
      report.byPort[String(port)]!++;
      if (!dhcpWellFormed(packet)) report.malformed++;
      sends.push(send(packet, port, port === 67 ? "255.255.255.255" : server!));
    }
    await Promise.all(sends);
    await sleep(tickMs);
  }
  await sleep(lingerMs);
  socket.close();
  return report;
}

async function fuzzTftp(): Promise<TftpFuzzReport> {
  const served = values.served!.split(",").filter(Boolean);
  const corpus = tftpCorpus(served);
  const report: TftpFuzzReport = {
    kind: "tftp",
    seed,
    sent: 0,
    toListener: { sent: 0, malformed: 0, requests: 0, readRequests: 0 },
    toTids: { sent: 0, malformed: 0 },
    listenerReplies: {},
    listenerNonError: [],
    tids: 0,
    tidReplies: {},
    garbage: [],
    sendErrors: 0,
  };
  const tids: number[] = [];
  const seenTids = new Set<number>();
  const socket = await open(0);
  socket.on("message", (msg, rinfo) => {
    const op = msg.length >= 2 ? String(msg.readUInt16BE(0)) : "short";
    if (!tftpWellFormed(msg) || !["3", "5", "6"].includes(op)) {
      if (report.garbage.length < 20) report.garbage.push(msg.toString("hex"));
    }
    if (rinfo.port === 69) {
      report.listenerReplies[op] = (report.listenerReplies[op] ?? 0) + 1;
      if (op !== "5" && report.listenerNonError.length < 20) report.listenerNonError.push(msg.toString("hex"));
      return;
    }
    report.tidReplies[op] = (report.tidReplies[op] ?? 0) + 1;
    if (!seenTids.has(rinfo.port)) {
      seenTids.add(rinfo.port);
      tids.push(rinfo.port);
      if (tids.length > 32) tids.shift();
    }
  });
  const send = sender(socket, report);
  for (let i = 0; i < count; ) {
    const sends: Promise<void>[] = [];
    for (let n = 0; n < batch && i < count; n++, i++) {
      const packet = rng.chance(0.75) ? mutate(rng, rng.pick(corpus), corpus, TFTP_MUTATORS) : randomTftp(rng);
      const wellFormed = tftpWellFormed(packet);
      report.sent++;
      if (tids.length > 0 && rng.chance(0.1)) {
        report.toTids.sent++;
        if (!wellFormed) report.toTids.malformed++;
        sends.push(send(packet, rng.pick(tids), server!));
        continue;
      }
      report.toListener.sent++;
      if (!wellFormed) report.toListener.malformed++;
      else if (packet.readUInt16BE(0) <= 2) {
        report.toListener.requests++;
        const rrq = tftpReadRequest(packet);
        if (rrq && (rrq.mode === "octet" || rrq.mode === "netascii")) report.toListener.readRequests++;
      }
      sends.push(send(packet, 69, server!));
    }
    await Promise.all(sends);
    await sleep(tickMs);
  }
  await sleep(lingerMs);
  socket.close();
  report.tids = seenTids.size;
  return report;
}

try {
  const report = values.kind === "dhcp" ? await fuzzDhcp() : await fuzzTftp();
  process.stdout.write(`${JSON.stringify(report)}\n`);
} catch (err) {
  process.stderr.write(`udp-fuzzer: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
}

/**
 * ProxyDHCP load generator, run inside the client namespace:
 *   node dist/test/bench/dhcp-load.js --template HEX --macs N --mode rate --rate 1000 --seconds 10
 *   node dist/test/bench/dhcp-load.js --template HEX --macs N --mode closed --concurrency 32 --seconds 5
 * Sends the captured DISCOVER from 0.0.0.0:68 to 255.255.255.255:67, each
 * with a fresh xid and the next of N registered MACs, and matches broadcast
 * replies by xid. `rate`: a fixed schedule (open loop), latency per request;
 * what has no reply after the drain is lost. `closed`: keeps `concurrency`
 * requests outstanding to find how many per second are answered; one
 * unanswered for lossMs counts as lost and is replaced.
 * First a handshake (one request every 100 ms until a reply) and a warm-up
 * that is not counted. Prints one JSON line; exit 1 if the server never answers.
 */
import { randomInt } from "node:crypto";
import { createSocket } from "node:dgram";
import { parseArgs } from "node:util";
import { MessageType } from "../../src/dhcp/codec.js";
import { macBytes } from "../helpers/netns.js";
import { benchMacs, perMacRequests, replyInfo, withXid } from "./dhcp-packets.js";
import { percentileSorted } from "./stats.js";

const { values } = parseArgs({
  options: {
    template: { type: "string" },
    macs: { type: "string", default: "256" },
    mode: { type: "string", default: "rate" },
    rate: { type: "string", default: "1000" },
    concurrency: { type: "string", default: "32" },
    seconds: { type: "string", default: "10" },
    "drain-ms": { type: "string", default: "1000" },
    "loss-ms": { type: "string", default: "500" },
    warmup: { type: "string", default: "500" },
    "ready-ms": { type: "string", default: "10000" },
    to: { type: "string", default: "255.255.255.255:67" },
  },
});

const template = Buffer.from(values.template ?? "", "hex");
const macNames = benchMacs(Number(values.macs));
const macs = macNames.map(macBytes);
const requests = template.length >= 240 ? perMacRequests(template, macNames) : [];
const [toAddress = "", toPortText = ""] = values.to.split(":");
const toPort = Number(toPortText);
const seconds = Number(values.seconds);
if (template.length < 240 || macs.length === 0 || !toAddress || !toPort || !(seconds > 0) || !["rate", "closed"].includes(values.mode)) {
  process.stderr.write("usage: dhcp-load --template HEX --macs N --mode rate|closed [--rate R] [--concurrency C] --seconds S\n");
  process.exit(2);
}

export interface PhaseResult {
  sent: number;
  answered: number;
  lost: number;
  /** Replies to a request already answered. */
  duplicates: number;
  /** Replies that were not a BOOTREPLY OFFER for the MAC asked about. */
  bad: number;
  seconds: number;
  perSecond: number;
  latencyMs: { p50: number; p99: number; max: number };
}

interface Phase {
  pending: Map<number, { sentAt: bigint; mac: Buffer }>;
  answeredXids: Set<number>;
  latencies: number[];
  sent: number;
  answered: number;
  /** Answers received before the phase's end time (closed mode counts only these). */
  answeredInTime: number;
  lost: number;
  duplicates: number;
  bad: number;
  endAt: bigint;
  onAnswer: () => void;
}

const socket = createSocket({ type: "udp4" });
let phase: Phase | undefined;
let seq = 0;
const xidBase = randomInt(0x7fffffff);
const now = () => process.hrtime.bigint();

function newPhase(onAnswer: () => void = () => {}): Phase {
  return { pending: new Map(), answeredXids: new Set(), latencies: [], sent: 0, answered: 0, answeredInTime: 0, lost: 0, duplicates: 0, bad: 0, endAt: 0n, onAnswer };
}

function sendOne(p: Phase): void {
  const xid = (xidBase + seq) >>> 0;
  const mac = macs[seq % macs.length]!;
  const packet = withXid(requests[seq % requests.length]!, xid);
  seq++;
  p.pending.set(xid, { sentAt: now(), mac });
  p.sent++;
  socket.send(packet, toPort, toAddress);
}

socket.on("message", (msg) => {
  const t = now();
  const p = phase;
  const info = replyInfo(msg);
  if (!p || !info) return;
  const req = p.pending.get(info.xid);
  if (!req) {
    if (p.answeredXids.has(info.xid)) p.duplicates++;
    return; // a late answer to an earlier phase, or another client's
  }
  p.pending.delete(info.xid);
  p.answeredXids.add(info.xid);
  if (info.type !== MessageType.OFFER || !req.mac.equals(info.chaddr)) {
    p.bad++;
    return;
  }
  p.answered++;
  if (p.endAt === 0n || t <= p.endAt) p.answeredInTime++;
  p.latencies.push(Number(t - req.sentAt) / 1e6);
  p.onAnswer();
});

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function summary(p: Phase, secs: number, counted: number): PhaseResult {
  const sorted = Float64Array.from(p.latencies).sort();
  const arr = Array.from(sorted);
  return {
    sent: p.sent,
    answered: p.answered,
    lost: p.lost,
    duplicates: p.duplicates,
    bad: p.bad,
    seconds: secs,
    perSecond: counted / secs,
    latencyMs: { p50: percentileSorted(arr, 50), p99: percentileSorted(arr, 99), max: arr.at(-1) ?? Number.NaN },
  };
}

/** One request per 100 ms until the server answers (it may still be binding). */
async function handshake(readyMs: number): Promise<void> {
  const p = newPhase();
  phase = p;
  const deadline = Date.now() + readyMs;
  while (p.answered === 0) {
    if (Date.now() > deadline) throw new Error(`no reply within ${readyMs} ms (sent ${p.sent})`);
    sendOne(p);
    await sleep(100);
  }
}

/** `total` requests, `concurrency` at a time: JIT, ARP and caches warm on both sides. Not counted. */
async function warmUp(total: number, concurrency: number): Promise<void> {
  await closedLoop(concurrency, 5, total);
}

async function rateLoop(rate: number, secs: number, drainMs: number): Promise<PhaseResult> {
  const p = newPhase();
  phase = p;
  const total = Math.round(rate * secs);
  const t0 = now();
  await new Promise<void>((resolve) => {
    const tick = () => {
      const elapsed = Number(now() - t0) / 1e9;
      const due = Math.min(total, Math.floor(elapsed * rate) + 1);
      while (p.sent < due) sendOne(p);
      if (p.sent < total) setTimeout(tick, 1);
      else resolve();
    };
    tick();
  });
  const sentFor = Number(now() - t0) / 1e9;
  const drainUntil = Date.now() + drainMs;
  while (p.pending.size > 0 && Date.now() < drainUntil) await sleep(10);
  p.lost = p.pending.size;
  return summary(p, sentFor, p.answered);
}

async function closedLoop(concurrency: number, secs: number, maxRequests = Infinity, lossMs = 500, drainMs = 1000): Promise<PhaseResult> {
  const t0 = now();
  const endAt = t0 + BigInt(Math.round(secs * 1e9));
  const more = () => now() < endAt && p.sent < maxRequests;
  const p = newPhase(() => {
    if (more()) sendOne(p);
  });
  p.endAt = endAt;
  phase = p;
  const lossNs = BigInt(lossMs * 1e6);
  for (let i = 0; i < concurrency && more(); i++) sendOne(p);
  // Sweep: requests unanswered for lossMs are lost; their slot is reused.
  while (more() || (p.pending.size > 0 && now() < endAt)) {
    await sleep(50);
    const t = now();
    for (const [xid, r] of p.pending) {
      if (t - r.sentAt < lossNs) break; // Map order is send order
      p.pending.delete(xid);
      p.lost++;
      if (more()) sendOne(p);
    }
    if (p.sent >= maxRequests && p.pending.size === 0) break;
  }
  const drainUntil = Date.now() + drainMs;
  while (p.pending.size > 0 && Date.now() < drainUntil) await sleep(10);
  p.lost += p.pending.size;
  const elapsed = Math.min(secs, Number(now() - t0) / 1e9);
  return summary(p, elapsed, p.answeredInTime);
}

async function main(): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.bind({ address: "0.0.0.0", port: 68 }, () => {
      socket.off("error", reject);
      resolve();
    });
  });
  socket.setBroadcast(true);
  try {
    // Replies must not be dropped on our side: the measurement is the server's.
    socket.setRecvBufferSize(8 << 20);
  } catch {
    // capped by net.core.rmem_max: the kernel keeps what it allows
  }
  await handshake(Number(values["ready-ms"]));
  await warmUp(Number(values.warmup), 8);
  const result =
    values.mode === "rate"
      ? await rateLoop(Number(values.rate), seconds, Number(values["drain-ms"]))
      : await closedLoop(Number(values.concurrency), seconds, Infinity, Number(values["loss-ms"]), Number(values["drain-ms"]));
  process.stdout.write(`${JSON.stringify({ mode: values.mode, ...result })}\n`);
  socket.close();
}

main().catch((err: unknown) => {
  process.stderr.write(`dhcp-load: ${(err as Error).message}\n`);
  socket.close();
  process.exit(1);
});

/**
 * ProxyDHCP under load, ours against dnsmasq in proxy mode, one after the
 * other on the same namespaces: the server in <tag>-srv, the load generator
 * (dhcp-load.ts) in <tag>-cli, joined by a veth. Two measurements per server:
 * a fixed 1,000 DISCOVER/s schedule (latency, drops) and a closed loop with
 * 32 outstanding requests (DISCOVERs answered per second).
 */
import { join } from "node:path";
import { repoRoot } from "../helpers/reference.js";
import { startBenchDaemon } from "./bench-daemon.js";
import { publicDir, randomFile } from "./bench-files.js";
import type { PhaseResult as LoadResult } from "./dhcp-load.js";
import { benchMacs, uefiDiscover } from "./dhcp-packets.js";
import { createVethPair, udpCounters, type VethPair } from "../helpers/veth-pair.js";
import { cpuSeconds, onEmergency, runToEnd } from "./processes.js";
import { startDnsmasqProxy } from "./reference-servers.js";
import { fixed, ratio, type Row } from "./table.js";

export interface DhcpBenchOptions {
  work: string;
  /** Seconds of the fixed-rate run. */
  rateSeconds: number;
  /** Seconds of the closed-loop run. */
  maxSeconds: number;
  tag: string;
}

const RATE = 1000;
const CONCURRENCY = 32;
const MACHINES = 256;
/** dhcp-load's default warm-up, sent before each measured run. */
const WARMUP = 500;
export const P99_LIMIT_MS = 5;

interface ServerRun {
  rate: LoadResult;
  max: LoadResult;
  /** Server CPU seconds during each run (its warm-up included). */
  cpu: { rate: number; max: number };
  /** Datagrams the server namespace's kernel dropped for a full socket buffer during the runs. */
  rcvbufErrors: number;
}

export async function benchDhcp(o: DhcpBenchOptions, notes: string[]): Promise<Row[]> {
  const template = uefiDiscover();
  const macs = benchMacs(MACHINES);
  const net = await createVethPair({ tag: o.tag, subnet: "192.168.77" });
  const forget = onEmergency(net.remove);
  try {
    const load = (mode: "rate" | "closed") => runLoad(net, template, mode, mode === "rate" ? o.rateSeconds : o.maxSeconds);

    const dir = publicDir(join(o.work, "dhcp-daemon"));
    const kernel = join(dir, "vmlinuz");
    randomFile(kernel, 4096);
    const ours = await startBenchDaemon({ work: dir, address: net.server, interface: net.srvIf, dhcp: true, tftpPort: 69, httpPort: 8080, bootloadersDir: "/usr/lib/ipxe", kernel, macs, netns: net.srv });
    let oursRun: ServerRun;
    try {
      oursRun = await measure(net, ours.daemon.pid, load);
    } finally {
      await ours.stop();
    }

    const dnsmasq = await startDnsmasqProxy(publicDir(join(o.work, "dnsmasq")), net.srv, net.srvIf, "192.168.77.0");
    let refRun: ServerRun;
    try {
      refRun = await measure(net, dnsmasq.pid, load);
    } finally {
      await dnsmasq.stop();
    }

    const r = { ours: oursRun.rate, ref: refRun.rate };
    notes.push(
      `ProxyDHCP: the captured OVMF DISCOVER (arch 7) from ${MACHINES} registered MACs, distinct xids, node load generator in its own namespace; ` +
        `${RATE}/s for ${o.rateSeconds} s (after a ${WARMUP}-request warm-up), then ${CONCURRENCY} outstanding for ${o.maxSeconds} s. ` +
        `Ours: sent ${r.ours.sent}, answered ${r.ours.answered}, max ${fixed(r.ours.latencyMs.max, 2, "ms")}, server socket drops ${oursRun.rcvbufErrors}; ` +
        `dnsmasq 2.90: sent ${r.ref.sent}, answered ${r.ref.answered}, max ${fixed(r.ref.latencyMs.max, 2, "ms")}, server socket drops ${refRun.rcvbufErrors}. ` +
        `Server CPU per answered DISCOVER: at ${RATE}/s ours ${cpuPerRequest(oursRun.cpu.rate, r.ours)}, dnsmasq ${cpuPerRequest(refRun.cpu.rate, r.ref)}; ` +
        `closed loop ours ${cpuPerRequest(oursRun.cpu.max, oursRun.max)}, dnsmasq ${cpuPerRequest(refRun.cpu.max, refRun.max)}. ` +
        `Both log each answer (ours one JSON line at info to a pipe, dnsmasq one line to a file).`,
    );
    const unanswered = (x: LoadResult) => x.sent - x.answered;
    const drops = unanswered(r.ours);
    return [
      {
        measurement: `ProxyDHCP: DISCOVERs answered/s (${CONCURRENCY} outstanding)`,
        ours: fixed(oursRun.max.perSecond, 0, "/s"),
        reference: `dnsmasq ${fixed(refRun.max.perSecond, 0, "/s")}`,
        ratio: ratio(oursRun.max.perSecond, refRun.max.perSecond),
        target: "—",
        verdict: "",
      },
      {
        measurement: `ProxyDHCP at ${RATE.toLocaleString("en")}/s: p50 latency`,
        ours: fixed(r.ours.latencyMs.p50, 2, "ms"),
        reference: `dnsmasq ${fixed(r.ref.latencyMs.p50, 2, "ms")}`,
        ratio: ratio(r.ours.latencyMs.p50, r.ref.latencyMs.p50),
        target: "—",
        verdict: "",
      },
      {
        measurement: `ProxyDHCP at ${RATE.toLocaleString("en")}/s: p99 latency`,
        ours: fixed(r.ours.latencyMs.p99, 2, "ms"),
        reference: `dnsmasq ${fixed(r.ref.latencyMs.p99, 2, "ms")}`,
        ratio: ratio(r.ours.latencyMs.p99, r.ref.latencyMs.p99),
        target: `< ${P99_LIMIT_MS} ms`,
        verdict: r.ours.latencyMs.p99 < P99_LIMIT_MS ? "ok" : "MISSED",
      },
      {
        measurement: `ProxyDHCP at ${RATE.toLocaleString("en")}/s: unanswered`,
        ours: `${drops} of ${r.ours.sent}`,
        reference: `dnsmasq ${unanswered(r.ref)} of ${r.ref.sent}`,
        ratio: "—",
        target: "0",
        verdict: drops === 0 && r.ours.bad === 0 && r.ours.duplicates === 0 ? "ok" : "MISSED",
      },
    ];
  } finally {
    net.remove();
    forget();
  }
}

async function measure(net: VethPair, pid: number, load: (mode: "rate" | "closed") => Promise<LoadResult>): Promise<ServerRun> {
  const before = (await udpCounters(net.srv)).RcvbufErrors ?? 0;
  const cpu0 = cpuSeconds(pid);
  const rate = await load("rate");
  const cpu1 = cpuSeconds(pid);
  const max = await load("closed");
  const cpu2 = cpuSeconds(pid);
  return { rate, max, cpu: { rate: cpu1 - cpu0, max: cpu2 - cpu1 }, rcvbufErrors: ((await udpCounters(net.srv)).RcvbufErrors ?? 0) - before };
}

/** CPU per request in microseconds, the warm-up's requests included. */
function cpuPerRequest(cpuSeconds: number, r: LoadResult): string {
  return `${((cpuSeconds / (r.answered + WARMUP)) * 1e6).toFixed(0)} µs`;
}

async function runLoad(net: VethPair, template: Buffer, mode: "rate" | "closed", seconds: number): Promise<LoadResult> {
  const script = join(repoRoot(), "dist", "test", "bench", "dhcp-load.js");
  const args = [script, "--template", template.toString("hex"), "--macs", String(MACHINES), "--warmup", String(WARMUP), "--mode", mode, "--seconds", String(seconds)];
  args.push(...(mode === "rate" ? ["--rate", String(RATE)] : ["--concurrency", String(CONCURRENCY)]));
  const r = await runToEnd(process.execPath, args, { netns: net.cli, timeoutMs: (seconds + 30) * 1000 });
  if (r.code !== 0) throw new Error(`dhcp-load (${mode}) failed: exit ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as LoadResult;
}

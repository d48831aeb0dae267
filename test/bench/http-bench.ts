/**
 * HTTP throughput on loopback: one file as a profile's kernel
 * (GET /boot/<mac>/kernel, the route machines use) against nginx serving the
 * same file, to 1 and to N concurrent curl processes. Aggregate throughput is
 * all bytes over the wall-clock time from the first spawn to the last exit;
 * every response must be a 200 of the full length. Our RSS is sampled during
 * our runs (nginx's, master + workers, during its runs).
 */
import { join } from "node:path";
import { freeTcpPort } from "../helpers/ports.js";
import { startBenchDaemon } from "./bench-daemon.js";
import { publicDir, randomFile } from "./bench-files.js";
import { RssSampler, childrenOf, cpuSeconds, runToEnd } from "./processes.js";
import { startNginx } from "./reference-servers.js";
import { mbPerSecond, median } from "./stats.js";
import { fixed, ratio, type Row } from "./table.js";

export interface HttpBenchOptions {
  work: string;
  size: number;
  /** Client counts to measure, e.g. [1, 50]. */
  clients: number[];
  /** Repetitions per client count (the median is kept); fewer for large counts keep the run short. */
  reps: (clients: number) => number;
}

export const RSS_LIMIT_MB = 150;
const MAC = "52:54:00:bb:00:01";
const NAME = "kernel.bin";

export async function benchHttp(o: HttpBenchOptions, notes: string[]): Promise<Row[]> {
  const root = publicDir(join(o.work, "http-root"));
  const file = join(root, NAME);
  randomFile(file, o.size);
  const [oursPort, refPort] = [await freeTcpPort(), await freeTcpPort()];
  const ours = await startBenchDaemon({
    work: publicDir(join(o.work, "http-daemon")),
    address: "127.0.0.1",
    httpPort: oursPort,
    bootloadersDir: root,
    kernel: file,
    macs: [MAC],
  });
  try {
    const ref = await startNginx(publicDir(join(o.work, "nginx")), root, refPort);
    try {
      const oursUrl = `http://127.0.0.1:${oursPort}/boot/${MAC.replaceAll(":", "-")}/kernel`;
      const refUrl = `http://127.0.0.1:${refPort}/${NAME}`;
      const idleRss = (await sampleDuring([ours.daemon.pid], () => new Promise((r) => setTimeout(r, 200)))).peak;
      let oursPeak = 0;
      let refPeak = 0;
      const rows: Row[] = [];
      for (const n of o.clients) {
        const t = { ours: [] as number[], ref: [] as number[] };
        const cpu = { ours: 0, ref: 0 };
        for (let i = 0; i < o.reps(n); i++) {
          const r = await sampleDuring([ref.pid, ...childrenOf(ref.pid)], () => fetchAll(refUrl, n, o.size));
          refPeak = Math.max(refPeak, r.peak);
          t.ref.push(r.value);
          cpu.ref += r.cpu;
          const u = await sampleDuring([ours.daemon.pid], () => fetchAll(oursUrl, n, o.size));
          oursPeak = Math.max(oursPeak, u.peak);
          t.ours.push(u.value);
          cpu.ours += u.cpu;
        }
        const [oursRate, refRate] = [mbPerSecond(o.size * n, median(t.ours)), mbPerSecond(o.size * n, median(t.ref))];
        const per100MB = (s: number) => `${((s / (o.reps(n) * n * o.size)) * 1e8).toFixed(3)} s`;
        notes.push(
          `HTTP ${n} client(s): seconds for all ${n} downloads — nginx ${t.ref.map((x) => x.toFixed(3)).join(" ")}, ours ${t.ours.map((x) => x.toFixed(3)).join(" ")}; ` +
            `server CPU per 100 MB sent: nginx ${per100MB(cpu.ref)}, ours ${per100MB(cpu.ours)}.`,
        );
        rows.push({
          measurement: `HTTP ${Math.round(o.size / 1e6)} MB to ${n} curl client${n === 1 ? "" : "s"} (aggregate)`,
          ours: fixed(oursRate, 0, "MB/s"),
          reference: `nginx ${fixed(refRate, 0, "MB/s")}`,
          ratio: ratio(oursRate, refRate),
          target: "≥ 0.8×",
          verdict: oursRate / refRate >= 0.8 ? "ok" : "MISSED",
        });
      }
      const mb = (b: number) => b / 1e6;
      rows.push({
        measurement: "HTTP: peak RSS during the runs",
        ours: fixed(mb(oursPeak), 0, "MB"),
        reference: `nginx ${fixed(mb(refPeak), 0, "MB")}`,
        ratio: "—",
        target: `< ${RSS_LIMIT_MB} MB`,
        verdict: mb(oursPeak) < RSS_LIMIT_MB ? "ok" : "MISSED",
      });
      notes.push(
        `HTTP: curl -o /dev/null processes on 127.0.0.1, ours GET /boot/<mac>/kernel, nginx 1.22 (worker_processes auto, sendfile on); our RSS idle before the runs ${fixed(mb(idleRss), 0, "MB")}, sampled every 50 ms (MB = 10^6 bytes).`,
      );
      return rows;
    } finally {
      await ref.stop();
    }
  } finally {
    await ours.stop();
  }
}

/** Runs fn while sampling the processes' summed RSS; also the CPU seconds they used meanwhile. */
async function sampleDuring<T>(pids: number[], fn: () => Promise<T>): Promise<{ value: T; peak: number; cpu: number }> {
  const cpu = () => pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  const sampler = new RssSampler(() => pids);
  const cpu0 = cpu();
  try {
    const value = await fn();
    return { value, peak: sampler.stop(), cpu: cpu() - cpu0 };
  } catch (err) {
    sampler.stop();
    throw err;
  }
}

/** n concurrent curl downloads of url; resolves with the seconds until the last finished. */
async function fetchAll(url: string, n: number, size: number): Promise<number> {
  const timeoutMs = Math.max(60_000, ((size * n) / 1e6) * 200);
  const started = process.hrtime.bigint();
  const results = await Promise.all(
    Array.from({ length: n }, () =>
      runToEnd("curl", ["-sS", "-o", "/dev/null", "--max-time", String(Math.ceil(timeoutMs / 1000)), "-w", "%{http_code} %{size_download}", url], { timeoutMs: timeoutMs + 5_000 }),
    ),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  for (const r of results) {
    if (r.code !== 0 || r.stdout.trim() !== `200 ${size}`) {
      throw new Error(`curl ${url}: exit ${r.code}, got "${r.stdout.trim()}" (want "200 ${size}") ${r.stderr}`);
    }
  }
  return seconds;
}

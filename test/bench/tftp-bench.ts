/**
 * TFTP throughput on loopback: one file, blksize 1468, fetched by atftp from
 * tftpd-hpa and from us at windowsize 1 (like for like), and from us at
 * windowsize 16 (RFC 7440, which tftpd-hpa does not have). Runs alternate
 * between the servers; the median of each is reported. Every download is
 * checked byte for byte, so a fast wrong answer cannot count.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import { freeUdpPort } from "../helpers/ports.js";
import { startBenchDaemon } from "./bench-daemon.js";
import { publicDir, randomFile, sha256File } from "./bench-files.js";
import { ChildCpuTracker, cpuSeconds, runToEnd } from "./processes.js";
import { startTftpdHpa } from "./reference-servers.js";
import { mbPerSecond, median } from "./stats.js";
import { fixed, ratio, type Row } from "./table.js";

export interface TftpBenchOptions {
  work: string;
  size: number;
  reps: number;
}

const BLKSIZE = 1468;
const NAME = "bench.bin";

export async function benchTftp(o: TftpBenchOptions, notes: string[]): Promise<Row[]> {
  const dir = publicDir(join(o.work, "tftp-root"));
  const sha = randomFile(join(dir, NAME), o.size);
  const out = join(o.work, "tftp-download.bin");
  const [oursPort, refPort] = [await freeUdpPort(), await freeUdpPort()];

  const ours = await startBenchDaemon({
    work: publicDir(join(o.work, "tftp-daemon")),
    address: "127.0.0.1",
    tftpPort: oursPort,
    bootloadersDir: dir,
    kernel: join(dir, NAME),
    macs: [],
  });
  try {
    const ref = await startTftpdHpa(dir, refPort);
    try {
      const timeoutMs = Math.max(30_000, (o.size / 1e6) * 2_000);
      /** Seconds of one download, and the CPU seconds the server spent on it. */
      const get = async (port: number, windowsize: number): Promise<{ seconds: number; cpu: number }> => {
        rmSync(out, { force: true });
        // tftpd-hpa serves each transfer from a child it reaps with SIGCHLD ignored: poll the child.
        const children = port === refPort ? new ChildCpuTracker(ref.pid) : undefined;
        const cpu0 = cpuSeconds(ours.daemon.pid);
        const options = [`blksize ${BLKSIZE}`, ...(windowsize > 1 ? [`windowsize ${windowsize}`] : [])];
        const r = await runToEnd("atftp", ["-g", "-r", NAME, "-l", out, ...options.flatMap((x) => ["--option", x]), "127.0.0.1", String(port)], { timeoutMs });
        // runToEnd never rejects: the tracker is always stopped here.
        const cpu = children ? children.stop() : cpuSeconds(ours.daemon.pid) - cpu0;
        const what = `atftp from port ${port}, windowsize ${windowsize}`;
        if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}): ${r.stdout}${r.stderr}`);
        if (sha256File(out) !== sha) throw new Error(`${what}: the download differs from the file served`);
        return { seconds: r.seconds, cpu };
      };
      const runs: Record<"ref" | "ours1" | "ours16", Array<{ seconds: number; cpu: number }>> = { ref: [], ours1: [], ours16: [] };
      for (let i = 0; i < o.reps; i++) {
        runs.ref.push(await get(refPort, 1));
        runs.ours1.push(await get(oursPort, 1));
        runs.ours16.push(await get(oursPort, 16));
      }
      rmSync(out, { force: true });
      const rate = (xs: Array<{ seconds: number }>) => mbPerSecond(o.size, median(xs.map((x) => x.seconds)));
      const cpuMs = (xs: Array<{ cpu: number }>) => `${(median(xs.map((x) => x.cpu)) * 1000).toFixed(0)} ms`;
      const [ref1, ours1, ours16] = [rate(runs.ref), rate(runs.ours1), rate(runs.ours16)];
      const mb = `${Math.round(o.size / 1e6)} MB`;
      notes.push(
        `TFTP: atftp 0.8 client for both servers on 127.0.0.1, median of ${o.reps} alternating run(s); seconds — tftpd-hpa ${fmt(runs.ref)}, ours ws1 ${fmt(runs.ours1)}, ours ws16 ${fmt(runs.ours16)}. ` +
          `Server CPU per ${mb} transfer (median, 10 ms ticks; tftpd-hpa's child polled every 10 ms): tftpd-hpa ${cpuMs(runs.ref)}, ours ws1 ${cpuMs(runs.ours1)}, ours ws16 ${cpuMs(runs.ours16)}.`,
      );
      return [
        {
          measurement: `TFTP ${mb}, blksize ${BLKSIZE}, windowsize 1 (atftp)`,
          ours: fixed(ours1, 1, "MB/s"),
          reference: `tftpd-hpa ${fixed(ref1, 1, "MB/s")}`,
          ratio: ratio(ours1, ref1),
          target: "≥ 1.0×",
          verdict: ours1 / ref1 >= 1.0 ? "ok" : "MISSED",
        },
        {
          measurement: `TFTP ${mb}, blksize ${BLKSIZE}, windowsize 16 (atftp)`,
          ours: fixed(ours16, 1, "MB/s"),
          reference: `tftpd-hpa (ws 1) ${fixed(ref1, 1, "MB/s")}`,
          ratio: ratio(ours16, ref1),
          target: "—",
          verdict: "",
        },
      ];
    } finally {
      await ref.stop();
    }
  } finally {
    await ours.stop();
  }
}

function fmt(xs: Array<{ seconds: number }>): string {
  return xs.map((x) => x.seconds.toFixed(3)).join(" ");
}

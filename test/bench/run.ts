/**
 * `npm run bench`: talos-netboot against the servers it replaces, side by
 * side in one run on one machine, printed as one Markdown table with the
 * targets beside the figures. Not a test: nothing is asserted on speed; the
 * exit code is non-zero only when a measurement could not be made (a server
 * did not start, a download was wrong, or — under CI=true — a tool is missing).
 *
 *   node dist/test/bench/run.js [--quick] [--only tftp,http,dhcp,talos,firmware]
 *
 * --quick: small files and short runs (a few seconds), for CI's smoke run.
 */
import { chmodSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { assertFreshBuild } from "../helpers/daemon-process.js";
import { referenceDir } from "../helpers/reference.js";
import { findOnPath, inCi } from "../helpers/tools.js";
import { benchDhcp } from "./dhcp-bench.js";
import { FIRMWARE_ROWS, benchFirmware, labReady } from "./firmware-bench.js";
import { benchHttp } from "./http-bench.js";
import { onEmergency } from "./processes.js";
import { benchTalos } from "./talos-bench.js";
import { benchTftp } from "./tftp-bench.js";
import { renderTable, unavailable, type Row } from "./table.js";

const SECTIONS = ["tftp", "http", "dhcp", "talos", "firmware"] as const;
type Section = (typeof SECTIONS)[number];

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    only: { type: "string" },
  },
});
const quick = values.quick;
const only = new Set((values.only ?? SECTIONS.join(",")).split(",").map((s) => s.trim()));
for (const s of only) {
  if (!(SECTIONS as readonly string[]).includes(s)) {
    process.stderr.write(`unknown section ${s}; sections: ${SECTIONS.join(", ")}\n`);
    process.exit(2);
  }
}

const MB = 1_000_000;
const plan = quick
  ? { tftpSize: 2 * MB, tftpReps: 1, httpSize: 4 * MB, httpClients: [1, 8], httpReps: () => 1, dhcpRateSeconds: 1, dhcpMaxSeconds: 1 }
  : { tftpSize: 50 * MB, tftpReps: 5, httpSize: 100 * MB, httpClients: [1, 50], httpReps: (n: number) => (n === 1 ? 5 : 3), dhcpRateSeconds: 10, dhcpMaxSeconds: 5 };

/** Why a section cannot run for want of a tool: its rows say n/a (under CI that is a failure). */
const need = (tool: string, pkg: string): string | undefined => (findOnPath(tool) ? undefined : `\`${tool}\` not installed — apt-get install ${pkg}`);

interface SectionSpec {
  /** Rows printed when the section cannot run. */
  rows: string[];
  why: () => string | undefined;
  run: (work: string, notes: string[]) => Promise<Row[]>;
}

const tag = `tnbb-${process.pid}`;
const specs: Record<Section, SectionSpec> = {
  tftp: {
    rows: ["TFTP, blksize 1468, windowsize 1", "TFTP, blksize 1468, windowsize 16"],
    why: () => need("atftp", "atftp") ?? need("in.tftpd", "tftpd-hpa"),
    run: (work, notes) => benchTftp({ work, size: plan.tftpSize, reps: plan.tftpReps }, notes),
  },
  http: {
    rows: plan.httpClients.map((n) => `HTTP to ${n} client(s)`).concat("HTTP: peak RSS during the runs"),
    why: () => need("curl", "curl") ?? need("nginx", "nginx"),
    run: (work, notes) => benchHttp({ work, size: plan.httpSize, clients: plan.httpClients, reps: plan.httpReps }, notes),
  },
  dhcp: {
    rows: ["ProxyDHCP: DISCOVERs answered/s", "ProxyDHCP at 1,000/s: p50 latency", "ProxyDHCP at 1,000/s: p99 latency", "ProxyDHCP at 1,000/s: unanswered"],
    why: () =>
      (process.getuid?.() === 0 ? undefined : "needs root (network namespaces)") ??
      need("ip", "iproute2") ??
      need("dnsmasq", "dnsmasq-base") ??
      (existsSync(referenceDir("pcap")) ? undefined : `reference captures not found at ${referenceDir("pcap")}`),
    run: (work, notes) => benchDhcp({ work, rateSeconds: plan.dhcpRateSeconds, maxSeconds: plan.dhcpMaxSeconds, tag }, notes),
  },
  talos: {
    rows: ["Talos config generation"],
    why: () => undefined,
    run: (_work, notes) => benchTalos({ reps: quick ? 20 : 200, bundles: quick ? 1 : 3 }, notes),
  },
  firmware: {
    rows: FIRMWARE_ROWS,
    // Minutes of emulated boots: never part of the quick smoke run.
    why: () => {
      if (quick) return "not run with --quick";
      try {
        return labReady() ? undefined : "netboot lab prerequisites missing, see above";
      } catch (err) {
        return (err as Error).message;
      }
    },
    run: (_work, notes) => benchFirmware(notes),
  },
};

async function main(): Promise<number> {
  try {
    assertFreshBuild();
  } catch (err) {
    // `npm run bench` builds first; run directly, an old build is measured, and said so.
    process.stderr.write(`bench: warning: ${(err as Error).message}\n`);
  }
  const work = mkdtempSync(join(tmpdir(), `${tag}-`));
  // Servers that drop privileges (nginx workers, tftpd-hpa) must reach the files.
  chmodSync(work, 0o755);
  const forget = onEmergency(() => rmSync(work, { recursive: true, force: true }));
  const rows: Row[] = [];
  const notes: string[] = [];
  let failed = false;
  const load0 = loadavg()[0]!;
  const started = Date.now();
  try {
    for (const section of SECTIONS) {
      if (!only.has(section)) continue;
      const spec = specs[section];
      const why = spec.why();
      if (why) {
        if (inCi() && !(section === "firmware" && quick)) failed = true;
        rows.push(...spec.rows.map((m) => unavailable(m, why)));
        continue;
      }
      process.stderr.write(`bench: ${section}…\n`);
      try {
        const got = await spec.run(work, notes);
        if (got.some((r) => r.verdict === "FAILED")) failed = true;
        rows.push(...got);
      } catch (err) {
        failed = true;
        rows.push(...spec.rows.map((m) => unavailable(m, "failed, see notes")));
        notes.push(`${section} FAILED: ${(err as Error).stack ?? String(err)}`);
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
    forget();
  }
  const cpu = cpus();
  const header = [
    `talos-netboot benchmark${quick ? " (--quick: small files, short runs — not for comparison)" : ""}`,
    `${new Date().toISOString()} · Node ${process.version} · ${cpu.length} × ${cpu[0]?.model.trim() ?? "unknown CPU"} · load average ${load0.toFixed(2)} at start, ${loadavg()[0]!.toFixed(2)} at end · ${((Date.now() - started) / 1000).toFixed(0)} s`,
  ];
  notes.unshift("Ratios are ours ÷ reference: above 1 is better for throughput, worse for latency. Each server runs alone while measured; the load average shows what else the machine was doing.");
  process.stdout.write(`${header.join("\n")}\n\n${renderTable(rows)}\n\n${notes.map((n) => `- ${n}`).join("\n")}\n`);
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);

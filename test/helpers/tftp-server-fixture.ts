/**
 * Runs a TftpServer for the netboot tests, usually inside a network namespace
 * (the test runner itself stays in the host's):
 *   node dist/test/helpers/tftp-server-fixture.js --address A --root DIR
 *        [--port 69] [--timeout-ms 1000] [--retries 5] [--max-windowsize 64]
 * Serves the regular files directly in DIR by name, from a map built at start
 * (the daemon's rule: a request is a lookup, never a path walk). Prints one
 * JSON line `{"ready":true,...}` on stdout once bound; then answers each
 * `status` line on stdin with one `{"status":{...}}` line (active transfers
 * and the TFTP metrics). Logs to stderr; stops cleanly on SIGTERM/SIGINT.
 */
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { pino } from "pino";
import type { TftpResolution } from "../../src/boot/types.js";
import { Metrics } from "../../src/metrics.js";
import { TftpServer } from "../../src/tftp/server.js";

const { values } = parseArgs({
  options: {
    address: { type: "string" },
    root: { type: "string" },
    port: { type: "string", default: "69" },
    "timeout-ms": { type: "string", default: "1000" },
    retries: { type: "string", default: "5" },
    "max-windowsize": { type: "string", default: "64" },
  },
});
if (!values.address || !values.root) {
  process.stderr.write("usage: tftp-server-fixture --address A --root DIR [--port 69] [--timeout-ms MS] [--retries N] [--max-windowsize N]\n");
  process.exit(2);
}

const files = new Map<string, string>();
for (const name of readdirSync(values.root)) {
  const path = join(values.root, name);
  if (statSync(path).isFile()) files.set(name, path);
}

/** Transfers that ended with the last ACK received (the resolver's completion callback). */
const completed: Array<{ name: string; bytes: number; blksize: number; windowsize: number }> = [];
const metrics = new Metrics();
const log = pino({ level: "info", base: { fixture: "tftp" } }, pino.destination({ fd: 2, sync: true }));
const server = new TftpServer({
  address: values.address,
  port: Number(values.port),
  timeoutMs: Number(values["timeout-ms"]),
  retries: Number(values.retries),
  maxWindowsize: Number(values["max-windowsize"]),
  log,
  metrics,
  resolver: {
    resolve: (name): TftpResolution => {
      const path = files.get(name);
      return path ? { ok: true, source: { kind: "file", path } } : { ok: false, code: 1, message: `${name}: file not found` };
    },
    completed: (e) => completed.push({ name: e.name, bytes: e.bytes, blksize: e.blksize, windowsize: e.windowsize }),
  },
});

try {
  await server.start();
} catch (err) {
  process.stderr.write(`tftp-server-fixture: ${(err as Error).message}\n`);
  process.exit(1);
}
process.stdout.write(`${JSON.stringify({ ready: true, pid: process.pid, port: server.listeningPort, files: [...files.keys()] })}\n`);

/** One `status` answer (import it with `import type`: this module runs a server when loaded). */
export interface FixtureStatus {
  active: number;
  transfers: Record<string, number>;
  retransmits: number;
  bytes: number;
  malformed: number;
  completed: typeof completed;
}

async function status(): Promise<FixtureStatus> {
  const transfers: Record<string, number> = {};
  for (const v of (await metrics.tftpTransfers.get()).values) transfers[String(v.labels.outcome)] = v.value;
  const one = async (c: { get(): Promise<{ values: Array<{ value: number }> }> }) => (await c.get()).values.reduce((s, v) => s + v.value, 0);
  return {
    active: server.activeTransfers,
    transfers,
    retransmits: await one(metrics.tftpRetransmits),
    bytes: await one(metrics.tftpBytes),
    malformed: await one(metrics.malformedPackets),
    completed,
  };
}

createInterface({ input: process.stdin }).on("line", (line) => {
  if (line.trim() !== "status") return;
  void status().then((s) => process.stdout.write(`${JSON.stringify({ status: s })}\n`));
});

const stop = () => {
  void server.stop().then(() => process.exit(0));
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);

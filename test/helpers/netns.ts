/**
 * Shared plumbing for tests that build their own network namespaces: `ip`,
 * running commands inside a namespace, bounded waits, and DHCP requests taken
 * from the real firmware captures (../shared/reference/pcap) and sent with
 * dhcp-probe from a client namespace. Nothing here touches the host's own
 * interfaces.
 */
import { execFile, execFileSync } from "node:child_process";
import { join } from "node:path";
import { decodeDhcp, Opt, type DhcpPacket } from "../../src/dhcp/codec.js";
import { rawOptions } from "./dhcp-wire.js";
import { readCaptureListing, readPcap, type UdpDatagram } from "./pcap.js";
import { referenceDir, repoRoot } from "./reference.js";

export const PROBE = join(repoRoot(), "dist", "test", "helpers", "dhcp-probe.js");

export function ip(...args: string[]): string {
  return execFileSync("ip", args, { encoding: "utf8", timeout: 10_000 });
}

/** Deletes namespaces, ignoring ones that were never created. */
export function deleteNamespaces(names: Iterable<string>): void {
  for (const name of names) {
    try {
      execFileSync("ip", ["netns", "del", name], { stdio: "ignore", timeout: 10_000 });
    } catch {
      // never created, or already gone
    }
  }
}

/** Polls `check` every 100 ms until it returns a value; throws after `ms` with `detail()` appended. */
export async function waitUntil<T>(
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
  ms: number,
  detail: () => string = () => "",
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}\n${detail()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface Ran {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/** Runs a command inside a namespace; never throws on a non-zero exit. */
export function runIn(ns: string, cmd: string, args: string[], timeoutMs = 20_000): Promise<Ran> {
  return run("ip", ["netns", "exec", ns, cmd, ...args], timeoutMs);
}

/** Runs a command (bounded by `timeoutMs`); never throws on a non-zero exit. */
export function run(cmd: string, args: string[], timeoutMs = 20_000): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: "buffer", timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout, stderr: stderr.toString() });
    });
  });
}

export interface Reply {
  address: string;
  port: number;
  raw: Buffer;
  packet: DhcpPacket;
}

export interface ProbeOptions {
  bind?: string;
  port?: number;
  to?: string;
  expect?: number;
  timeoutMs?: number;
}

/** Sends packets with dhcp-probe from namespace `ns`; returns every reply within the timeout. */
export async function probe(ns: string, packets: Buffer[], opts: ProbeOptions = {}): Promise<Reply[]> {
  const args = [PROBE];
  for (const p of packets) args.push("--packet", p.toString("hex"));
  args.push("--bind", opts.bind ?? "0.0.0.0", "--port", String(opts.port ?? 68), "--to", opts.to ?? "255.255.255.255:67");
  args.push("--timeout", String(opts.timeoutMs ?? 3_000));
  if (opts.expect !== undefined) args.push("--expect", String(opts.expect));
  const r = await runIn(ns, process.execPath, args, 15_000);
  if (r.code !== 0) throw new Error(`dhcp-probe failed (exit ${r.code}): ${r.stderr}`);
  const out = JSON.parse(r.stdout.toString()) as { replies: { address: string; port: number; hex: string }[] };
  return out.replies.map((x) => {
    const raw = Buffer.from(x.hex, "hex");
    return { address: x.address, port: x.port, raw, packet: decodeDhcp(raw) };
  });
}

/** The first BOOTREQUEST in a capture that matches, as the firmware sent it. */
export function captured(file: string, pred: (d: UdpDatagram, type: string) => boolean): Buffer {
  const dir = referenceDir("pcap");
  const datagrams = readPcap(join(dir, file)).filter((d) => [67, 68, 4011].includes(d.dstPort));
  const listing = readCaptureListing(join(dir, file.replace(/\.pcap$/, ".txt")));
  const i = datagrams.findIndex((d, k) => listing[k]!.op === "BOOTREQUEST" && pred(d, listing[k]!.type));
  if (i < 0) throw new Error(`no matching request in ${file}`);
  return Buffer.from(datagrams[i]!.payload);
}

export { rawOptions };

export const macBytes = (mac: string) => Buffer.from(mac.split(":").map((h) => Number.parseInt(h, 16)));
export const ipBytes = (address: string) => Buffer.from(address.split(".").map(Number));

/**
 * A captured request made to come from another machine or path: chaddr (and
 * option 61, when it is a type-1 client id) set to `mac`, options dropped,
 * header fields changed. Bytes are edited directly, not re-encoded.
 */
export function rewrite(packet: Buffer, edit: { mac?: string; drop?: number[]; giaddr?: string; ciaddr?: string; hops?: number }): Buffer {
  const header = Buffer.from(packet.subarray(0, 240));
  if (edit.mac) {
    header.fill(0, 28, 44);
    macBytes(edit.mac).copy(header, 28);
  }
  if (edit.ciaddr) ipBytes(edit.ciaddr).copy(header, 12);
  if (edit.giaddr) ipBytes(edit.giaddr).copy(header, 24);
  if (edit.hops !== undefined) header[3] = edit.hops;
  const opts: Buffer[] = [];
  for (const [code, value] of rawOptions(packet)) {
    if (edit.drop?.includes(code)) continue;
    const v = code === Opt.CLIENT_ID && edit.mac && value.length === 7 && value[0] === 1 ? Buffer.concat([Buffer.from([1]), macBytes(edit.mac)]) : value;
    opts.push(Buffer.from([code, v.length]), v);
  }
  const body = Buffer.concat([header, ...opts, Buffer.from([255])]);
  return body.length >= packet.length ? body : Buffer.concat([body, Buffer.alloc(packet.length - body.length)]);
}

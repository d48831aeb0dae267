/**
 * The running daemon under 100,000 hostile DHCP packets and 100,000 hostile
 * TFTP packets, random and mutated from the firmware captures in
 * ../shared/reference/pcap, sent at a bounded rate from a client namespace:
 *
 *   client ns (vcli 192.168.80.2: udp-fuzzer, then dhcp-probe and tftp-hpa)
 *      │ veth
 *   server ns (vsrv 192.168.80.1: `talos-netboot serve`)
 *
 * The daemon must never crash or log an error, must answer DHCP only to
 * well-formed requests it has a machine for (each reply obeys DESIGN §3),
 * must answer TFTP garbage with at most an ERROR, must count what it could
 * not decode in talos_netboot_malformed_packets_total, must let every
 * abandoned transfer go, and must still serve a good client afterwards.
 *
 * Seeded: the seed is in the test names; FUZZ_SEED=<n> replays a run.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MessageType, Opt, msgType } from "../../src/dhcp/codec.js";
import { assertFreshBuild, killNow, startDaemon, type DaemonProcess } from "../helpers/daemon-process.js";
import { dhcpOptions, dhcpWellFormed, fuzzSeed } from "../helpers/fuzz.js";
import { captured, ipBytes, probe, rewrite, runIn, waitUntil } from "../helpers/netns.js";
import { haveReference, referenceDir, repoRoot } from "../helpers/reference.js";
import { requireRoot, requireTool } from "../helpers/tools.js";
import type { DhcpFuzzReport, TftpFuzzReport } from "../helpers/udp-fuzzer.js";
import { createVethPair, udpCounters, type VethPair } from "../helpers/veth-pair.js";

const ready = requireRoot() && requireTool("ip", "iproute2") && requireTool("curl", "curl") && requireTool("tftp", "tftp-hpa") && haveReference("pcap");

const FUZZER = join(repoRoot(), "dist", "test", "helpers", "udp-fuzzer.js");
const PACKETS = 100_000;
const SEED = fuzzSeed();
const TFTP_SEED = (SEED ^ 0x5a5a5a5a) >>> 0;
/** The MAC of every firmware capture: registered, so mutated requests that stay valid get answered. */
const MACHINE = "52:54:00:12:34:56";
const HTTP_PORT = 8080;
const BOOTLOADERS = { "ipxe.efi": 64 * 1024, "snponly.efi": 48 * 1024, "undionly.kpxe": 32 * 1024 };

describe.skipIf(!ready)(`the daemon under fuzzed DHCP and TFTP traffic (seed ${SEED}; replay with FUZZ_SEED=${SEED})`, () => {
  let net: VethPair | undefined;
  let daemon: DaemonProcess | undefined;
  let work = "";
  const bootloaders = new Map<string, Buffer>();
  const onExit = () => killNow(daemon);
  const log = (what: string) => `${what}\nseed ${SEED} (replay: FUZZ_SEED=${SEED})\n${daemon?.tail(30) ?? ""}`;

  /** Every sample of /metrics, fetched from the client namespace. */
  async function metrics(): Promise<Map<string, number>> {
    const r = await runIn(net!.cli, "curl", ["-sS", "--max-time", "10", `http://${net!.server}:${HTTP_PORT}/metrics`]);
    expect(r.code, log(`GET /metrics: ${r.stderr}`)).toBe(0);
    const out = new Map<string, number>();
    for (const line of r.stdout.toString().split("\n")) {
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?)\s+(\S+)$/.exec(line);
      if (m) out.set(m[1]!, Number(m[2]));
    }
    return out;
  }

  /** Sum of a metric's samples whose labels include `labels`. */
  function sum(samples: Map<string, number>, name: string, labels: Record<string, string> = {}): number {
    let total = 0;
    for (const [key, value] of samples) {
      if (key !== name && !key.startsWith(`${name}{`)) continue;
      if (Object.entries(labels).every(([k, v]) => key.includes(`${k}="${v}"`))) total += value;
    }
    return total;
  }

  async function fuzz<T>(kind: "dhcp" | "tftp", extra: string[]): Promise<T> {
    const args = [FUZZER, "--kind", kind, "--server", net!.server, "--seed", String(kind === "dhcp" ? SEED : TFTP_SEED), "--count", String(PACKETS), ...extra];
    // 100,000 packets at ≤ 50 per 10 ms tick: about 20 s; the bound leaves room for a loaded machine.
    const r = await runIn(net!.cli, process.execPath, args, 240_000);
    expect(r.code, log(`udp-fuzzer ${kind} failed (exit ${r.code}): ${r.stderr}`)).toBe(0);
    return JSON.parse(r.stdout.toString()) as T;
  }

  /** No error or fatal line, and the process is alive. */
  function expectHealthy(since: number): void {
    expect(daemon!.exit(), log("the daemon is still running")).toBeUndefined();
    const errors = daemon!.logs.slice(since).filter((l) => (l.level ?? 0) >= 50);
    expect(errors.slice(0, 5), log("no error logged")).toEqual([]);
  }

  beforeAll(async () => {
    assertFreshBuild();
    process.once("exit", onExit);
    work = mkdtempSync(join(tmpdir(), "tnbz-"));
    const dir = join(work, "ipxe");
    mkdirSync(dir);
    for (const [name, size] of Object.entries(BOOTLOADERS)) {
      const data = randomBytes(size);
      bootloaders.set(name, data);
      writeFileSync(join(dir, name), data);
    }
    for (const f of ["vmlinuz", "initrd.img"]) writeFileSync(join(work, f), randomBytes(4096));
    writeFileSync(join(work, "node.yaml"), "version: v1alpha1\n");
    net = await createVethPair({ tag: `tnbz-${process.pid}`, subnet: "192.168.80" });
    const config = join(work, "talos-netboot.yaml");
    writeFileSync(
      config,
      [
        `server: { address: ${net.server}, interface: ${net.srvIf} }`,
        `dhcp: { enabled: true, port: 67, pxePort: 4011 }`,
        `tftp: { enabled: true, port: 69 }`,
        `http: { enabled: true, port: ${HTTP_PORT}, address: ${net.server} }`,
        `stateDir: ${join(work, "state")}`,
        `log: { level: info, format: json }`,
        `bootloaders: { dir: ${dir}, grubEfi: null }`,
        `api: { tokens: ["${randomBytes(16).toString("hex")}"] }`,
        `profiles:`,
        `  talos: { kernel: ${join(work, "vmlinuz")}, initrd: [${join(work, "initrd.img")}], cmdline: "console=ttyS0", config: ${join(work, "node.yaml")} }`,
        `machines:`,
        `  - { mac: "${MACHINE}", profile: talos, hostname: node-1 }`,
        `unknownMachines: ignore`,
        ``,
      ].join("\n"),
    );
    mkdirSync(join(work, "state"));
    daemon = await startDaemon({ configPath: config, netns: net.srv });
  }, 60_000);

  afterAll(async () => {
    await daemon?.stop(5_000);
    process.off("exit", onExit);
    net?.remove();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it(`DHCP: ${PACKETS} packets to 67 and 4011 — replies only to well-formed requests of the known machine, malformed ones counted`, async () => {
    const mark = daemon!.mark();
    const before = await metrics();
    const udpBefore = await udpCounters(net!.srv);
    const report = await fuzz<DhcpFuzzReport>("dhcp", ["--pcap", referenceDir("pcap")]);
    expect(report.sent).toBe(PACKETS);
    expect(report.sendErrors).toBe(0);

    // Wait until the daemon has taken in every packet that reached its sockets.
    let after = before;
    let lost = 0;
    await waitUntil(
      "the daemon to count every DHCP packet it received",
      async () => {
        after = await metrics();
        const udp = await udpCounters(net!.srv);
        lost = (udp.RcvbufErrors ?? 0) - (udpBefore.RcvbufErrors ?? 0);
        const seen = sum(after, "talos_netboot_dhcp_packets_total") - sum(before, "talos_netboot_dhcp_packets_total");
        const bad = sum(after, "talos_netboot_malformed_packets_total", { protocol: "dhcp" }) - sum(before, "talos_netboot_malformed_packets_total", { protocol: "dhcp" });
        return seen + bad + lost >= report.sent ? true : undefined;
      },
      60_000,
      () => log("packets unaccounted for"),
    );
    expectHealthy(mark);

    // Malformed packets are counted, not thrown: exactly those the RFC predicate rejects (less any the kernel dropped).
    const malformed = sum(after, "talos_netboot_malformed_packets_total", { protocol: "dhcp" }) - sum(before, "talos_netboot_malformed_packets_total", { protocol: "dhcp" });
    expect(report.malformed, "the fuzzer sent malformed packets").toBeGreaterThan(PACKETS / 10);
    expect(malformed, log(`counted ${malformed}, sent ${report.malformed} malformed, kernel dropped ${lost}`)).toBeLessThanOrEqual(report.malformed);
    expect(malformed, log(`counted ${malformed}, sent ${report.malformed} malformed, kernel dropped ${lost}`)).toBeGreaterThanOrEqual(report.malformed - lost);

    console.info(`[fuzz] DHCP seed ${SEED}: sent ${report.sent} (${report.malformed} malformed), counted ${malformed} malformed, kernel dropped ${lost}, ${report.replies.length} replies`);
    // Every reply answers one packet we sent, and that packet deserved it.
    expect(report.unmatched.slice(0, 3), log("replies to packets we never sent")).toEqual([]);
    expect(report.replies.length, log("some mutated requests stayed valid and were answered")).toBeGreaterThan(0);
    const answered = new Set<number>();
    for (const r of report.replies) {
      const request = Buffer.from(r.request, "hex");
      const reply = Buffer.from(r.reply, "hex");
      const ctx = log(`packet #${r.seq} to ${r.to}: ${r.request}\nreply from ${r.from}: ${r.reply}`);
      expect(answered.has(r.seq), `two replies to one request\n${ctx}`).toBe(false);
      answered.add(r.seq);
      // The request: well-formed, a BOOTREQUEST of the right type for its port, PXE/HTTP class, the registered MAC.
      expect(dhcpWellFormed(request), `reply to a malformed packet\n${ctx}`).toBe(true);
      const ropts = dhcpOptions(request);
      expect(request[0], ctx).toBe(1);
      expect(request[2], ctx).toBe(6);
      expect(request.subarray(28, 34).toString("hex"), ctx).toBe(MACHINE.replaceAll(":", ""));
      expect(ropts.get(Opt.MESSAGE_TYPE)?.[0], ctx).toBe(r.to === 67 ? MessageType.DISCOVER : MessageType.REQUEST);
      expect(ropts.get(Opt.VENDOR_CLASS)?.toString("latin1") ?? "", ctx).toMatch(/^(PXEClient|HTTPClient)/);
      // The reply: DESIGN §3, read from the raw bytes.
      expect(dhcpWellFormed(reply), ctx).toBe(true);
      const opts = dhcpOptions(reply);
      expect(r.from, ctx).toBe(`${net!.server}:${r.to}`);
      expect(reply[0], ctx).toBe(2);
      expect(reply.subarray(4, 8).equals(request.subarray(4, 8)), `xid\n${ctx}`).toBe(true);
      expect(reply.subarray(28, 44).equals(request.subarray(28, 44)), `chaddr\n${ctx}`).toBe(true);
      expect(reply.subarray(16, 20).equals(Buffer.alloc(4)), `yiaddr must be 0\n${ctx}`).toBe(true);
      expect(reply.subarray(20, 24).equals(ipBytes(net!.server)), `siaddr\n${ctx}`).toBe(true);
      expect(opts.get(Opt.MESSAGE_TYPE)?.[0], ctx).toBe(r.to === 67 ? MessageType.OFFER : MessageType.ACK);
      expect(opts.get(Opt.SERVER_ID)?.equals(ipBytes(net!.server)), `option 54\n${ctx}`).toBe(true);
      expect(opts.get(Opt.VENDOR_CLASS)?.toString("latin1"), ctx).toMatch(/^(PXEClient|HTTPClient)$/);
      for (const code of [1, 3, 6, 51, 52]) expect(opts.has(code), `option ${code} must not be sent\n${ctx}`).toBe(false);
      const uuid = ropts.get(Opt.CLIENT_UUID);
      if (uuid) expect(opts.get(Opt.CLIENT_UUID)?.equals(uuid), `option 97 echoed\n${ctx}`).toBe(true);
      const bootFile = opts.get(Opt.BOOTFILE)?.toString("latin1") ?? "";
      expect(bootloaders.has(bootFile) || bootFile.startsWith(`http://${net!.server}:${HTTP_PORT}/`), `boot file ${bootFile}\n${ctx}`).toBe(true);
      const file = reply.subarray(108, 236);
      const nul = file.indexOf(0);
      expect(nul, `file field NUL-terminated\n${ctx}`).toBeGreaterThanOrEqual(0);
      expect(["", bootFile], ctx).toContain(file.subarray(0, nul).toString("latin1"));
    }

    // A real firmware DISCOVER afterwards gets its offer.
    const discover = rewrite(captured("uefi-proxy.dhcp.pcap", (d, type) => type === "DISCOVER" && d.dstPort === 67), { mac: MACHINE });
    const replies = await probe(net!.cli, [discover], { expect: 1, timeoutMs: 5_000 });
    expect(replies, log("the captured UEFI DISCOVER is answered after the fuzzing")).toHaveLength(1);
    const offer = replies[0]!.packet;
    expect(msgType(offer)).toBe(MessageType.OFFER);
    expect(offer.xid).toBe(discover.readUInt32BE(4));
    expect(offer.yiaddr).toBe("0.0.0.0");
    expect(offer.siaddr).toBe(net!.server);
    expect(offer.file).toBe("ipxe.efi");
    expect(offer.options.get(Opt.CLIENT_UUID)?.equals(dhcpOptions(discover).get(Opt.CLIENT_UUID)!)).toBe(true);
    expectHealthy(mark);
  }, 300_000);

  it(`TFTP: ${PACKETS} packets to 69 and to open transfers — at most ERRORs to garbage, malformed counted, every transfer freed`, async () => {
    const mark = daemon!.mark();
    const before = await metrics();
    const udpBefore = await udpCounters(net!.srv);
    const report = await fuzz<TftpFuzzReport>("tftp", ["--served", [...bootloaders.keys()].join(",")]);
    expect(report.sent).toBe(PACKETS);
    expect(report.sendErrors).toBe(0);

    // Transfers nobody acknowledges end by timeout; all of them must end.
    const after = await waitUntil(
      "every fuzzed TFTP transfer to end",
      async () => {
        const m = await metrics();
        return sum(m, "talos_netboot_tftp_transfers_active") === 0 ? m : undefined;
      },
      90_000,
      () => log("transfers still active"),
    );
    expectHealthy(mark);
    const udp = await udpCounters(net!.srv);
    const lost = (udp.RcvbufErrors ?? 0) - (udpBefore.RcvbufErrors ?? 0);

    console.info(
      `[fuzz] TFTP seed ${TFTP_SEED}: ${JSON.stringify({ toListener: report.toListener, toTids: report.toTids, listenerReplies: report.listenerReplies, tids: report.tids, tidReplies: report.tidReplies, malformedCounted: sum(after, "talos_netboot_malformed_packets_total", { protocol: "tftp" }) - sum(before, "talos_netboot_malformed_packets_total", { protocol: "tftp" }), lost })}`,
    );
    // The listener answers only with ERROR, at most once per request; other ports are transfers, one per valid RRQ at most.
    const ctx = log(JSON.stringify({ ...report, listenerNonError: report.listenerNonError.slice(0, 3) }));
    expect(report.listenerNonError, ctx).toEqual([]);
    expect(report.garbage, ctx).toEqual([]);
    const listenerErrors = report.listenerReplies["5"] ?? 0;
    expect(listenerErrors, ctx).toBeGreaterThan(0);
    expect(listenerErrors, ctx).toBeLessThanOrEqual(report.toListener.requests);
    expect(report.tids, ctx).toBeLessThanOrEqual(report.toListener.readRequests);
    expect(report.tids, "some mutated requests stayed valid and started transfers").toBeGreaterThan(0);
    expect(report.toTids.sent, "the fuzzer reached open transfers too").toBeGreaterThan(0);

    const malformed = sum(after, "talos_netboot_malformed_packets_total", { protocol: "tftp" }) - sum(before, "talos_netboot_malformed_packets_total", { protocol: "tftp" });
    expect(report.toListener.malformed).toBeGreaterThan(PACKETS / 10);
    // Packets to a transfer that already ended are refused by the kernel, so those count at most.
    expect(malformed, ctx).toBeGreaterThanOrEqual(report.toListener.malformed - lost);
    expect(malformed, ctx).toBeLessThanOrEqual(report.toListener.malformed + report.toTids.malformed);
    const ended = ["ok", "error", "timeout", "aborted"].reduce((n, o) => n + sum(after, "talos_netboot_tftp_transfers_total", { outcome: o }) - sum(before, "talos_netboot_tftp_transfers_total", { outcome: o }), 0);
    expect(ended, ctx).toBeGreaterThanOrEqual(report.tids);

    // A real client afterwards gets the file.
    const local = join(work, "after-fuzz.efi");
    const r = await runIn(net!.cli, "tftp", ["-m", "binary", net!.server, "69", "-c", "get", "ipxe.efi", local], 30_000);
    const got = readFileSync(local);
    expect(got.equals(bootloaders.get("ipxe.efi")!), log(`tftp-hpa after the fuzzing: ${r.stdout.toString()}${r.stderr}`)).toBe(true);
    expectHealthy(mark);
  }, 300_000);
});

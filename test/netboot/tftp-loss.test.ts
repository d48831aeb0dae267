/**
 * TFTP under random UDP loss, with real clients nobody here wrote:
 *
 *   client ns (vcli 192.0.2.2: atftp, tftp-hpa) ── veth ── server ns (vsrv 192.0.2.1: TftpServer fixture)
 *
 * An nft rule in the server namespace drops N % of UDP packets in each
 * direction (`numgen random mod 100 < N drop`), so DATA, ACKs, OACKs and
 * requests are all lost. Every download must come out byte-identical, every
 * run is bounded, retransmission stays proportional to what was lost, and a
 * transfer whose client went away gives up after its retries and frees its
 * state.
 *
 * The server is test/helpers/tftp-server-fixture.ts (the project's
 * TftpServer) with a 200 ms retransmission timeout instead of the daemon's
 * 1 s, so a 20 MB download at 5 % loss (≈ 200 stalls) ends in about a minute.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodePacket, encodeRequest } from "../../src/tftp/codec.js";
import { assertFreshBuild } from "../helpers/daemon-process.js";
import { PROBE, runIn, waitUntil } from "../helpers/netns.js";
import { repoRoot } from "../helpers/reference.js";
import type { FixtureStatus } from "../helpers/tftp-server-fixture.js";
import { requireRoot, requireTool } from "../helpers/tools.js";
import { createVethPair, type VethPair } from "../helpers/veth-pair.js";

const ready =
  requireRoot() && requireTool("ip", "iproute2") && requireTool("nft", "nftables") && requireTool("atftp", "atftp") && requireTool("tftp", "tftp-hpa");

const FIXTURE = join(repoRoot(), "dist", "test", "helpers", "tftp-server-fixture.js");
/** The fixture's retransmission timeout and retries. */
const TIMEOUT_MS = 200;
const RETRIES = 8;
/** atftp's own retransmission timeout, seconds (its default is 5). */
const ATFTP_TIMEOUT_S = 1;

const FILES = { big: { name: "big.bin", size: 20 * 1024 * 1024 }, half: { name: "half.bin", size: 512 * 1024 } };

/** The fixture process: started by PID, asked for its state over stdin/stdout. */
class Fixture {
  private readonly lines: string[] = [];
  private stderr = "";
  private waiter: (() => void) | undefined;

  private constructor(private readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on("line", (l) => {
      this.lines.push(l);
      this.waiter?.();
    });
    child.stderr!.on("data", (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-20_000)));
  }

  static async start(ns: string, args: string[]): Promise<Fixture> {
    const child = spawn("ip", ["netns", "exec", ns, process.execPath, FIXTURE, ...args], { stdio: ["pipe", "pipe", "pipe"] });
    const f = new Fixture(child);
    try {
      await f.nextLine((l) => l.startsWith('{"ready":true'), 10_000);
    } catch (err) {
      await f.stop();
      throw err;
    }
    return f;
  }

  tail(): string {
    return `--- tftp fixture stderr (tail) ---\n${this.stderr.split("\n").slice(-15).join("\n")}`;
  }

  private nextLine(pred: (l: string) => boolean, ms: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new Error(`tftp fixture: no answer within ${ms} ms\n${this.tail()}`));
      }, ms);
      const check = () => {
        const i = this.lines.findIndex(pred);
        if (i >= 0) {
          clearTimeout(timer);
          this.waiter = undefined;
          resolve(this.lines.splice(0, i + 1).at(-1)!);
        } else if (this.child.exitCode !== null || this.child.signalCode !== null) {
          clearTimeout(timer);
          this.waiter = undefined;
          reject(new Error(`tftp fixture exited (${this.child.exitCode ?? this.child.signalCode})\n${this.tail()}`));
        }
      };
      this.waiter = check;
      check();
    });
  }

  async status(): Promise<FixtureStatus> {
    this.child.stdin!.write("status\n");
    const line = await this.nextLine((l) => l.startsWith('{"status":'), 5_000);
    return (JSON.parse(line) as { status: FixtureStatus }).status;
  }

  /** Waits (bounded) until no transfer is active: every transfer either ended or gave up. */
  idle(ms: number): Promise<FixtureStatus> {
    return waitUntil("no active TFTP transfer", async () => {
      const s = await this.status();
      return s.active === 0 ? s : undefined;
    }, ms, () => this.tail());
  }

  /** For process "exit" handlers, where nothing can be awaited. */
  killNow(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(timer);
  }
}

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

describe.skipIf(!ready)("TFTP under random UDP loss (nft in a namespace), real clients", () => {
  let net: VethPair | undefined;
  let fixture: Fixture | undefined;
  let work = "";
  const content = new Map<string, Buffer>();
  let outSeq = 0;
  const onExit = () => fixture?.killNow();

  /** Replaces the namespace's loss rules; counters start at zero. */
  async function setLoss(percent: number): Promise<void> {
    const rules =
      percent === 0
        ? "flush ruleset\n"
        : [
            "flush ruleset",
            "table inet loss {",
            `  chain in { type filter hook input priority 0; meta l4proto udp numgen random mod 100 < ${percent} counter drop; }`,
            `  chain out { type filter hook output priority 0; meta l4proto udp numgen random mod 100 < ${percent} counter drop; }`,
            "}",
            "",
          ].join("\n");
    const path = join(work, "loss.nft");
    writeFileSync(path, rules);
    const r = await runIn(net!.srv, "nft", ["-f", path]);
    expect(r.code, `nft -f: ${r.stderr}`).toBe(0);
  }

  /** Packets the loss rules dropped so far: received by the server (in) and sent by it (out). */
  async function dropped(): Promise<{ in: number; out: number }> {
    const r = await runIn(net!.srv, "nft", ["-j", "list", "table", "inet", "loss"]);
    expect(r.code, r.stderr).toBe(0);
    const out = { in: 0, out: 0 };
    for (const item of (JSON.parse(r.stdout.toString()) as { nftables: Array<{ rule?: { chain: string; expr: Array<{ counter?: { packets: number } }> } }> }).nftables) {
      const packets = item.rule?.expr.find((e) => e.counter)?.counter?.packets;
      if (packets !== undefined) out[item.rule!.chain === "in" ? "in" : "out"] += packets;
    }
    return out;
  }

  interface Download {
    code: number;
    output: string;
    data: Buffer;
  }

  async function atftp(name: string, options: string[], timeoutMs: number): Promise<Download> {
    const local = join(work, `atftp-${++outSeq}`);
    const r = await runIn(
      net!.cli,
      "atftp",
      ["--tftp-timeout", String(ATFTP_TIMEOUT_S), "-g", "-r", name, "-l", local, ...options.flatMap((o) => ["--option", o]), net!.server, "69"],
      timeoutMs,
    );
    return finished(r, local);
  }

  async function tftpHpa(name: string, timeoutMs: number): Promise<Download> {
    const local = join(work, `hpa-${++outSeq}`);
    const r = await runIn(net!.cli, "tftp", ["-m", "binary", net!.server, "69", "-c", "get", name, local], timeoutMs);
    return finished(r, local);
  }

  function finished(r: { code: number; stdout: Buffer; stderr: string }, local: string): Download {
    let data = Buffer.alloc(0);
    try {
      data = readFileSync(local);
    } catch {
      // nothing written
    }
    rmSync(local, { force: true });
    // atftp prints one line per out-of-order block: keep the rest.
    const output = `${r.stdout.toString()}${r.stderr}`
      .split("\n")
      .filter((l) => !l.startsWith("got wrong block"))
      .slice(-20)
      .join("\n");
    return { code: r.code, output, data };
  }

  /**
   * One lossy download: byte-identical, the transfer ended on the server (the
   * final ACK may be lost, and then the server ends it by timeout), and the
   * DATA it sent again is bounded by what the network lost.
   */
  async function lossyRun(percent: number, file: keyof typeof FILES, get: () => Promise<Download>, windowsize: number): Promise<void> {
    await setLoss(percent);
    const before = await fixture!.status();
    const d = await get();
    const want = content.get(FILES[file].name)!;
    const ctx = `exit ${d.code}\n${d.output}\n${fixture!.tail()}`;
    expect({ size: d.data.length, sha256: sha256(d.data) }, ctx).toEqual({ size: want.length, sha256: sha256(want) });
    const lost = await dropped();
    await setLoss(0);
    const after = await fixture!.idle(60_000);
    expect(lost.in, "the loss rule dropped packets the server would have received").toBeGreaterThan(0);
    expect(lost.out, "the loss rule dropped packets the server sent").toBeGreaterThan(0);
    const ended = (k: string) => (after.transfers[k] ?? 0) - (before.transfers[k] ?? 0);
    expect(ended("ok") + ended("timeout"), `one transfer ended: ${JSON.stringify(after.transfers)}`).toBe(1);
    expect(ended("error") + ended("aborted"), ctx).toBe(0);
    // Each lost packet costs at most a few resent windows (a lost ACK can
    // also cost the stale window resent while the client waits out its own
    // timer); a duplicate-ACK storm (sorcerer's apprentice) would be far above.
    const retransmits = after.retransmits - before.retransmits;
    expect(retransmits, `retransmitted ${retransmits} DATA packets for ${lost.in + lost.out} lost packets`).toBeLessThanOrEqual(3 * windowsize * (lost.in + lost.out));
    expect(after.bytes - before.bytes, "every byte was sent at least once, and counted once").toBe(want.length);
  }

  beforeAll(async () => {
    assertFreshBuild();
    process.once("exit", onExit);
    work = mkdtempSync(join(tmpdir(), "tnbl-"));
    const root = join(work, "root");
    mkdirSync(root);
    for (const f of Object.values(FILES)) {
      const data = randomBytes(f.size);
      content.set(f.name, data);
      writeFileSync(join(root, f.name), data);
    }
    net = await createVethPair({ tag: `tnbl-${process.pid}`, subnet: "192.0.2" });
    fixture = await Fixture.start(net.srv, ["--address", net.server, "--root", root, "--timeout-ms", String(TIMEOUT_MS), "--retries", String(RETRIES)]);
  }, 60_000);

  afterAll(async () => {
    await fixture?.stop();
    process.off("exit", onExit);
    net?.remove();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("5 % loss: atftp gets 20 MB with blksize 1468 and windowsize 8, byte-identical", async () => {
    await lossyRun(5, "big", () => atftp(FILES.big.name, ["blksize 1468", "windowsize 8"], 200_000), 8);
  }, 280_000);

  it("20 % loss: atftp gets 512 KB with blksize 1468 and windowsize 8, byte-identical", async () => {
    await lossyRun(20, "half", () => atftp(FILES.half.name, ["blksize 1468", "windowsize 8"], 120_000), 8);
  }, 180_000);

  it("5 % loss: tftp-hpa gets 512 KB in 512-byte blocks without options, byte-identical", async () => {
    await lossyRun(5, "half", () => tftpHpa(FILES.half.name, 120_000), 1);
  }, 180_000);

  it("a client that never answers: DATA 1 is resent exactly `retries` times, then the transfer gives up and frees its slot", async () => {
    await setLoss(0);
    const before = await fixture!.idle(30_000);
    // One RRQ without options from a socket that then ignores everything (dhcp-probe is a plain UDP sender).
    const rrq = encodeRequest("rrq", FILES.half.name, "octet");
    const r = await runIn(net!.cli, process.execPath, [PROBE, "--packet", rrq.toString("hex"), "--bind", "0.0.0.0", "--port", "0", "--to", `${net!.server}:69`, "--timeout", "300"], 15_000);
    expect(r.code, r.stderr).toBe(0);
    const replies = (JSON.parse(r.stdout.toString()) as { replies: Array<{ hex: string }> }).replies.map((x) => decodePacket(Buffer.from(x.hex, "hex")));
    expect(replies[0], "the transfer started with DATA 1").toMatchObject({ op: "data", block: 1 });
    const after = await fixture!.idle(60_000);
    expect((after.transfers.timeout ?? 0) - (before.transfers.timeout ?? 0)).toBe(1);
    expect(after.retransmits - before.retransmits).toBe(RETRIES);
  }, 90_000);

  it("a windowed client killed mid-transfer: its window is resent `retries` times, then the state is freed and the next client is served", async () => {
    await setLoss(0);
    const before = await fixture!.idle(30_000);
    const local = join(work, "killed");
    const child = spawn(
      "ip",
      ["netns", "exec", net!.cli, "atftp", "-g", "-r", FILES.big.name, "-l", local, "--option", "blksize 1468", "--option", "windowsize 8", net!.server, "69"],
      { stdio: "ignore" },
    );
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    try {
      // `ip netns exec` execs atftp in place: this PID is atftp's own.
      await waitUntil("the transfer under way", async () => {
        const s = await fixture!.status();
        return s.active === 1 && s.bytes > before.bytes ? true : undefined;
      }, 10_000, () => fixture!.tail());
      child.kill("SIGKILL");
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    }
    const after = await fixture!.idle(60_000);
    expect(after.bytes - before.bytes, "killed before the end of the file").toBeLessThan(FILES.big.size);
    expect((after.transfers.timeout ?? 0) - (before.transfers.timeout ?? 0), fixture!.tail()).toBe(1);
    expect(after.retransmits - before.retransmits).toBe(RETRIES * 8);

    const next = await tftpHpa(FILES.half.name, 60_000);
    expect(sha256(next.data), next.output).toBe(sha256(content.get(FILES.half.name)!));
  }, 120_000);
});

/**
 * Processes the benchmark starts: clients run to completion under a time
 * limit; servers run in the background until stopped. Everything is stopped
 * by its own PID (and a forking server's children by theirs), also when the
 * benchmark is interrupted.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";

/** Synchronous last-resort cleanups, run on exit and on SIGINT/SIGTERM. */
const emergency = new Set<() => void>();
let handlersInstalled = false;

export function onEmergency(fn: () => void): () => void {
  if (!handlersInstalled) {
    handlersInstalled = true;
    process.on("exit", runEmergency);
    for (const sig of ["SIGINT", "SIGTERM"] as const) {
      process.once(sig, () => {
        runEmergency();
        process.exit(130);
      });
    }
  }
  emergency.add(fn);
  return () => emergency.delete(fn);
}

function runEmergency(): void {
  for (const fn of [...emergency]) {
    try {
      fn();
    } catch {
      // best effort: the process is going away
    }
  }
  emergency.clear();
}

/** The command prefix that runs `cmd` in a network namespace (ip netns exec execs it: same PID). */
export function inNetns(netns: string | undefined, cmd: string, args: string[]): [string, string[]] {
  return netns ? ["ip", ["netns", "exec", netns, cmd, ...args]] : [cmd, args];
}

export interface Finished {
  /** Exit code; -1 when killed by a signal (the time limit). */
  code: number;
  stdout: string;
  stderr: string;
  /** Wall-clock seconds from spawn to exit. */
  seconds: number;
}

/**
 * Runs a client to completion; never rejects on a non-zero exit. Killed by
 * its PID after timeoutMs (code -1 then), or when the benchmark is interrupted.
 */
export function runToEnd(cmd: string, args: string[], opts: { timeoutMs: number; netns?: string }): Promise<Finished> {
  const [c, a] = inNetns(opts.netns, cmd, args);
  return new Promise((resolve) => {
    const started = process.hrtime.bigint();
    const child = spawn(c, a, { stdio: ["ignore", "pipe", "pipe"], timeout: opts.timeoutMs, killSignal: "SIGKILL" });
    const out = collect(child, "stdout");
    const err = collect(child, "stderr");
    const forget = onEmergency(() => killQuietly(child.pid, "SIGKILL"));
    let spawnError = "";
    child.once("error", (e) => (spawnError = `${e.message}\n`));
    child.once("close", (code) => {
      forget();
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      resolve({ code: code ?? -1, stdout: out(), stderr: `${spawnError}${err()}`, seconds });
    });
  });
}

/** Output kept per process: clients print a line or two; a chatty server must not fill memory. */
const MAX_OUTPUT = 1 << 20;

function collect(child: ChildProcess, which: "stdout" | "stderr"): () => string {
  const chunks: Buffer[] = [];
  let size = 0;
  child[which]?.on("data", (b: Buffer) => {
    if (size < MAX_OUTPUT) chunks.push(b);
    size += b.length;
  });
  return () => Buffer.concat(chunks).toString("utf8");
}

export function killQuietly(pid: number | undefined, sig: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** PIDs whose parent is `pid`, read from /proc (kernels without /proc/PID/task/TID/children too). */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      // Field 4 (ppid) follows the ")" that ends the command name, which may contain spaces.
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) out.push(Number(name));
    } catch {
      // exited while we looked
    }
  }
  return out;
}

/** Resident memory of one process in bytes (VmRSS), or undefined once it has exited. */
export function rssBytes(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Linux reports CPU time in clock ticks of 1/100 s (USER_HZ) on every architecture we run on. */
const TICKS_PER_SECOND = 100;

/** CPU seconds (user + system, all threads) a process has used; 0 once it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields 14 and 15 (utime, stime), counted from after the ")" closing the command name.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ").map(Number);
    return (f[11]! + f[12]!) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/**
 * CPU seconds used by the children of a forking server that reaps them with
 * SIGCHLD ignored (tftpd-hpa: their time never reaches the parent's cutime).
 * Each child is polled until it exits; the last poll misses at most
 * `intervalMs` of its time.
 */
export class ChildCpuTracker {
  private readonly last = new Map<number, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly parent: number,
    intervalMs = 10,
  ) {
    this.timer = setInterval(() => this.poll(), intervalMs);
  }

  private poll(): void {
    const live = [...this.last.keys()].filter((pid) => rssBytes(pid) !== undefined);
    // Scanning /proc is the costly part: only while no child is known to be running.
    for (const pid of live.length > 0 ? live : childrenOf(this.parent)) {
      const cpu = cpuSeconds(pid);
      if (cpu > 0 || !this.last.has(pid)) this.last.set(pid, cpu);
    }
  }

  stop(): number {
    clearInterval(this.timer);
    let sum = 0;
    for (const v of this.last.values()) sum += v;
    return sum;
  }
}

/** Samples a set of processes' summed RSS at an interval; `stop()` gives the peak. */
export class RssSampler {
  private peak = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly pids: () => number[],
    intervalMs = 50,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  private sample(): void {
    let sum = 0;
    for (const pid of this.pids()) sum += rssBytes(pid) ?? 0;
    this.peak = Math.max(this.peak, sum);
  }

  stop(): number {
    clearInterval(this.timer);
    this.sample();
    return this.peak;
  }
}

export interface Background {
  readonly pid: number;
  readonly name: string;
  /** Everything it printed so far (bounded). */
  output(): string;
  exited(): boolean;
  /** SIGTERM to it and its children by PID, SIGKILL after graceMs; idempotent. */
  stop(graceMs?: number): Promise<void>;
}

/** Starts a long-running server. The caller waits for readiness its own way. */
export function startBackground(name: string, cmd: string, args: string[], opts: { netns?: string } = {}): Background {
  const [c, a] = inNetns(opts.netns, cmd, args);
  const child = spawn(c, a, { stdio: ["ignore", "pipe", "pipe"] });
  if (child.pid === undefined) throw new Error(`cannot start ${name} (${cmd})`);
  const pid = child.pid;
  const out = collect(child, "stdout");
  const err = collect(child, "stderr");
  let done = false;
  const closed = new Promise<void>((resolve) =>
    child.once("close", () => {
      done = true;
      resolve();
    }),
  );
  child.once("error", () => {
    // "close" follows
  });
  const killTree = (sig: NodeJS.Signals) => {
    const kids = done ? [] : childrenOf(pid);
    killQuietly(pid, sig);
    for (const k of kids) killQuietly(k, sig);
  };
  const forget = onEmergency(() => {
    if (!done) killTree("SIGKILL");
  });
  let stopping: Promise<void> | undefined;
  return {
    pid,
    name,
    output: () => `${out()}${err()}`,
    exited: () => done,
    stop(graceMs = 5_000) {
      stopping ??= (async () => {
        if (!done) {
          killTree("SIGTERM");
          const timer = setTimeout(() => killTree("SIGKILL"), graceMs);
          await closed;
          clearTimeout(timer);
        }
        forget();
      })();
      return stopping;
    },
  };
}

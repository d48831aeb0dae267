/**
 * The built daemon as a real process, for the netboot tests:
 * `node dist/src/cli.js serve --config FILE`, optionally inside a network
 * namespace (`ip netns exec NS …` execs node in place, so the child's PID is
 * the daemon's own). Stdout (JSON log lines) and stderr are collected; every
 * wait is bounded; the process is stopped by its PID only.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { createInterface } from "node:readline";
import { repoRoot } from "./reference.js";

export const CLI = join(repoRoot(), "dist", "src", "cli.js");

/** One pino JSON line (level 10 trace … 60 fatal), or the raw text when a line is not JSON. */
export interface LogLine {
  level?: number;
  msg?: string;
  [key: string]: unknown;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface DaemonProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Every stdout line so far, parsed (non-JSON lines as `{ raw }`). */
  readonly logs: LogLine[];
  /** Every stderr line so far. */
  readonly stderr: string[];
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<Exit>;
  /** The exit, once it happened. */
  exit(): Exit | undefined;
  /** The last `n` lines of stdout and stderr, for assertion messages. */
  tail(n?: number): string;
  /** Index to pass as `since` so a wait only looks at lines logged after now. */
  mark(): number;
  /** The first log line at index ≥ since matching `pred`; rejects (with the log tail) after `timeoutMs` or if the process exits first. */
  waitForLog(what: string, pred: (l: LogLine) => boolean, opts?: { since?: number; timeoutMs?: number }): Promise<LogLine>;
  /** Sends a signal by PID. */
  signal(sig: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit. Safe to call on an exited process. */
  stop(graceMs?: number): Promise<Exit>;
}

export interface SpawnOptions {
  /** Config file; absent: the daemon runs on its embedded default. */
  configPath?: string;
  /** Network namespace to run in; the host's when absent. */
  netns?: string;
  /** A command the daemon runs under (inside the namespace), e.g. `unshare --mount …`; it must exec its arguments. */
  wrapper?: string[];
  /** Extra arguments after `serve --config FILE`. */
  args?: string[];
}

/** Starts the daemon without waiting for it to be ready (for tests that expect it to fail). */
export function spawnDaemon(opts: SpawnOptions): DaemonProcess {
  const nodeArgs = [CLI, "serve", ...(opts.configPath ? ["--config", opts.configPath] : []), ...(opts.args ?? [])];
  const inner = [...(opts.wrapper ?? []), process.execPath, ...nodeArgs];
  const [cmd, ...args] = opts.netns ? ["ip", "netns", "exec", opts.netns, ...inner] : inner;
  const child = spawn(cmd!, args, { stdio: ["ignore", "pipe", "pipe"] });
  if (child.pid === undefined) throw new Error(`could not spawn ${cmd}`);
  const logs: LogLine[] = [];
  const stderr: string[] = [];
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const w of [...waiters]) w();
  };
  createInterface({ input: child.stdout! }).on("line", (line) => {
    let parsed: LogLine;
    try {
      const v = JSON.parse(line) as unknown;
      parsed = v && typeof v === "object" && !Array.isArray(v) ? (v as LogLine) : { raw: line };
    } catch {
      parsed = { raw: line };
    }
    logs.push(parsed);
    notify();
  });
  createInterface({ input: child.stderr! }).on("line", (line) => {
    stderr.push(line);
    notify();
  });
  let exitInfo: Exit | undefined;
  // "close" (not "exit"): by then every line of stdout/stderr has been read.
  const exited = new Promise<Exit>((resolve) => {
    child.once("close", (code, signal) => {
      exitInfo = { code, signal };
      resolve(exitInfo);
      notify();
    });
  });
  child.once("error", () => {
    // spawn failures also emit "close"; nothing else to do here.
  });

  const tail = (n = 40): string => {
    const out = logs.slice(-n).map((l) => (typeof l.raw === "string" ? l.raw : JSON.stringify(l)));
    const err = stderr.slice(-n);
    return `--- daemon pid ${child.pid} stdout (last ${out.length}) ---\n${out.join("\n")}\n--- stderr (last ${err.length}) ---\n${err.join("\n")}${
      exitInfo ? `\n--- exited: code ${exitInfo.code}, signal ${exitInfo.signal} ---` : ""
    }`;
  };

  const waitForLog: DaemonProcess["waitForLog"] = (what, pred, o = {}) => {
    const since = o.since ?? 0;
    const timeoutMs = o.timeoutMs ?? 10_000;
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const check = () => {
        const hit = logs.slice(since).find(pred);
        if (hit) {
          done();
          resolve(hit);
        } else if (exitInfo) {
          done();
          reject(new Error(`daemon exited while waiting for ${what}\n${tail()}`));
        }
      };
      const done = () => {
        waiters.delete(check);
        if (timer) clearTimeout(timer);
      };
      timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${tail()}`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  };

  const pid = child.pid;
  const signal = (sig: NodeJS.Signals) => {
    if (exitInfo) return;
    process.kill(pid, sig);
  };

  const stop = async (graceMs = 10_000): Promise<Exit> => {
    if (exitInfo) return exitInfo;
    signal("SIGTERM");
    const timer = setTimeout(() => {
      if (!exitInfo) process.kill(pid, "SIGKILL");
    }, graceMs);
    try {
      return await exited;
    } finally {
      clearTimeout(timer);
    }
  };

  return {
    child,
    pid,
    logs,
    stderr,
    exited,
    exit: () => exitInfo,
    tail,
    mark: () => logs.length,
    waitForLog,
    signal,
    stop,
  };
}

/** Starts the daemon and waits (bounded) for its "talos-netboot running" line. Kills it if it does not get there. */
export async function startDaemon(opts: SpawnOptions & { readyTimeoutMs?: number }): Promise<DaemonProcess> {
  const d = spawnDaemon(opts);
  try {
    await d.waitForLog("the \"talos-netboot running\" log line", (l) => l.msg === "talos-netboot running", { timeoutMs: opts.readyTimeoutMs ?? 15_000 });
  } catch (err) {
    await d.stop(3_000);
    throw err;
  }
  return d;
}

/** Kills (by PID, SIGKILL) a daemon that is still running: for process "exit" handlers, where nothing can be awaited. */
export function killNow(d: DaemonProcess | undefined): void {
  if (d && !d.exit()) {
    try {
      process.kill(d.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

/**
 * Throws unless dist/ holds a build at least as new as every source file:
 * running yesterday's build against today's sources would test the wrong code.
 */
export function assertFreshBuild(): void {
  const root = repoRoot();
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm run test:netboot does)`);
  const stale: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, e.name);
      if (e.isDirectory()) walk(path);
      else if (e.name.endsWith(".ts")) {
        const rel = relative(root, path);
        const built = join(root, "dist", rel.replace(/\.ts$/, ".js"));
        if (!existsSync(built) || statSync(built).mtimeMs < statSync(path).mtimeMs) stale.push(rel);
      }
    }
  };
  walk(join(root, "src"));
  walk(join(root, "test", "helpers"));
  if (stale.length) throw new Error(`dist/ is older than ${stale.join(", ")}: run \`npm run build\` (npm run test:netboot does)`);
}

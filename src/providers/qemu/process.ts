/**
 * Running commands and tracking QEMU processes by PID. A PID from a PID file
 * is only trusted while /proc says it is a QEMU started with that very PID
 * file: a reused PID belongs to someone else and is never signalled.
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command without a shell, bounded in time; never throws for a non-zero exit. */
export function run(cmd: string, args: readonly string[], timeoutMs = 30_000): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? ((err as { code: number }).code) : null) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) || (err && code === null ? err.message : "") });
    });
  });
}

export function readPidFile(path: string): number | null {
  try {
    const pid = Number(readFileSync(path, "utf8").trim());
    return Number.isInteger(pid) && pid > 1 ? pid : null;
  } catch {
    return null;
  }
}

/** The process's argv, or null when it is gone (or a zombie). */
export function processArgv(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Field 3, after the parenthesised command name: Z is a zombie, as good as gone.
    if (/\) Z /.test(stat)) return null;
    const raw = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    return raw.split("\0").filter((s) => s.length > 0);
  } catch {
    return null;
  }
}

/** The PID in `pidFile` when it is alive and is the QEMU that wrote that file. */
export function ourQemuPid(pidFile: string): number | null {
  const pid = readPidFile(pidFile);
  if (pid === null) return null;
  const argv = processArgv(pid);
  if (!argv) return null;
  const i = argv.indexOf("-pidfile");
  return i >= 0 && argv[i + 1] === pidFile ? pid : null;
}

/** Waits (bounded) until the process is gone. */
export async function waitGone(pid: number, timeoutMs: number, pollMs = 100): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (processArgv(pid) !== null) {
    if (Date.now() >= deadline) return false;
    await sleep(pollMs);
  }
  return true;
}

/** SIGTERM, then SIGKILL after `graceMs`; true when the process is gone. */
export async function terminate(pid: number, graceMs = 3_000): Promise<boolean> {
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return true;
  }
  if (await waitGone(pid, graceMs)) return true;
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    return true;
  }
  return waitGone(pid, 5_000);
}

import { pino, type Logger, type Level } from "pino";
import pretty from "pino-pretty";

export type { Logger };
export type LogLevel = Level | "silent";

/**
 * JSON lines for journald and log shippers; a human-readable form when stdout
 * is a terminal. Secrets never reach a logger: callers pass paths and ids only.
 */
export function createLogger(level: LogLevel = "info", opts: { pretty?: boolean } = {}): Logger {
  const wantPretty = opts.pretty ?? Boolean(process.stdout.isTTY);
  const base = { level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime };
  if (wantPretty) {
    return pino(base, pretty({ colorize: true, sync: true, translateTime: "SYS:HH:MM:ss.l" }));
  }
  return pino(base, pino.destination({ fd: 1, sync: true }));
}

/** A logger that drops everything: for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}

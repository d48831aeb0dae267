/**
 * One QMP command over a unix socket: read the greeting, negotiate
 * capabilities, send the command, read its answer (skipping events). Bounded
 * by a timeout; the socket is always closed.
 */
import { createConnection } from "node:net";

export class QmpError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "QmpError";
  }
}

export function qmpCommand(socketPath: string, execute: string, args?: Record<string, unknown>, timeoutMs = 5_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(socketPath);
    let buf = "";
    let stage: "greeting" | "caps" | "cmd" = "greeting";
    const done = (err: Error | null, value?: unknown) => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(value);
    };
    const timer = setTimeout(() => done(new QmpError(`QMP ${execute}: no answer within ${timeoutMs} ms`)), timeoutMs);
    sock.on("error", (e) => done(new QmpError(`QMP ${execute}: ${e.message}`)));
    sock.on("close", () => done(new QmpError(`QMP ${execute}: connection closed`)));
    sock.on("data", (chunk) => {
      buf += chunk.toString("utf8");
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        let msg: Record<string, unknown>;
        try {
          msg = JSON.parse(line) as Record<string, unknown>;
        } catch {
          done(new QmpError(`QMP ${execute}: not JSON: ${line.slice(0, 80)}`));
          return;
        }
        if ("event" in msg) continue;
        if (stage === "greeting" && "QMP" in msg) {
          stage = "caps";
          sock.write(`${JSON.stringify({ execute: "qmp_capabilities" })}\n`);
        } else if (stage === "caps" && "return" in msg) {
          stage = "cmd";
          sock.write(`${JSON.stringify(args ? { execute, arguments: args } : { execute })}\n`);
        } else if ("error" in msg) {
          const e = msg.error as { desc?: string };
          done(new QmpError(`QMP ${execute}: ${e.desc ?? JSON.stringify(e)}`));
        } else if (stage === "cmd" && "return" in msg) {
          done(null, msg.return);
        }
      }
    });
  });
}

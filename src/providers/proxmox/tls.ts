/**
 * TLS to Proxmox VE is always verified, one of two ways (DESIGN §5):
 * - a CA (`pve-root-ca.pem`, which signs every node's `pve-ssl.pem`):
 *   ordinary chain and host name verification;
 * - a pinned SHA-256 fingerprint of the node's certificate (what the PVE GUI
 *   and `pvenode cert info` show). PVE certificates are usually self-signed,
 *   so Node's chain check cannot succeed and its `checkServerIdentity` hook is
 *   never reached; the connector therefore takes the handshake's outcome
 *   into its own hands and accepts the socket only when the peer certificate
 *   has exactly the pinned fingerprint — before a single request byte
 *   (or the token) is written. Anything else is refused.
 */
import type { TLSSocket } from "node:tls";
import { Agent, buildConnector } from "undici";
import { PveFingerprintError } from "./errors.js";

export type PveTrust = { ca: string | Buffer } | { fingerprint: string };

export function normaliseFingerprint(fp: string): string {
  return fp.trim().toUpperCase();
}

export interface AgentOptions {
  connectTimeoutMs?: number;
  headersTimeoutMs?: number;
  bodyTimeoutMs?: number;
  /** Connections per PVE origin. */
  connections?: number;
}

export function pveAgent(trust: PveTrust, opts: AgentOptions = {}): Agent {
  const common = {
    connections: opts.connections ?? 16,
    headersTimeout: opts.headersTimeoutMs ?? 60_000,
    bodyTimeout: opts.bodyTimeoutMs ?? 60_000,
    keepAliveTimeout: 4_000,
  };
  if ("ca" in trust) {
    return new Agent({ ...common, connect: { ca: trust.ca, timeout: opts.connectTimeoutMs ?? 10_000 } });
  }
  const expected = normaliseFingerprint(trust.fingerprint);
  const base = buildConnector({
    timeout: opts.connectTimeoutMs ?? 10_000,
    // The pin below is the verification; resumed sessions are not used so
    // every connection shows its certificate afresh.
    rejectUnauthorized: false,
    maxCachedSessions: 0,
  });
  const connector: buildConnector.connector = (options, callback) => {
    base(options, (err, socket) => {
      if (err !== null) {
        callback(err, null);
        return;
      }
      const actual = (socket as TLSSocket).getPeerCertificate?.()?.fingerprint256;
      if (typeof actual !== "string" || actual.toUpperCase() !== expected) {
        socket.destroy();
        callback(new PveFingerprintError(expected, typeof actual === "string" ? actual : undefined), null);
        return;
      }
      callback(null, socket);
    });
  };
  return new Agent({ ...common, connect: connector });
}

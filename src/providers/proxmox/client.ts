/**
 * A small typed client for the Proxmox VE REST API (`/api2/json`), on
 * undici. Facts it rests on (DESIGN §5, from PVE's source):
 * - auth: `Authorization: PVEAPIToken=USER@REALM!TOKENID=SECRET`;
 * - POST/PUT bodies are form-encoded, every value percent-encoded:
 *   pve-http-server splits bodies on `;` as well as `&` and cuts each value
 *   at the next `=`, so a raw `net0=virtio=MAC,bridge=…` arrives as
 *   `net0=virtio`; DELETE parameters go in the query string (a body is
 *   refused);
 * - answers are `{"data": …}`; errors keep PVE's text (see errors.ts);
 * - 595/596 and a lost answer to a POST/PUT/DELETE are "may have run":
 *   reported as PveIndeterminateError, never retried here. GETs are retried
 *   a few times.
 * - tasks: mutating calls return a UPID; its status is read on the node the
 *   UPID names until `stopped`; `OK` or `WARNINGS: n` is success.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { fetch, type Agent } from "undici";
import { z } from "zod";
import type { Logger } from "../../log.js";
import { silentLogger } from "../../log.js";
import {
  PveConnectionError,
  PveFingerprintError,
  PveHttpError,
  PveIndeterminateError,
  PveResponseError,
  PveTaskError,
  PveTaskTimeoutError,
} from "./errors.js";
import { pveAgent, type PveTrust } from "./tls.js";
import { parseUpid, taskSucceeded } from "./upid.js";

export type PveParams = Record<string, string | number | boolean | undefined | null>;

export interface PveClientOptions {
  /** `https://host:8006` */
  url: string;
  tokenId: string;
  /** Secret: kept in this object only, never logged. */
  tokenSecret: string;
  trust: PveTrust;
  /** Per request; pveproxy itself gives pvedaemon 30 s. */
  timeoutMs?: number;
  /** Extra attempts for a GET that met a network error or 595/596. */
  getRetries?: number;
  log?: Logger;
}

export interface TaskWaitOptions {
  timeoutMs: number;
  /** First poll delay; it grows to `maxIntervalMs`. */
  intervalMs?: number;
  maxIntervalMs?: number;
}

export interface TaskOutcome {
  upid: string;
  exitstatus: string;
  /** n of `WARNINGS: n`, else 0. */
  warnings: number;
}

/** `/nodes/${node}/qemu/${vmid}` with every segment percent-encoded. */
export function pvePath(strings: TemplateStringsArray, ...values: Array<string | number>): string {
  return strings.reduce((acc, s, i) => acc + s + (i < values.length ? encodeURIComponent(String(values[i])) : ""), "");
}

/** Form/query encoding that survives PVE's decoder: booleans as 1/0, absent values left out. */
export function encodeParams(params: PveParams): URLSearchParams {
  const out = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null) continue;
    out.append(k, typeof v === "boolean" ? (v ? "1" : "0") : String(v));
  }
  return out;
}

/** Failures before the request left: connecting, or TLS verification during the handshake. */
const CONNECT_CODES = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "UND_ERR_CONNECT_TIMEOUT"]);
const TLS_VERIFY_CODE = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|INVALID_CA|HOSTNAME_MISMATCH)/;
const isConnectCode = (c: string): boolean => CONNECT_CODES.has(c) || TLS_VERIFY_CODE.test(c);

const taskStatusSchema = z.object({
  status: z.string(),
  exitstatus: z.string().optional(),
  type: z.string().optional(),
});

export class PveClient {
  private readonly base: string;
  private readonly agent: Agent;
  private readonly auth: string;
  private readonly timeoutMs: number;
  private readonly getRetries: number;
  private readonly log: Logger;

  constructor(opts: PveClientOptions) {
    this.base = `${opts.url.replace(/\/+$/, "")}/api2/json`;
    this.agent = pveAgent(opts.trust);
    this.auth = `PVEAPIToken=${opts.tokenId}=${opts.tokenSecret}`;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.getRetries = opts.getRetries ?? 2;
    this.log = opts.log ?? silentLogger();
  }

  get<S extends z.ZodType>(path: string, schema: S, query: PveParams = {}): Promise<z.output<S>> {
    return this.call("GET", path, schema, query, undefined);
  }

  post<S extends z.ZodType>(path: string, params: PveParams, schema: S): Promise<z.output<S>> {
    return this.call("POST", path, schema, {}, encodeParams(params));
  }

  put<S extends z.ZodType>(path: string, params: PveParams, schema: S): Promise<z.output<S>> {
    return this.call("PUT", path, schema, {}, encodeParams(params));
  }

  /** DELETE: parameters in the query string, never a body. */
  delete<S extends z.ZodType>(path: string, query: PveParams, schema: S): Promise<z.output<S>> {
    return this.call("DELETE", path, schema, query, undefined);
  }

  /** `GET /version`: proves the URL, the TLS trust and the token. */
  version(): Promise<{ version: string; release?: string; repoid?: string }> {
    return this.get("/version", z.object({ version: z.string(), release: z.string().optional(), repoid: z.string().optional() }));
  }

  /**
   * Polls a task on the node its UPID names until it stops; resolves on
   * `OK`/`WARNINGS: n`, throws PveTaskError with PVE's exit status otherwise
   * and PveTaskTimeoutError after `timeoutMs`.
   */
  async waitTask(upid: string, opts: TaskWaitOptions): Promise<TaskOutcome> {
    const u = parseUpid(upid);
    if (!u) throw new PveResponseError("GET", "task", `not a UPID: ${JSON.stringify(upid)}`);
    const deadline = Date.now() + opts.timeoutMs;
    let interval = opts.intervalMs ?? 500;
    const maxInterval = opts.maxIntervalMs ?? 2_000;
    const path = pvePath`/nodes/${u.node}/tasks/${upid}/status`;
    // Bounded by the deadline; at least one poll even with a tiny timeout.
    for (let first = true; first || Date.now() < deadline; first = false) {
      const st = await this.get(path, taskStatusSchema);
      if (st.status === "stopped") {
        const exitstatus = st.exitstatus ?? "unknown";
        if (!taskSucceeded(exitstatus)) throw new PveTaskError(upid, u.type, exitstatus);
        const w = /^WARNINGS: (\d+)$/.exec(exitstatus);
        if (w) this.log.warn({ upid, exitstatus }, "Proxmox task finished with warnings");
        return { upid, exitstatus, warnings: w ? Number(w[1]) : 0 };
      }
      const left = deadline - Date.now();
      if (left <= 0) break;
      await sleep(Math.min(interval, left));
      interval = Math.min(maxInterval, Math.ceil(interval * 1.5));
    }
    throw new PveTaskTimeoutError(upid, u.type, Math.round(opts.timeoutMs / 1000));
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  private async call<S extends z.ZodType>(method: string, path: string, schema: S, query: PveParams, body: URLSearchParams | undefined): Promise<z.output<S>> {
    const attempts = method === "GET" ? this.getRetries + 1 : 1;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.once(method, path, schema, query, body);
      } catch (err) {
        const transient = err instanceof PveIndeterminateError;
        if (!transient || attempt >= attempts) throw err;
        this.log.debug({ method, path, attempt, err: (err as Error).message }, "Proxmox GET failed, retrying");
        await sleep(200 * attempt);
      }
    }
  }

  private async once<S extends z.ZodType>(method: string, path: string, schema: S, query: PveParams, body: URLSearchParams | undefined): Promise<z.output<S>> {
    const qs = encodeParams(query).toString();
    const url = `${this.base}${path}${qs ? `?${qs}` : ""}`;
    const headers: Record<string, string> = { authorization: this.auth, accept: "application/json" };
    if (body) headers["content-type"] = "application/x-www-form-urlencoded";
    let res: Awaited<ReturnType<typeof fetch>>;
    let text: string;
    try {
      res = await fetch(url, {
        method,
        headers,
        body: body?.toString(),
        dispatcher: this.agent,
        signal: AbortSignal.timeout(this.timeoutMs),
        redirect: "error",
      });
      text = await res.text();
    } catch (err) {
      throw this.transportError(method, path, err);
    }
    this.log.debug({ method, path, status: res.status }, "Proxmox API call");
    if (res.status === 595 || res.status === 596) {
      throw new PveIndeterminateError(method, path, res.status, res.statusText || "proxy error");
    }
    if (res.status < 200 || res.status > 299) {
      throw httpError(method, path, res.status, res.statusText, text);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new PveResponseError(method, path, "not JSON");
    }
    const data = (json as { data?: unknown } | null)?.data;
    const parsed = schema.safeParse(data);
    if (!parsed.success) {
      throw new PveResponseError(method, path, parsed.error.issues.map((i) => `${i.path.join(".") || "data"}: ${i.message}`).join("; "));
    }
    return parsed.data;
  }

  private transportError(method: string, path: string, err: unknown): Error {
    const chain: unknown[] = [];
    for (let e: unknown = err, i = 0; e && i < 6; e = (e as { cause?: unknown }).cause, i++) chain.push(e);
    const pin = chain.find((e): e is PveFingerprintError => e instanceof PveFingerprintError);
    if (pin) return new PveConnectionError(this.base, pin.message, { cause: pin });
    const code = chain.map((e) => (e as { code?: unknown }).code).find((c): c is string => typeof c === "string" && isConnectCode(c));
    const last = chain[chain.length - 1] as Error | undefined;
    if (code) return new PveConnectionError(this.base, `${code}: ${last?.message ?? ""}`, { cause: err });
    // Timeouts and dropped connections after the request left: it may have run.
    return new PveIndeterminateError(method, path, null, last?.message ?? String(err), { cause: err });
  }
}

function httpError(method: string, path: string, status: number, reason: string, text: string): PveHttpError {
  let message = "";
  let errors: Record<string, string> = {};
  // 401 comes with an empty body: nothing to parse.
  if (status !== 401 && text.trim()) {
    try {
      const body = JSON.parse(text) as { message?: unknown; errors?: unknown };
      if (typeof body.message === "string") message = body.message.trim();
      if (body.errors && typeof body.errors === "object") {
        errors = Object.fromEntries(Object.entries(body.errors as Record<string, unknown>).map(([k, v]) => [k, String(v).trim()]));
      }
    } catch {
      // not JSON: the reason phrase carries the message
    }
  }
  return new PveHttpError(method, path, status, reason, message || reason || `HTTP ${status}`, errors);
}

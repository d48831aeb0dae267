/**
 * What can go wrong talking to Proxmox VE, keeping PVE's own words
 * (DESIGN §5): the status line's reason phrase is the message's first line;
 * bodies are `{"data": null, "message": "…", "errors": {param: msg}}`
 * (`message` since PVE 8.3); 401 has an empty body; a missing VM or an
 * unknown node is a 500; 595/596 may mean the call ran.
 */
import { ProviderError } from "../errors.js";

export type PveErrorKind = "auth" | "permission" | "parameter" | "not-implemented" | "server" | "other";

/** PVE answered with an error status. */
export class PveHttpError extends ProviderError {
  readonly kind: PveErrorKind;
  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number,
    /** The status line's reason phrase (on PVE: the message's first line). */
    readonly reason: string,
    /** `message` from the body, else the reason phrase. */
    readonly pveMessage: string,
    /** Per-parameter messages of a 400. */
    readonly errors: Record<string, string>,
  ) {
    const kind: PveErrorKind =
      status === 401 ? "auth" : status === 403 ? "permission" : status === 400 ? "parameter" : status === 501 ? "not-implemented" : status >= 500 ? "server" : "other";
    const detail = Object.entries(errors)
      .map(([k, v]) => `${k}: ${v}`)
      .join("; ");
    super(
      kind === "auth" ? "PVE_AUTH_FAILED" : kind === "permission" ? "PVE_PERMISSION_DENIED" : "PVE_ERROR",
      `Proxmox VE ${method} ${path}: ${status} ${pveMessage}${detail ? ` (${detail})` : ""}`,
      502,
      { status, reason, message: pveMessage, errors },
    );
    this.name = "PveHttpError";
    this.kind = kind;
  }

  /** PVE's words for a VM (or its config file) that is not there: a 500, not a 404. */
  get isMissingVm(): boolean {
    return this.status === 500 && /does not exist|no such VM/i.test(this.pveMessage);
  }

  /** A create whose VMID was taken in the meantime (500, no task). */
  get isVmidTaken(): boolean {
    return this.status === 500 && /already exists/i.test(this.pveMessage);
  }
}

/**
 * The request may or may not have run: 595/596 from pveproxy (it forwards to
 * pvedaemon), a connection lost or a timeout after the request was sent.
 * Never resend a POST on this: read the state first.
 */
export class PveIndeterminateError extends ProviderError {
  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number | null,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super("PVE_INDETERMINATE", `Proxmox VE ${method} ${path}: ${status ?? "no answer"} ${detail} — the request may have run`, 504, { status }, options);
    this.name = "PveIndeterminateError";
  }
}

/** No connection was made (refused, unreachable, TLS refused): the request did not run. */
export class PveConnectionError extends ProviderError {
  constructor(readonly url: string, detail: string, options?: { cause?: unknown }) {
    super("PVE_UNREACHABLE", `cannot reach Proxmox VE at ${url}: ${detail}`, 502, {}, options);
    this.name = "PveConnectionError";
  }
}

/** The server's certificate does not have the pinned SHA-256 fingerprint. */
export class PveFingerprintError extends Error {
  readonly code = "PVE_FINGERPRINT_MISMATCH";
  constructor(readonly expected: string, readonly actual: string | undefined) {
    super(`the Proxmox VE certificate's SHA-256 fingerprint is ${actual ?? "unknown"}, not the pinned ${expected}: refusing to talk to it`);
    this.name = "PveFingerprintError";
  }
}

/** PVE answered 2xx with a body we do not understand. */
export class PveResponseError extends ProviderError {
  constructor(method: string, path: string, detail: string) {
    super("PVE_BAD_RESPONSE", `Proxmox VE ${method} ${path}: unexpected answer: ${detail}`, 502);
    this.name = "PveResponseError";
  }
}

/** A task ended with an exit status other than `OK` or `WARNINGS: n`. */
export class PveTaskError extends ProviderError {
  constructor(
    readonly upid: string,
    readonly taskType: string,
    readonly exitstatus: string,
  ) {
    super("PVE_TASK_FAILED", `Proxmox VE task ${taskType} failed: ${exitstatus}`, 502, { upid, exitstatus });
    this.name = "PveTaskError";
  }
}

export class PveTaskTimeoutError extends ProviderError {
  constructor(readonly upid: string, readonly taskType: string, seconds: number) {
    super("PVE_TASK_TIMEOUT", `Proxmox VE task ${taskType} still running after ${seconds} s (${upid})`, 504, { upid });
    this.name = "PveTaskTimeoutError";
  }
}

/**
 * Provider errors an API layer can render: each carries an HTTP status and an
 * error code. PVE's own errors (src/providers/proxmox/errors.ts) keep PVE's
 * text and map to 502 unless the provider turns them into one of these.
 */
export class ProviderError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly httpStatus: 400 | 403 | 404 | 409 | 422 | 500 | 502 | 503 | 504 = 500,
    readonly details: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "ProviderError";
  }
}

/**
 * The provider refused to touch a VM that is not ours: it lacks the
 * `cluster-<name>` tag. No request option overrides this.
 */
export class SafeModeError extends ProviderError {
  constructor(
    message: string,
    readonly reason: string,
    readonly suggestion: string,
  ) {
    super("SAFE_MODE_VIOLATION", message, 403, { reason, suggestion });
    this.name = "SafeModeError";
  }
}

/** Moxxie's refusal body: `403 {error: "SAFE_MODE_VIOLATION", message, details{reason, suggestion}, timestamp}`. */
export function safeModeBody(err: SafeModeError, now: Date = new Date()): {
  error: "SAFE_MODE_VIOLATION";
  message: string;
  details: { reason: string; suggestion: string };
  timestamp: string;
} {
  return { error: "SAFE_MODE_VIOLATION", message: err.message, details: { reason: err.reason, suggestion: err.suggestion }, timestamp: now.toISOString() };
}

export class VmNotFoundError extends ProviderError {
  constructor(what: string) {
    super("VM_NOT_FOUND", `${what}: no such VM`, 404);
    this.name = "VmNotFoundError";
  }
}

/** A request contradicts what exists or was recorded (another MAC, a name taken by another VM). */
export class VmConflictError extends ProviderError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super("VM_CONFLICT", message, 409, details);
    this.name = "VmConflictError";
  }
}

export class PlacementError extends ProviderError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super("PLACEMENT_FAILED", message, 409, details);
    this.name = "PlacementError";
  }
}

/** Bad input to a provider (spec, key); the message names the field. */
export class ProviderInputError extends ProviderError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super("INVALID_REQUEST", message, 400, details);
    this.name = "ProviderInputError";
  }
}

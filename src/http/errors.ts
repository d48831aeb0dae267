import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";

/**
 * Our error body: `{error, message, status, timestamp, path, details}` —
 * a superset of Moxxie's `{error, message, timestamp, path}`, so its parser
 * reads ours.
 */
export function errorResponse(
  c: Context,
  status: ContentfulStatusCode,
  error: string,
  message: string,
  details: Record<string, unknown> = {},
): Response {
  return c.json({ error, message, status, timestamp: new Date().toISOString(), path: c.req.path, details }, status);
}

export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

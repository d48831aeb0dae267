import { timingSafeEqual } from "node:crypto";
import { Hono, type Context } from "hono";
import { z } from "zod";
import { parseMac, type Mac } from "../boot/mac.js";
import { BOOTFILE, HOSTNAME, PROFILE_NAME } from "../config/schema.js";
import type { Machine, MachineStore } from "../store/machines.js";
import { ApiError, errorResponse } from "./errors.js";

export const MAX_API_BODY = 64 * 1024;

export interface ApiDeps {
  store: MachineStore;
  /** Valid API tokens; a function so SIGHUP can change them. */
  tokens: () => readonly string[];
  /** Profile names that exist now (SIGHUP can change them). */
  profiles: () => readonly string[];
  /** More route groups under /api/v1, behind the same token check: `[["/talos", app]]`. */
  extensions?: ReadonlyArray<readonly [string, Hono]>;
}

const putMachineBody = z.strictObject({
  profile: z.string().regex(PROFILE_NAME, { message: "expected a profile name" }),
  hostname: z.string().regex(HOSTNAME, { message: "expected a lower-case DNS hostname (RFC 1123)" }).nullish(),
  bootfile: z.string().regex(BOOTFILE, { message: "expected a boot file name such as snponly.efi" }).nullish(),
});
const bootBody = z.strictObject({ next: z.enum(["profile", "local"]) });

function tokenMatches(given: string, tokens: readonly string[]): boolean {
  const g = Buffer.from(given);
  let ok = false;
  for (const t of tokens) {
    const b = Buffer.from(t);
    // Compare against every token, always: no early exit to time.
    if (b.length === g.length && timingSafeEqual(b, g)) ok = true;
  }
  return ok;
}

function machineJson(store: MachineStore, m: Machine) {
  return {
    mac: m.mac,
    profile: m.profile,
    hostname: m.hostname,
    bootfile: m.bootfile,
    source: m.source,
    next: m.next,
    lastSeen: m.lastSeen,
    timeline: store.timeline(m.mac),
  };
}

export function macParam(c: Context): Mac {
  const raw = c.req.param("mac") ?? "";
  const mac = parseMac(raw);
  if (!mac) throw new ApiError(400, "INVALID_MAC", `'${raw}' is not a MAC address (expected 52:54:00:12:34:56 or 52-54-00-12-34-56)`);
  return mac;
}

/**
 * The request body as text, refusing (400) past `limit` bytes as soon as the
 * limit is crossed: a chunked body without Content-Length is read, not
 * buffered whole first.
 */
export async function readLimitedText(c: Context, limit: number): Promise<string> {
  const tooLarge = () => new ApiError(400, "BODY_TOO_LARGE", `request body over ${limit} bytes`);
  if (Number(c.req.header("content-length") ?? 0) > limit) throw tooLarge();
  const body = c.req.raw.body;
  if (!body) return "";
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** Reads a JSON body of at most MAX_API_BODY bytes and validates it; ApiError (400) otherwise. */
export async function jsonBody<T>(c: Context, schema: z.ZodType<T>): Promise<T> {
  const text = await readLimitedText(c, MAX_API_BODY);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new ApiError(400, "INVALID_JSON", `the body is not JSON: ${(err as Error).message}`);
  }
  const parsed = schema.safeParse(data);
  if (!parsed.success) {
    const fields: Record<string, string> = {};
    for (const i of parsed.error.issues) fields[i.path.join(".") || "(body)"] = i.message;
    throw new ApiError(400, "VALIDATION_FAILED", Object.entries(fields).map(([k, v]) => `${k}: ${v}`).join("; "), { fields });
  }
  return parsed.data;
}

/** The control API under /api/v1: machines and unknown machines. Token required on every route. */
export function apiRoutes(deps: ApiDeps): Hono {
  const app = new Hono();
  const { store } = deps;

  app.use("*", async (c, next) => {
    const header = c.req.header("x-api-key") ?? /^Bearer\s+(.+)$/i.exec(c.req.header("authorization") ?? "")?.[1];
    if (!header || !tokenMatches(header.trim(), deps.tokens())) {
      return errorResponse(c, 401, "UNAUTHORIZED", "a valid API token is required (X-API-Key header or Authorization: Bearer)");
    }
    await next();
  });

  app.onError((err, c) => {
    if (err instanceof ApiError) return errorResponse(c, err.status, err.code, err.message, err.details);
    throw err;
  });

  app.get("/machines", (c) => c.json({ machines: store.list().map((m) => machineJson(store, m)) }));

  app.get("/machines/:mac", (c) => {
    const mac = macParam(c);
    const m = store.get(mac);
    if (!m) return errorResponse(c, 404, "NOT_FOUND", `no machine ${mac}`);
    return c.json(machineJson(store, m));
  });

  app.put("/machines/:mac", async (c) => {
    const mac = macParam(c);
    const body = await jsonBody(c, putMachineBody);
    if (!deps.profiles().includes(body.profile)) {
      throw new ApiError(400, "UNKNOWN_PROFILE", `no profile named '${body.profile}'`, { profiles: deps.profiles() });
    }
    const existing = store.get(mac);
    if (existing?.source === "config") {
      throw new ApiError(409, "CONFIG_MACHINE", `${mac} is defined in the config file; change it there and reload (SIGHUP)`);
    }
    const m = store.upsert({ mac, profile: body.profile, hostname: body.hostname ?? null, bootfile: body.bootfile ?? null, source: "api" });
    store.forgetUnknown(mac);
    return c.json(machineJson(store, m), 200);
  });

  app.delete("/machines/:mac", (c) => {
    const mac = macParam(c);
    const m = store.get(mac);
    if (!m) return errorResponse(c, 404, "NOT_FOUND", `no machine ${mac}`);
    if (m.source === "config") {
      throw new ApiError(409, "CONFIG_MACHINE", `${mac} is defined in the config file; remove it there and reload (SIGHUP)`);
    }
    store.delete(mac);
    return c.body(null, 204);
  });

  app.post("/machines/:mac/boot", async (c) => {
    const mac = macParam(c);
    const body = await jsonBody(c, bootBody);
    if (!store.get(mac)) return errorResponse(c, 404, "NOT_FOUND", `no machine ${mac}`);
    const m = store.setNext(mac, body.next)!;
    store.record(mac, "boot-set", { next: body.next, by: "api" });
    return c.json(machineJson(store, m));
  });

  app.get("/unknown-machines", (c) => c.json({ machines: store.listUnknown() }));

  for (const [path, routes] of deps.extensions ?? []) app.route(path, routes);

  app.all("*", (c) => errorResponse(c, 404, "NOT_FOUND", `no API route ${c.req.method} ${c.req.path}`));
  return app;
}

import { Hono } from "hono";
import type { Logger } from "pino";
import type { Metrics } from "../metrics.js";
import { apiRoutes, type ApiDeps } from "./api-routes.js";
import { bootRoutes, type BootRouteDeps } from "./boot-routes.js";
import { ApiError, errorResponse } from "./errors.js";

export interface HttpAppDeps {
  boot?: BootRouteDeps;
  api?: ApiDeps;
  metrics: Metrics;
  log: Logger;
}

const CORRELATION = /^[A-Za-z0-9._:-]{1,128}$/;

function routeFamily(path: string): string {
  if (path.startsWith("/api/")) return "api";
  if (path.startsWith("/bootloaders/")) return "bootloader";
  if (/^\/boot\/[^/]+\/config\//.test(path)) return "config";
  if (/^\/boot\/[^/]+\/(kernel|initrd-\d+)$/.test(path)) return "bootfile";
  if (path.startsWith("/boot")) return "script";
  if (path === "/metrics" || path === "/healthz") return path.slice(1);
  return "other";
}

/**
 * One Hono app per listener: the boot path, the API, or both (the default
 * shares the HTTP port). /healthz and /metrics are on every listener.
 */
export function createHttpApp(deps: HttpAppDeps): Hono {
  const app = new Hono();
  const { metrics } = deps;

  app.use("*", async (c, next) => {
    const id = c.req.header("x-correlation-id");
    await next();
    if (id && CORRELATION.test(id)) c.header("X-Correlation-ID", id);
    metrics.httpRequests.inc({ route: routeFamily(c.req.path), status: String(c.res.status) });
  });

  app.onError((err, c) => {
    if (err instanceof ApiError) return errorResponse(c, err.status, err.code, err.message, err.details);
    deps.log.error({ path: c.req.path, err: err.message }, "HTTP handler failed");
    metrics.errors.inc({ component: "http" });
    return errorResponse(c, 500, "INTERNAL", "internal error; see the daemon's log");
  });

  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/metrics", async (c) => {
    c.header("Content-Type", metrics.registry.contentType);
    return c.body(await metrics.registry.metrics());
  });

  if (deps.api) app.route("/api/v1", apiRoutes(deps.api));
  if (deps.boot) app.route("/", bootRoutes(deps.boot));
  app.notFound((c) => (c.req.path.startsWith("/api/") ? errorResponse(c, 404, "NOT_FOUND", `no route ${c.req.path}`) : c.text("not found\n", 404)));
  return app;
}

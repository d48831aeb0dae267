/**
 * `/api/v1/providers/{provider}/vms[/{cluster}/{name}]`, mounted by the
 * control API as an extension (behind its token check):
 *
 *   GET    /providers/{p}/vms?cluster=C          → [VmSummary]
 *   POST   /providers/{p}/vms                    {cluster, name, role, …template, profile?, start?} → 201 (200 when it existed)
 *   GET    /providers/{p}/vms/{cluster}/{name}   → VmSummary | 404
 *   DELETE /providers/{p}/vms/{cluster}/{name}   → 204 | 404
 *   POST   /providers/{p}/vms/{cluster}/{name}/start | /stop {timeoutSec?} | /boot-order {order}
 *
 * Provider errors keep their status; a safe-mode refusal is
 * `403 {error: "SAFE_MODE_VIOLATION", message, details{reason, suggestion}, timestamp, …}`.
 */
import { Hono, type Context } from "hono";
import { z } from "zod";
import { ApiError, errorResponse } from "../http/errors.js";
import { jsonBody } from "../http/api-routes.js";
import type { MachineStore } from "../store/machines.js";
import { ProviderError, ProviderInputError } from "./errors.js";
import { createVm, summary } from "./service.js";
import { PROVIDER_KINDS, type ProviderKind, type VmKey, type VmProvider } from "./types.js";

export interface ProviderApiDeps {
  /** The provider of a kind; throws ProviderError when it is not configured. */
  provider: (kind: ProviderKind) => VmProvider;
  machines: MachineStore;
  profiles: () => readonly string[];
}

const createBody = z.looseObject({ profile: z.string().optional(), start: z.boolean().optional() });
const stopBody = z.strictObject({ timeoutSec: z.number().int().min(1).max(3600).optional() });
const bootBody = z.strictObject({ order: z.enum(["network", "disk"]) });

function kindOf(c: Context): ProviderKind {
  const p = c.req.param("provider") as ProviderKind;
  if (!PROVIDER_KINDS.includes(p)) throw new ProviderInputError(`unknown provider '${p}' (expected ${PROVIDER_KINDS.join(" or ")})`);
  return p;
}

function keyOf(c: Context): VmKey {
  return { cluster: c.req.param("cluster") ?? "", name: c.req.param("name") ?? "" };
}

export function providerRoutes(deps: ProviderApiDeps): Hono {
  const app = new Hono();

  app.onError((err, c) => {
    if (err instanceof ProviderError) return errorResponse(c, err.httpStatus, err.code, err.message, err.details);
    if (err instanceof ApiError) return errorResponse(c, err.status, err.code, err.message, err.details);
    throw err;
  });

  app.get("/:provider/vms", async (c) => {
    const cluster = c.req.query("cluster");
    if (!cluster) throw new ProviderInputError("?cluster= is required");
    const vms = await deps.provider(kindOf(c)).listByCluster(cluster);
    return c.json(vms.map(summary));
  });

  app.post("/:provider/vms", async (c) => {
    const body = await jsonBody(c, createBody);
    const { profile, start, ...input } = body;
    const res = await createVm(deps.provider(kindOf(c)), input, { profile, start, machines: deps.machines, profiles: deps.profiles() });
    return c.json(res.vm, res.created ? 201 : 200);
  });

  app.get("/:provider/vms/:cluster/:name", async (c) => {
    const vm = await deps.provider(kindOf(c)).status(keyOf(c));
    if (!vm) return errorResponse(c, 404, "VM_NOT_FOUND", `no VM ${c.req.param("cluster")}/${c.req.param("name")}`);
    return c.json(summary(vm));
  });

  app.delete("/:provider/vms/:cluster/:name", async (c) => {
    const { destroyed } = await deps.provider(kindOf(c)).destroy(keyOf(c));
    if (!destroyed) return errorResponse(c, 404, "VM_NOT_FOUND", `no VM ${c.req.param("cluster")}/${c.req.param("name")}`);
    return c.body(null, 204);
  });

  app.post("/:provider/vms/:cluster/:name/start", async (c) => c.json(summary(await deps.provider(kindOf(c)).start(keyOf(c)))));

  app.post("/:provider/vms/:cluster/:name/stop", async (c) => {
    const body = c.req.header("content-length") === "0" || !c.req.header("content-type") ? {} : await jsonBody(c, stopBody);
    return c.json(summary(await deps.provider(kindOf(c)).stop(keyOf(c), body)));
  });

  app.post("/:provider/vms/:cluster/:name/boot-order", async (c) => {
    const { order } = await jsonBody(c, bootBody);
    return c.json(await deps.provider(kindOf(c)).setBootOrder(keyOf(c), order));
  });

  return app;
}

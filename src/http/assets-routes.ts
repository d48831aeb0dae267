import { Hono } from "hono";
import type { Logger } from "pino";
import { z } from "zod";
import { entryJson } from "../assets/cache.js";
import { schematicNameSchema } from "../assets/config.js";
import { fetchAssets } from "../assets/fetch.js";
import type { Operations } from "../assets/operations.js";
import { pairProgress } from "../assets/progress.js";
import { schematicLookup } from "../assets/profile.js";
import { canonicalSchematicYaml, customizationSchema, schematicId, type Customization } from "../assets/schematic.js";
import type { AssetService } from "../assets/service.js";
import { ARCHES, AssetError } from "../assets/types.js";
import { parseTalosVersion } from "../assets/version.js";
import type { SchematicStore } from "../store/assets.js";
import { jsonBody } from "./api-routes.js";
import { ApiError, errorResponse } from "./errors.js";

export interface AssetRouteDeps {
  service: AssetService;
  store: SchematicStore;
  /** The config file's `talos.schematics` (SIGHUP can change them). */
  configSchematics: () => Record<string, Customization>;
  operations: Operations;
  log: Logger;
  /** How long POST /schematics waits for the factory's answer before replying without it. */
  registerWaitMs?: number;
}

const fetchBody = z.strictObject({
  version: z.string().min(1),
  arch: z.enum(ARCHES),
  schematic: z.string().min(1).optional(),
  extensions: z.array(z.string()).optional(),
});

const schematicBody = z.strictObject({ name: schematicNameSchema, customization: customizationSchema });

/**
 * Boot-asset routes, mounted under /api/v1 behind the token check:
 * GET /assets, POST /assets/fetch (202 + operation), GET /operations/{id},
 * GET /schematics, POST /schematics.
 */
export function assetRoutes(deps: AssetRouteDeps): Hono {
  const app = new Hono();
  const { service, store, operations, log } = deps;
  const lookup = () => schematicLookup(deps.configSchematics(), store);

  app.onError((err, c) => {
    if (err instanceof ApiError) return errorResponse(c, err.status, err.code, err.message, err.details);
    if (err instanceof AssetError) return errorResponse(c, err.code === "INVALID" ? 400 : 502, err.code, err.message);
    throw err;
  });

  app.get("/assets", async (c) => c.json({ assets: (await service.cache.list()).map(entryJson) }));

  app.post("/assets/fetch", async (c) => {
    const body = await jsonBody(c, fetchBody);
    const request = {
      version: body.version,
      arch: body.arch,
      ...(body.schematic !== undefined ? { schematic: body.schematic } : {}),
      ...(body.extensions !== undefined ? { extensions: body.extensions } : {}),
    };
    // Refuse what can never work now, not in the operation.
    try {
      if (body.schematic !== undefined && body.extensions !== undefined) throw new AssetError("INVALID", "give either extensions or a schematic, not both");
      if (body.extensions) customizationSchema.parse({ systemExtensions: { officialExtensions: body.extensions } });
      if (body.schematic !== undefined && !lookup()(body.schematic)) throw new AssetError("INVALID", `no schematic named '${body.schematic}'`);
      parseTalosVersion(body.version);
    } catch (err) {
      if (err instanceof z.ZodError) throw new ApiError(400, "VALIDATION_FAILED", err.issues.map((i) => i.message).join("; "));
      throw err;
    }
    const op = operations.start("assets.fetch", request, async (progress) => {
      const outcome = await fetchAssets(request, { service, lookup: lookup(), log }, {
        onProgress: pairProgress((bytes, total) => progress(bytes, total ?? null)),
      });
      return {
        installerImage: outcome.installerImage,
        assets: [entryJson(outcome.pair.kernel), entryJson(outcome.pair.initramfs)],
      };
    });
    c.header("Location", `/api/v1/operations/${op.operationId}`);
    return c.json({ operationId: op.operationId, status: op.status, links: { status: `/api/v1/operations/${op.operationId}` } }, 202);
  });

  app.get("/operations/:id", (c) => {
    const op = operations.get(c.req.param("id"));
    if (!op) return errorResponse(c, 404, "NOT_FOUND", `no operation ${c.req.param("id")}`);
    return c.json(op);
  });

  app.get("/schematics", (c) => {
    const fromConfig = Object.entries(deps.configSchematics()).map(([name, customization]) => ({
      name,
      id: schematicId(customization),
      customization,
      source: "config" as const,
      registeredAt: null,
    }));
    const stored = store.list().map((s) => ({ name: s.name, id: s.id, customization: s.customization, source: "api" as const, registeredAt: s.registeredAt }));
    return c.json({ schematics: [...fromConfig, ...stored] });
  });

  app.post("/schematics", async (c) => {
    const body = await jsonBody(c, schematicBody);
    const id = schematicId(body.customization);
    const configured = deps.configSchematics()[body.name];
    if (configured && schematicId(configured) !== id) {
      throw new ApiError(409, "CONFIG_SCHEMATIC", `schematic '${body.name}' is defined in the config file with other content`);
    }
    const put = store.put({ name: body.name, id, customization: body.customization, yaml: canonicalSchematicYaml(body.customization) });
    if (put.outcome === "conflict") {
      throw new ApiError(409, "SCHEMATIC_EXISTS", `schematic '${body.name}' exists with other content (id ${put.schematic.id})`, { id: put.schematic.id });
    }
    const registered = await registerWithin(deps.registerWaitMs ?? 5_000);
    return c.json({ name: body.name, id, registered }, put.outcome === "created" ? 201 : 200);

    async function registerWithin(ms: number): Promise<boolean> {
      const attempt = service.register(body.customization).then(
        (r) => {
          store.markRegistered(id);
          if (r.id !== id) log.warn({ name: body.name, local: id, factory: r.id }, "the factory's schematic ID differs from ours");
          return true;
        },
        (err: Error) => {
          log.info({ name: body.name, err: err.message }, "schematic stored; no factory reachable to register it");
          return false;
        },
      );
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
      return Promise.race([attempt, late]).finally(() => clearTimeout(timer));
    }
  });

  return app;
}

import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Operations } from "../../src/assets/operations.js";
import { AssetService } from "../../src/assets/service.js";
import { apiRoutes } from "../../src/http/api-routes.js";
import { assetRoutes } from "../../src/http/assets-routes.js";
import { silentLogger } from "../../src/log.js";
import { ASSETS_FAMILY, SchematicStore } from "../../src/store/assets.js";
import { MACHINES_FAMILY, openMemoryDatabase } from "../../src/store/db.js";
import { MachineStore } from "../../src/store/machines.js";
import { FakeTalosMirror } from "../helpers/fake-talos-mirror.js";
import { tempDir } from "../helpers/fixtures.js";
import { SCHEMATIC_VECTORS } from "../helpers/schematic-vectors.js";

const TOKEN = "test-token-0123456789";
const QEMU_ISCSI = SCHEMATIC_VECTORS[2]!;

describe("asset API under /api/v1 (behind the token check)", () => {
  const mirror = new FakeTalosMirror();
  let dir: string;
  let api: ReturnType<typeof apiRoutes>;
  let schematics: SchematicStore;

  beforeAll(async () => {
    await mirror.start();
    dir = tempDir("tnb-assets-api-");
    const db = openMemoryDatabase([MACHINES_FAMILY, ASSETS_FAMILY]);
    schematics = new SchematicStore(db);
    const service = new AssetService(
      { cacheDir: dir, releasesUrl: mirror.releasesUrl, factoryUrl: mirror.factoryUrl, installerRegistry: "factory.talos.dev", schematics: {} },
      silentLogger(),
      { retryDelayMs: 0 },
    );
    const routes = assetRoutes({
      service,
      store: schematics,
      configSchematics: () => ({ "from-config": { extraKernelArgs: ["net.ifnames=0"] } }),
      operations: new Operations(),
      log: silentLogger(),
    });
    api = apiRoutes({ store: new MachineStore(db, 50), tokens: () => [TOKEN], profiles: () => [], extensions: [["/", routes]] });
  });
  afterAll(async () => {
    await mirror.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const call = (method: string, path: string, body?: unknown, token = TOKEN) =>
    api.request(path, {
      method,
      headers: { "x-api-key": token, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });

  async function settle(operationId: string): Promise<Record<string, unknown>> {
    for (let i = 0; i < 500; i++) {
      const op = (await (await call("GET", `/operations/${operationId}`)).json()) as Record<string, unknown>;
      if (op.status !== "RUNNING") return op;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error("operation did not finish");
  }

  it("needs a token", async () => {
    expect((await call("GET", "/assets", undefined, "wrong-token-0123456789")).status).toBe(401);
  });

  it("POST /assets/fetch answers 202 with an operation that ends with verified files; GET /assets lists them", async () => {
    const res = await call("POST", "/assets/fetch", { version: "v1.14.7", arch: "amd64", extensions: ["siderolabs/qemu-guest-agent", "siderolabs/iscsi-tools"] });
    expect(res.status).toBe(202);
    const { operationId } = (await res.json()) as { operationId: string };
    expect(res.headers.get("location")).toBe(`/api/v1/operations/${operationId}`);
    const op = await settle(operationId);
    expect(op).toMatchObject({ status: "COMPLETED", progress: { percentage: 100 } });
    expect((op.result as { installerImage: string }).installerImage).toBe(`factory.talos.dev/metal-installer/${QEMU_ISCSI.id}:v1.14.7`);

    const list = (await (await call("GET", "/assets")).json()) as { assets: Array<Record<string, unknown>> };
    expect(list.assets.map((a) => [a.source, a.version, a.arch, a.schematic, a.file]).sort()).toEqual([
      ["factory", "1.14.7", "amd64", QEMU_ISCSI.id, "initramfs"],
      ["factory", "1.14.7", "amd64", QEMU_ISCSI.id, "kernel"],
    ]);
  });

  it("a fetch that fails upstream ends as a FAILED operation with the reason", async () => {
    mirror.publish = { sha256: false, sha512: false };
    const res = await call("POST", "/assets/fetch", { version: "1.9.6", arch: "arm64" });
    const op = await settle(((await res.json()) as { operationId: string }).operationId);
    mirror.publish = { sha256: true, sha512: true };
    expect(op.status).toBe("FAILED");
    expect(op.errorMessage).toMatch(/neither sha256sum\.txt nor sha512sum\.txt/);
  });

  it("refuses bad fetch requests with 400, and unknown operations with 404", async () => {
    expect((await call("POST", "/assets/fetch", { version: "1.14", arch: "amd64" })).status).toBe(400);
    expect((await call("POST", "/assets/fetch", { version: "1.14.7", arch: "riscv64" })).status).toBe(400);
    expect((await call("POST", "/assets/fetch", { version: "1.14.7", arch: "amd64", schematic: "nope" })).status).toBe(400);
    expect((await call("GET", "/operations/does-not-exist")).status).toBe(404);
  });

  it("POST /schematics stores by name and answers the ID the factory also answers", async () => {
    const res = await call("POST", "/schematics", { name: "qemu-iscsi", customization: QEMU_ISCSI.customization });
    expect(res.status).toBe(201);
    expect(await res.json()).toEqual({ name: "qemu-iscsi", id: QEMU_ISCSI.id, registered: true });
    expect(schematics.get("qemu-iscsi")?.registeredAt).not.toBeNull();

    expect((await call("POST", "/schematics", { name: "qemu-iscsi", customization: QEMU_ISCSI.customization })).status).toBe(200);
    expect((await call("POST", "/schematics", { name: "qemu-iscsi", customization: {} })).status).toBe(409);
    expect((await call("POST", "/schematics", { name: "bad name", customization: {} })).status).toBe(400);
    expect((await call("POST", "/schematics", { name: "x", customization: { unknownField: 1 } })).status).toBe(400);

    const all = (await (await call("GET", "/schematics")).json()) as { schematics: Array<{ name: string; id: string; source: string }> };
    expect(all.schematics.map((s) => [s.name, s.source])).toEqual([
      ["from-config", "config"],
      ["qemu-iscsi", "api"],
    ]);
  });

  it("a stored name can be fetched by name", async () => {
    const res = await call("POST", "/assets/fetch", { version: "1.13.10", arch: "amd64", schematic: "qemu-iscsi" });
    const op = await settle(((await res.json()) as { operationId: string }).operationId);
    expect(op.status).toBe("COMPLETED");
    expect((op.result as { assets: Array<{ schematic: string }> }).assets[0]!.schematic).toBe(QEMU_ISCSI.id);
  });
});

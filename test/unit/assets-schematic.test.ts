import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CanonicalYamlError } from "../../src/assets/go-yaml.js";
import {
  canonicalSchematicYaml,
  customizationSchema,
  DEFAULT_SCHEMATIC_ID,
  extensionsCustomization,
  registerSchematic,
  schematicId,
  type Customization,
} from "../../src/assets/schematic.js";
import { FakeTalosMirror } from "../helpers/fake-talos-mirror.js";
import { FACTORY_TEST_VECTORS, SCHEMATIC_VECTORS } from "../helpers/schematic-vectors.js";

describe("schematic IDs (image-factory pkg/schematic: sha256 of go-yaml Marshal)", () => {
  it("the empty customization is DESIGN §4's default schematic, the sha256 of `customization: {}\\n`", () => {
    const fromDesign = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba";
    expect(createHash("sha256").update("customization: {}\n").digest("hex")).toBe(fromDesign);
    expect(canonicalSchematicYaml({})).toBe("customization: {}\n");
    expect(DEFAULT_SCHEMATIC_ID).toBe(fromDesign);
    expect(schematicId(extensionsCustomization([]))).toBe(fromDesign);
  });

  it.each(FACTORY_TEST_VECTORS)("matches the factory's own test vector: $name", (v) => {
    expect(canonicalSchematicYaml(v.customization as Customization)).toBe(v.yaml);
    expect(schematicId(v.customization as Customization)).toBe(v.id);
  });

  it.each(SCHEMATIC_VECTORS)("matches go-yaml v4 byte for byte: $name", (v) => {
    expect(canonicalSchematicYaml(v.customization as Customization)).toBe(v.yaml);
    expect(schematicId(v.customization as Customization)).toBe(v.id);
  });

  it("keeps extension order (the factory does not sort: order changes the ID)", () => {
    const a = extensionsCustomization(["siderolabs/qemu-guest-agent", "siderolabs/iscsi-tools"]);
    const b = extensionsCustomization(["siderolabs/iscsi-tools", "siderolabs/qemu-guest-agent"]);
    expect(schematicId(a)).not.toBe(schematicId(b));
  });

  it("accepts the factory's fields and refuses unknown ones, as its KnownFields decoder does", () => {
    for (const v of SCHEMATIC_VECTORS.slice(0, 9)) expect(customizationSchema.safeParse(v.customization).success).toBe(true);
    expect(customizationSchema.safeParse({ systemExtension: {} }).success).toBe(false);
    expect(customizationSchema.safeParse({ extraKernelArgs: ["two words"] }).success).toBe(false);
    expect(customizationSchema.safeParse({ meta: [{ key: 256, value: "x" }] }).success).toBe(false);
  });

  it("refuses to guess the canonical form of strings it does not reproduce", () => {
    expect(() => schematicId({ meta: [{ key: 1, value: "a\u2028b\nc" }] })).toThrow(CanonicalYamlError);
  });
});

describe("registering a schematic with a (stand-in) factory", () => {
  const mirror = new FakeTalosMirror();
  beforeAll(() => mirror.start());
  afterAll(() => mirror.stop());

  it.each(SCHEMATIC_VECTORS.slice(1, 5))("the local ID equals the factory's answer: $name", async (v) => {
    const r = await registerSchematic(mirror.factoryUrl, customizationSchema.parse(v.customization));
    expect(r.id).toBe(v.id);
    expect(r.localId).toBe(r.id);
    expect(mirror.known.has(v.id)).toBe(true);
  });

  it("names the factory's failure", async () => {
    const unknown: Customization = { extraKernelArgs: ["no-vector-for-this"] };
    await expect(registerSchematic(mirror.factoryUrl, unknown)).rejects.toThrow(/HTTP 500/);
    await expect(registerSchematic("http://127.0.0.1:9", {}, { timeoutMs: 2000 })).rejects.toThrow(/POST http:\/\/127\.0\.0\.1:9\/schematics/);
  });
});

import { createHash } from "node:crypto";
import { z } from "zod";
import { canonicalYaml, type YamlNode } from "./go-yaml.js";
import { factorySchematicsUrl } from "./sources.js";
import { AssetError, SCHEMATIC_ID } from "./types.js";

/**
 * An Image Factory schematic customization: official system extensions,
 * install-time kernel arguments, META values. The field set, order and
 * omission rules are the factory's `Customization` struct
 * (image-factory `pkg/schematic/schematic.go`); unknown keys are refused as
 * the factory's decoder (`KnownFields(true)`) refuses them.
 *
 * `extraKernelArgs` are the *installed* system's kernel arguments (and are in
 * the factory's PXE command line too); a profile's PXE-only arguments are a
 * separate field of the profile.
 */
const extensionName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._/-]*$/, {
  message: "expected an official extension name such as siderolabs/qemu-guest-agent",
});
const kernelArg = z.string().regex(/^\S+$/, { message: "expected one kernel argument without spaces, such as net.ifnames=0" });

export const customizationSchema = z.strictObject({
  embeddedMachineConfiguration: z.string().optional(),
  extraKernelArgs: z.array(kernelArg).optional(),
  meta: z.array(z.strictObject({ key: z.number().int().min(0).max(255), value: z.string() })).optional(),
  systemExtensions: z.strictObject({ officialExtensions: z.array(extensionName).optional() }).optional(),
  bootloader: z.enum(["none", "dual-boot", "sd-boot", "grub"]).optional(),
  secureboot: z
    .strictObject({ enrollKeys: z.string().optional(), includeWellKnownCertificates: z.boolean().optional() })
    .optional(),
  diskImage: z.strictObject({ sectorSize: z.number().int().min(0).max(0xffffffff).optional() }).optional(),
});
export type Customization = z.output<typeof customizationSchema>;

const str = (value: string): YamlNode => ({ kind: "str", value });
const strs = (values: readonly string[]): YamlNode => ({ kind: "seq", items: values.map(str) });

/** The customization as the factory's struct marshals it: declared order, `omitempty` fields dropped. */
function customizationNode(c: Customization): YamlNode {
  const entries: Array<[string, YamlNode]> = [];
  if (c.embeddedMachineConfiguration) entries.push(["embeddedMachineConfiguration", str(c.embeddedMachineConfiguration)]);
  if (c.extraKernelArgs?.length) entries.push(["extraKernelArgs", strs(c.extraKernelArgs)]);
  if (c.meta?.length) {
    const items: YamlNode[] = c.meta.map((m) => ({
      kind: "map",
      entries: [
        ["key", { kind: "int", value: m.key }],
        ["value", str(m.value)],
      ],
    }));
    entries.push(["meta", { kind: "seq", items }]);
  }
  const extensions = c.systemExtensions?.officialExtensions ?? [];
  if (extensions.length) entries.push(["systemExtensions", { kind: "map", entries: [["officialExtensions", strs(extensions)]] }]);
  if (c.bootloader && c.bootloader !== "none") entries.push(["bootloader", str(c.bootloader)]);
  const sb: Array<[string, YamlNode]> = [];
  if (c.secureboot?.enrollKeys) sb.push(["enrollKeys", str(c.secureboot.enrollKeys)]);
  if (c.secureboot?.includeWellKnownCertificates) sb.push(["includeWellKnownCertificates", { kind: "bool", value: true }]);
  if (sb.length) entries.push(["secureboot", { kind: "map", entries: sb }]);
  if (c.diskImage?.sectorSize) entries.push(["diskImage", { kind: "map", entries: [["sectorSize", { kind: "int", value: c.diskImage.sectorSize }]] }]);
  return { kind: "map", entries };
}

/**
 * The schematic document the factory hashes: `customization:` is never
 * omitted (no `omitempty` on it), `owner` and `overlay` are (we never set them).
 */
export function canonicalSchematicYaml(customization: Customization): string {
  return canonicalYaml({ kind: "map", entries: [["customization", customizationNode(customization)]] });
}

/** The schematic ID: sha256 of the canonical YAML (image-factory `Schematic.ID`). */
export function schematicId(customization: Customization): string {
  return createHash("sha256").update(canonicalSchematicYaml(customization)).digest("hex");
}

/** The empty customization's ID: the factory's default schematic. */
export const DEFAULT_SCHEMATIC_ID = schematicId({});

/** A customization made of official extensions only (`assets fetch --extensions a,b`). */
export function extensionsCustomization(extensions: readonly string[]): Customization {
  return customizationSchema.parse(extensions.length ? { systemExtensions: { officialExtensions: [...extensions] } } : {});
}

export function isSchematicId(s: string): boolean {
  return SCHEMATIC_ID.test(s);
}

const createdAnswer = z.object({ id: z.string().regex(SCHEMATIC_ID) });

export interface Registration {
  /** The factory's answer: the ID its URLs know. */
  id: string;
  /** Ours, computed from the canonical YAML. Equal unless the factory's serialisation changed. */
  localId: string;
}

/**
 * Registers the schematic with a factory (`POST /schematics` → `201 {id}`),
 * which it must know before it serves `/image/<id>/…`. Idempotent there.
 */
export async function registerSchematic(
  factoryUrl: string,
  customization: Customization,
  opts: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<Registration> {
  const url = factorySchematicsUrl(factoryUrl);
  const body = canonicalSchematicYaml(customization);
  const signal = opts.signal ?? AbortSignal.timeout(opts.timeoutMs ?? 30_000);
  let res: Response;
  try {
    res = await fetch(url, { method: "POST", body, headers: { "content-type": "application/yaml" }, signal });
  } catch (err) {
    throw new AssetError("DOWNLOAD_FAILED", `POST ${url}: ${(err as Error).message}`);
  }
  const text = await res.text();
  if (res.status !== 201 && res.status !== 200) {
    throw new AssetError("DOWNLOAD_FAILED", `POST ${url}: HTTP ${res.status} ${text.split("\n")[0]?.slice(0, 200) ?? ""}`.trim());
  }
  let parsed: z.infer<typeof createdAnswer>;
  try {
    parsed = createdAnswer.parse(JSON.parse(text));
  } catch {
    throw new AssetError("DOWNLOAD_FAILED", `POST ${url}: the answer is not {"id": "<64 hex>"}`);
  }
  return { id: parsed.id, localId: schematicId(customization) };
}

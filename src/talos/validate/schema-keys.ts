/**
 * Unknown keys, wrong types and values outside an enum, per document, against
 * the `$defs` entry of its kind in Talos's JSON schema for the contract
 * (config.schema.v<minor>.json; the project does not ship these, the caller
 * passes one in). Walking the schema ourselves instead of running a `oneOf`
 * over all kinds keeps each message about one field.
 */
import { describe, isPlainObject, isV1Alpha1, type ConfigDocument } from "../document.js";
import { documentLabel, join, type Report } from "./report.js";

export type JsonSchema = Record<string, unknown>;

interface SchemaNode {
  $ref?: string;
  type?: string | string[];
  properties?: Record<string, SchemaNode>;
  additionalProperties?: boolean | SchemaNode;
  patternProperties?: Record<string, SchemaNode>;
  items?: SchemaNode;
  enum?: unknown[];
  oneOf?: SchemaNode[];
}

/**
 * Talos 1.14's schema names the install document's kind `UnattendedInstall`
 * while the document itself says `UnattendedInstallConfig` (a slip in Talos's
 * schema generation): look either up under the other name.
 */
const KIND_ALIASES: Readonly<Record<string, string>> = { UnattendedInstallConfig: "UnattendedInstall" };

export class SchemaIndex {
  private readonly defs: Record<string, SchemaNode>;
  private readonly byKind = new Map<string, SchemaNode>();

  constructor(schema: JsonSchema) {
    const defs = schema.$defs;
    if (!isPlainObject(defs)) throw new Error("not a Talos config JSON schema: it has no $defs");
    this.defs = defs as Record<string, SchemaNode>;
    for (const def of Object.values(this.defs)) {
      const kinds = def.properties?.kind?.enum;
      for (const k of kinds ?? []) if (typeof k === "string") this.byKind.set(k, def);
    }
    const v1 = this.defs["v1alpha1.Config"];
    if (v1) this.byKind.set("v1alpha1", v1);
  }

  /** The definition of a kind, and the kind name the schema uses for it. */
  forKind(kind: string): { def: SchemaNode; schemaKind: string } | undefined {
    const direct = this.byKind.get(kind);
    if (direct) return { def: direct, schemaKind: kind };
    const alias = KIND_ALIASES[kind];
    const aliased = alias === undefined ? undefined : this.byKind.get(alias);
    return aliased && alias ? { def: aliased, schemaKind: alias } : undefined;
  }

  resolve(node: SchemaNode | undefined): SchemaNode | undefined {
    // Bounded: a $ref chain longer than the number of definitions is a loop.
    for (let i = 0; node?.$ref && i <= Object.keys(this.defs).length; i++) {
      node = this.defs[node.$ref.replace(/^#\/\$defs\//, "")];
    }
    return node?.$ref ? undefined : node;
  }

  hasKind(kind: string): boolean {
    return kind === "v1alpha1" || this.forKind(kind) !== undefined;
  }
}

function typeMatches(type: string, value: unknown): boolean {
  switch (type) {
    case "object":
      return isPlainObject(value);
    case "array":
      return Array.isArray(value);
    case "string":
      return typeof value === "string";
    case "boolean":
      return typeof value === "boolean";
    case "integer":
      return typeof value === "number" && Number.isInteger(value);
    case "number":
      return typeof value === "number";
    case "null":
      return value === null;
    default:
      return true;
  }
}

function expected(type: string): string {
  return { object: "a mapping", array: "a list", integer: "a whole number", number: "a number" }[type] ?? `a ${type}`;
}

export interface KeyCheckOptions {
  /** Dotted v1alpha1 paths Talos still accepts though the schema lacks them: skipped here (they warn elsewhere). */
  readonly tolerated: ReadonlySet<string>;
}

/** Checks every document whose kind the schema knows; an unknown kind is an error naming the known ones. */
export function checkAgainstSchema(r: Report, docs: readonly ConfigDocument[], index: SchemaIndex, opts: KeyCheckOptions, contractVersion: string): void {
  for (const doc of docs) {
    const kind = isV1Alpha1(doc) ? "v1alpha1" : typeof doc.kind === "string" ? doc.kind : "";
    const found = index.forKind(kind);
    const label = documentLabel(doc);
    if (!found) {
      if (kind !== "") r.error(label, `Talos ${contractVersion} has no "${kind}" document (see the kinds in its config schema)`);
      continue;
    }
    // Under an aliased kind, check a copy that carries the schema's spelling.
    const subject = found.schemaKind === kind || isV1Alpha1(doc) ? doc : { ...doc, kind: found.schemaKind };
    walk(r, index, found.def, subject, label, isV1Alpha1(doc) ? "" : null, opts);
  }
}

/**
 * `v1Path` is the dotted path inside the v1alpha1 document (null elsewhere),
 * used to recognise tolerated deprecated fields.
 */
function walk(r: Report, index: SchemaIndex, node: SchemaNode | undefined, value: unknown, path: string, v1Path: string | null, opts: KeyCheckOptions): void {
  const s = index.resolve(node);
  if (!s || value === null || value === undefined) return;
  const types = s.type === undefined ? [] : Array.isArray(s.type) ? s.type : [s.type];
  if (types.length > 0 && !types.some((t) => typeMatches(t, value))) {
    // YAML scalars are loosely typed in Go: a number or boolean where a string is wanted decodes fine.
    const scalarIntoString = types.includes("string") && (typeof value === "number" || typeof value === "boolean");
    if (!scalarIntoString) fail(r, path, `expected ${types.map(expected).join(" or ")}, found ${describe(value)}`);
    return;
  }
  if (s.enum && !s.enum.some((e) => e === value)) {
    fail(r, path, `must be one of ${s.enum.map((e) => JSON.stringify(e)).join(", ")}, not ${JSON.stringify(value)}`);
    return;
  }
  if (s.oneOf) {
    const alternatives = s.oneOf.map((o) => index.resolve(o)).filter((o): o is SchemaNode => o !== undefined);
    const fitting = alternatives.find((o) => o.type === undefined || (Array.isArray(o.type) ? o.type : [o.type]).some((t) => typeMatches(t, value)));
    if (alternatives.length > 0 && !fitting) {
      fail(r, path, `expected ${alternatives.map((o) => (typeof o.type === "string" ? expected(o.type) : "a value")).join(" or ")}, found ${describe(value)}`);
      return;
    }
    if (fitting) walk(r, index, fitting, value, path, v1Path, opts);
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((item, i) => walk(r, index, s.items, item, `${path}[${i}]`, null, opts));
    return;
  }
  if (!isPlainObject(value)) return;
  for (const [key, child] of Object.entries(value)) {
    const childPath = join(path, key);
    const childV1 = v1Path === null ? null : v1Path === "" ? key : `${v1Path}.${key}`;
    const prop = s.properties?.[key];
    if (prop) {
      walk(r, index, prop, child, childPath, childV1, opts);
      continue;
    }
    const pattern = Object.entries(s.patternProperties ?? {}).find(([re]) => new RegExp(re).test(key));
    if (pattern) {
      walk(r, index, pattern[1], child, childPath, null, opts);
      continue;
    }
    if (isPlainObject(s.additionalProperties)) {
      walk(r, index, s.additionalProperties, child, childPath, null, opts);
      continue;
    }
    if (s.additionalProperties === false) {
      if (childV1 !== null && opts.tolerated.has(childV1)) continue;
      const known = Object.keys(s.properties ?? {});
      fail(r, childPath, `unknown key "${key}"${known.length ? `; known here: ${known.join(", ")}` : ""}`);
    }
  }
}

/** One problem per path: a field our own checks already reported needs no second message. */
function fail(r: Report, path: string, message: string): void {
  if (!r.errors.some((p) => p.path === path)) r.error(path, message);
}

/**
 * Validation of machine-config documents against Talos's published JSON
 * schema (config.schema.v<minor>.json). Pure: the caller supplies the parsed
 * schema; the project does not ship Talos's schemas.
 *
 * Each document is checked against the `$defs` entry of its own kind, not
 * the schema's top-level `oneOf`, whose errors name every alternative.
 */
import { Ajv2020, type ErrorObject, type ValidateFunction } from "ajv/dist/2020.js";
import { documentKind, V1ALPHA1, type ConfigDocument } from "./document.js";

export interface SchemaProblem {
  /** 0-based index of the document in the config. */
  readonly document: number;
  /** The document's kind (`v1alpha1` for the legacy document). */
  readonly kind: string;
  /** JSON pointer inside the document (`/machine/install/disk`). */
  readonly path: string;
  readonly message: string;
}

interface JsonSchema {
  readonly $id?: string;
  readonly $defs?: Record<string, { properties?: Record<string, { enum?: unknown[]; const?: unknown }> }>;
}

export interface SchemaValidator {
  /** The `$defs` entry validating a kind, or undefined for a kind the schema does not know. */
  definitionFor(kind: string): string | undefined;
  /** Problems of one document (empty when valid). */
  validateDocument(doc: ConfigDocument, index?: number): SchemaProblem[];
  /** Problems of every document of a config. */
  validate(docs: readonly ConfigDocument[]): SchemaProblem[];
}

function definitionKinds(schema: JsonSchema): Map<string, string> {
  const kinds = new Map<string, string>();
  for (const [name, def] of Object.entries(schema.$defs ?? {})) {
    const kind = def.properties?.kind?.enum?.[0] ?? def.properties?.kind?.const;
    if (typeof kind === "string") kinds.set(kind, name);
    else if (def.properties?.version?.enum?.[0] === "v1alpha1") kinds.set(V1ALPHA1, name);
  }
  return kinds;
}

function isUri(s: string): boolean {
  try {
    return new URL(s).protocol !== "";
  } catch {
    return false;
  }
}

function message(e: ErrorObject): string {
  if (e.keyword === "additionalProperties") {
    return `unknown field "${String((e.params as { additionalProperty?: string }).additionalProperty)}"`;
  }
  if (e.keyword === "enum") return `${e.message ?? "invalid"}: ${JSON.stringify((e.params as { allowedValues?: unknown }).allowedValues)}`;
  return e.message ?? e.keyword;
}

/**
 * Compiles a Talos config schema once (ajv 2020-12 build, `strict: false`, as
 * Talos's schemas use annotation keywords ajv does not know).
 */
export function createSchemaValidator(schema: object): SchemaValidator {
  const s = schema as JsonSchema;
  const id = s.$id ?? "talos-config-schema";
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  ajv.addFormat("uri", { type: "string", validate: isUri });
  ajv.addSchema({ ...s, $id: id });
  const kinds = definitionKinds(s);
  const compiled = new Map<string, ValidateFunction>();

  const validatorFor = (definition: string): ValidateFunction => {
    let v = compiled.get(definition);
    if (!v) {
      v = ajv.getSchema(`${id}#/$defs/${definition}`);
      if (!v) throw new Error(`schema has no $defs entry ${definition}`);
      compiled.set(definition, v);
    }
    return v;
  };

  const validateDocument = (doc: ConfigDocument, index = 0): SchemaProblem[] => {
    const kind = documentKind(doc);
    const definition = kinds.get(kind);
    if (definition === undefined) {
      return [{ document: index, kind, path: "", message: kind ? `kind ${kind} is not in this schema` : "document has neither kind nor version" }];
    }
    // Talos's schemas omit `persist` (its own schema test drops it too).
    const { persist: _persist, ...rest } = doc;
    const data = kind === V1ALPHA1 ? rest : doc;
    const validate = validatorFor(definition);
    if (validate(data)) return [];
    return (validate.errors ?? []).map((e) => ({ document: index, kind, path: e.instancePath, message: message(e) }));
  };

  return {
    definitionFor: (kind) => kinds.get(kind),
    validateDocument,
    validate: (docs) => docs.flatMap((d, i) => validateDocument(d, i)),
  };
}

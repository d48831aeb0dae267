/**
 * Talos machine config documents as plain data: one JS object per YAML
 * document, exactly as parsed. The main document is the legacy `v1alpha1`
 * one (`version: v1alpha1`, `machine:`, `cluster:`, no `kind`); every other
 * document carries `apiVersion` and `kind`, and named kinds a `name`.
 */
import { parseAllDocuments, stringify } from "yaml";

export type ConfigDocument = Record<string, unknown>;

export class DocumentError extends Error {
  override name = "DocumentError";
}

/** Keys that make Talos's decoder treat a document without `kind` as v1alpha1. */
const V1ALPHA1_KEYS = ["machine", "cluster", "debug", "persist"];

export const V1ALPHA1 = "v1alpha1";

export function isV1Alpha1(doc: ConfigDocument): boolean {
  if (doc.kind !== undefined) return false;
  return doc.version === V1ALPHA1 || V1ALPHA1_KEYS.some((k) => k in doc);
}

/** The document's kind: `v1alpha1` for the main document, else its `kind`. */
export function documentKind(doc: ConfigDocument): string {
  if (isV1Alpha1(doc)) return V1ALPHA1;
  return typeof doc.kind === "string" ? doc.kind : "";
}

/** The `name` of a named document, or undefined. */
export function documentName(doc: ConfigDocument): string | undefined {
  return !isV1Alpha1(doc) && typeof doc.name === "string" ? doc.name : undefined;
}

/**
 * A document's identity within a config, as Talos's container sees it:
 * `v1alpha1`, `Kind`, or `Kind/name` for named kinds. Two documents with the
 * same key cannot live in one config.
 */
export function documentKey(doc: ConfigDocument): string {
  const name = documentName(doc);
  return name === undefined ? documentKind(doc) : `${documentKind(doc)}/${name}`;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Every non-empty document of a multi-document YAML text. Empty and null
 * documents are skipped (as Talos's decoder does); anything that is not a
 * mapping is an error naming its line.
 */
export function parseDocuments(yamlText: string): ConfigDocument[] {
  const docs: ConfigDocument[] = [];
  for (const [index, parsed] of parseAllDocuments(yamlText, { prettyErrors: true }).entries()) {
    const error = parsed.errors[0];
    if (error) throw new DocumentError(`YAML document ${index + 1}: ${error.message}`);
    const value: unknown = parsed.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) continue;
    if (!isPlainObject(value)) {
      const line = parsed.contents?.range ? lineOf(yamlText, parsed.contents.range[0]) : undefined;
      throw new DocumentError(`YAML document ${index + 1}${line ? ` (line ${line})` : ""}: expected a mapping, found ${describe(value)}`);
    }
    docs.push(value);
  }
  return docs;
}

/** YAML text of the documents, `---` between them, long lines never folded. */
export function stringifyDocuments(docs: readonly ConfigDocument[]): string {
  return docs.map((doc) => stringify(doc, { lineWidth: 0, indent: 4 })).join("---\n");
}

function lineOf(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

export function describe(value: unknown): string {
  if (value === null || value === undefined) return "nothing";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  return `a ${typeof value}`;
}

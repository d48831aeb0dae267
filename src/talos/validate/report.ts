/**
 * Problems found in a machine config: errors make it unusable, warnings are
 * accepted by Talos but deserve attention. Each names a path a person can
 * find in the YAML: `machine.ca.key` in the v1alpha1 document,
 * `KubeClusterConfig.endpoint`, `RegistryMirrorConfig[docker.io].endpoints[0].url`.
 */
import { documentKind, documentName, isPlainObject, isV1Alpha1, type ConfigDocument } from "../document.js";

export interface Problem {
  readonly path: string;
  readonly message: string;
}

export interface ValidationResult {
  readonly errors: Problem[];
  readonly warnings: Problem[];
}

export class Report implements ValidationResult {
  readonly errors: Problem[] = [];
  readonly warnings: Problem[] = [];

  error(path: string, message: string): void {
    this.errors.push({ path, message });
  }

  warn(path: string, message: string): void {
    this.warnings.push({ path, message });
  }
}

/** The path prefix of a document: empty for v1alpha1, `Kind` or `Kind[name]` otherwise. */
export function documentLabel(doc: ConfigDocument): string {
  if (isV1Alpha1(doc)) return "";
  const name = documentName(doc);
  return name === undefined ? documentKind(doc) : `${documentKind(doc)}[${name}]`;
}

/** `prefix.field`, or just `field` when the prefix is empty (the v1alpha1 document). */
export function join(prefix: string, field: string): string {
  if (prefix === "") return field;
  if (field === "") return prefix;
  return field.startsWith("[") ? `${prefix}${field}` : `${prefix}.${field}`;
}

/** A document's value at a dotted path, or undefined when any step is missing. */
export function at(doc: unknown, path: string): unknown {
  let node: unknown = doc;
  for (const key of path.split(".")) {
    if (!isPlainObject(node)) return undefined;
    node = node[key];
  }
  return node;
}

/** A value present in the YAML (null counts as absent, as Go decodes it to nothing). */
export function present(value: unknown): boolean {
  return value !== undefined && value !== null;
}

export function str(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

/** A non-empty string, or undefined. */
export function text(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

export function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

export function mapping(value: unknown): Record<string, unknown> | undefined {
  return isPlainObject(value) ? value : undefined;
}

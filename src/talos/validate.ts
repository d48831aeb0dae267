/**
 * Our own validation of a Talos machine config (a list of documents), with
 * messages a person can act on. It follows what `talosctl validate` checks
 * client-side (Config.Validate, the documents' Validate methods, the
 * container's conflict checks) and adds what a node needs to join at all:
 * tokens, CAs with matching keys, endpoints. Deprecated fields Talos still
 * accepts are warnings; with Talos's JSON schema for the contract, unknown
 * keys, wrong types and enum values are errors.
 */
import type { Contract } from "./contracts/index.js";
import { isV1Alpha1, type ConfigDocument } from "./document.js";
import { checkConflicts } from "./validate/conflicts.js";
import { makeContext, RUNTIME_MODES, type RuntimeMode } from "./validate/context.js";
import { deprecatedFields } from "./validate/deprecated.js";
import { checkDocuments } from "./validate/documents.js";
import { at, present, Report, type Problem, type ValidationResult } from "./validate/report.js";
import { checkAgainstSchema, SchemaIndex, type JsonSchema } from "./validate/schema-keys.js";
import { checkV1Alpha1 } from "./validate/v1alpha1.js";

export { RUNTIME_MODES, SchemaIndex };
export type { JsonSchema, Problem, RuntimeMode, ValidationResult };

export interface ValidateOptions {
  readonly contract: Contract;
  /**
   * As `talosctl validate --mode`: `metal` requires install instructions
   * (up to 1.13; 1.14 only warns without an UnattendedInstallConfig),
   * `container` requires host DNS. Without a mode only mode-independent
   * checks run.
   */
  readonly mode?: RuntimeMode;
  /**
   * Talos's config JSON schema for the contract's minor
   * (`config.schema.v1.14.json`), parsed, or a SchemaIndex built from it.
   * Enables the unknown-key, type and enum checks.
   */
  readonly schema?: JsonSchema | SchemaIndex;
  /** For certificate expiry; defaults to now. */
  readonly now?: Date;
}

/**
 * Every problem with the config. `errors` empty means Talos will accept it
 * (as far as checks outside a running node go).
 */
export function validateConfig(docs: readonly ConfigDocument[], opts: ValidateOptions): ValidationResult {
  const r = new Report();
  const index = opts.schema === undefined ? undefined : opts.schema instanceof SchemaIndex ? opts.schema : new SchemaIndex(opts.schema);
  const ctx = makeContext(r, docs, {
    contract: opts.contract,
    mode: opts.mode,
    now: opts.now ?? new Date(),
    ...(index ? { knownKind: (kind: string) => index.hasKind(kind) } : {}),
  });
  checkV1Alpha1(ctx);
  checkDocuments(ctx);
  checkConflicts(ctx);

  const deprecated = deprecatedFields(opts.contract);
  const v1 = docs.find(isV1Alpha1);
  for (const field of deprecated) {
    if (v1 && present(at(v1, field.path))) {
      r.warn(field.path, `deprecated in Talos ${field.since.join(".")} (still accepted): use ${field.instead}`);
    }
  }

  if (index) {
    // `persist` is not in Talos's schemas (Talos's own schema test drops it); deprecated fields warn above.
    const tolerated = new Set(["persist", ...deprecated.map((f) => f.path)]);
    checkAgainstSchema(r, docs, index, { tolerated }, opts.contract.version);
  }
  return { errors: dedupe(r.errors), warnings: dedupe(r.warnings) };
}

function dedupe(problems: Problem[]): Problem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${p.path}\u0000${p.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** One line per problem: `path: message`. */
export function formatProblems(problems: readonly Problem[]): string[] {
  return problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message));
}

/**
 * Config patches as talosctl applies them (pkg/machinery/config/configpatcher):
 *
 * - Strategic merge patches: YAML, one or several documents. Each patch
 *   document merges into the config document with the same apiVersion, kind
 *   and name (the v1alpha1 document has none); a patch document with no match
 *   is appended. Merge rules in patch/merge.ts and patch/rules.ts, deletes
 *   (`$patch: delete`) in patch/delete.ts.
 * - RFC 6902 JSON patches: a list of operations, for single-document configs
 *   only — every config from Talos 1.12 on has several documents.
 *
 * Loading `@file` arguments is the caller's job: this module takes text.
 */
import { parseAllDocuments } from "yaml";
import type { Contract } from "./contracts/index.js";
import { documentKind, isPlainObject, isV1Alpha1, type ConfigDocument, V1ALPHA1 } from "./document.js";
import { applyDelete, extractDeletes, DeleteError, type DeleteStep, type DocumentRef } from "./patch/delete.js";
import { applyJsonPatch, parseOperation, JsonPatchError, type JsonPatchOperation } from "./patch/json6902.js";
import { deepClone, mergeMapping, MergeError } from "./patch/merge.js";
import { MergeRules } from "./patch/rules.js";

export type { DeleteStep, DocumentRef, JsonPatchOperation };

export interface MergeStep {
  readonly op: "merge";
  readonly document: ConfigDocument;
}

export type StrategicStep = MergeStep | DeleteStep;

export interface StrategicMergePatch {
  readonly type: "strategic-merge";
  /** Where the patch came from, for messages ("patch 1", "@cp.yaml"). */
  readonly source: string;
  /** Deletes and merges in the order Talos applies them. */
  readonly steps: readonly StrategicStep[];
}

export interface JsonPatch {
  readonly type: "json6902";
  readonly source: string;
  readonly operations: readonly JsonPatchOperation[];
}

export type Patch = StrategicMergePatch | JsonPatch;

export class PatchError extends Error {
  override name = "PatchError";
}

export interface ApplyOptions {
  readonly contract: Contract;
}

/**
 * Reads a patch: a YAML list of operations is a JSON patch (JSON text is
 * YAML too); one or more YAML mappings make a strategic merge patch.
 */
export function parsePatch(text: string, source = "patch"): Patch {
  const docs = parseYaml(text, source);
  if (docs.length === 0) throw new PatchError(`${source}: the patch is empty`);
  const lists = docs.filter(Array.isArray);
  if (lists.length > 0) {
    if (docs.length > 1) {
      throw new PatchError(`${source}: a JSON patch is one list of operations; this text has ${docs.length} YAML documents`);
    }
    const ops = lists[0]!;
    if (ops.length === 0) throw new PatchError(`${source}: the JSON patch has no operations`);
    try {
      return { type: "json6902", source, operations: ops.map(parseOperation) };
    } catch (err) {
      if (err instanceof JsonPatchError) throw new PatchError(`${source}: ${err.message}`);
      throw err;
    }
  }
  const steps: StrategicStep[] = [];
  for (const [i, raw] of docs.entries()) {
    const at = docs.length > 1 ? `${source}, document ${i + 1}` : source;
    if (!isPlainObject(raw)) throw new PatchError(`${at}: expected a mapping (a config document) or a list of JSON patch operations`);
    const doc = deepClone(raw);
    if (!isV1Alpha1(doc) && !("$patch" in doc)) {
      if (typeof doc.kind !== "string" || doc.kind === "") {
        throw new PatchError(`${at}: missing kind (a v1alpha1 patch has machine:, cluster: or version: v1alpha1; other documents need apiVersion and kind)`);
      }
      if (typeof doc.apiVersion !== "string" || doc.apiVersion === "") throw new PatchError(`${at}: missing apiVersion for kind ${doc.kind}`);
    }
    let extracted;
    try {
      extracted = extractDeletes(doc);
    } catch (err) {
      if (err instanceof DeleteError) throw new PatchError(`${at}: ${err.message}`);
      throw err;
    }
    steps.push(...extracted.deletes);
    if (!extracted.empty) steps.push({ op: "merge", document: doc });
  }
  // Talos's patch container hands out deletes aimed at the v1alpha1 document first.
  const isV1Delete = (s: StrategicStep) => s.op === "delete" && s.target.kind === V1ALPHA1;
  return { type: "strategic-merge", source, steps: [...steps.filter(isV1Delete), ...steps.filter((s) => !isV1Delete(s))] };
}

/** `__proto__` is never a Talos field, and assigning it would swap an object's prototype. */
function rejectProtoKeys(value: unknown, source: string, depth = 0): void {
  if (depth > 256) throw new PatchError(`${source}: the patch is nested too deeply`);
  if (Array.isArray(value)) value.forEach((v) => rejectProtoKeys(v, source, depth + 1));
  else if (isPlainObject(value)) {
    for (const [k, v] of Object.entries(value)) {
      if (k === "__proto__") throw new PatchError(`${source}: "__proto__" is not a config key`);
      rejectProtoKeys(v, source, depth + 1);
    }
  }
}

function parseYaml(text: string, source: string): unknown[] {
  const out: unknown[] = [];
  for (const [i, doc] of parseAllDocuments(text).entries()) {
    const error = doc.errors[0];
    if (error) throw new PatchError(`${source}: not valid YAML (document ${i + 1}): ${error.message}`);
    const value: unknown = doc.toJS({ maxAliasCount: 100 });
    rejectProtoKeys(value, source);
    if (value !== null && value !== undefined) out.push(value);
  }
  return out;
}

/**
 * Applies the patches in order and returns new documents: the v1alpha1
 * document first (as Talos encodes a config), then the others in order, with
 * appended ones last. `docs` is never changed; on any error nothing is
 * returned and the error names the patch and the path.
 */
export function applyPatches(docs: readonly ConfigDocument[], patches: readonly Patch[], opts: ApplyOptions): ConfigDocument[] {
  let result = docs.map((d) => deepClone(d));
  for (const patch of patches) {
    try {
      result = patch.type === "json6902" ? applyJson(result, patch) : applyStrategic(result, patch, opts.contract);
    } catch (err) {
      if (err instanceof MergeError || err instanceof DeleteError || err instanceof JsonPatchError) {
        throw new PatchError(`${patch.source}: ${err.message}`);
      }
      throw err;
    }
  }
  return v1alpha1First(result);
}

function applyJson(docs: ConfigDocument[], patch: JsonPatch): ConfigDocument[] {
  if (docs.length !== 1) {
    throw new PatchError(
      `${patch.source}: JSON patches (RFC 6902) apply to single-document configs only, and this config has ${docs.length} documents ` +
        "(every config from Talos 1.12 on has several): use a strategic merge patch instead",
    );
  }
  const patched = applyJsonPatch(docs[0], patch.operations);
  if (!isPlainObject(patched)) throw new PatchError(`${patch.source}: the JSON patch turned the document into ${Array.isArray(patched) ? "a list" : "a scalar"}`);
  return [patched];
}

function refOfDocument(doc: ConfigDocument): DocumentRef {
  if (isV1Alpha1(doc)) return { kind: V1ALPHA1, apiVersion: "" };
  const name = typeof doc.name === "string" && doc.name !== "" ? doc.name : undefined;
  const apiVersion = typeof doc.apiVersion === "string" ? doc.apiVersion : "";
  return name === undefined ? { kind: documentKind(doc), apiVersion } : { kind: documentKind(doc), apiVersion, name };
}

function sameRef(a: DocumentRef, b: DocumentRef): boolean {
  return a.kind === b.kind && a.apiVersion === b.apiVersion && (a.name ?? "") === (b.name ?? "");
}

function applyStrategic(docs: ConfigDocument[], patch: StrategicMergePatch, contract: Contract): ConfigDocument[] {
  const result = [...docs];
  for (const step of patch.steps) {
    const target = step.op === "delete" ? step.target : refOfDocument(step.document);
    const index = result.findIndex((d) => sameRef(refOfDocument(d), target));
    if (step.op === "delete") {
      // A delete aimed at a document the config does not have is skipped (Talos does the same).
      if (index < 0) continue;
      if (applyDelete(result[index]!, step) === "document") result.splice(index, 1);
      continue;
    }
    if (index < 0) {
      result.push(deepClone(step.document));
      continue;
    }
    const left = result[index]!;
    try {
      mergeMapping(left, step.document, "", new MergeRules(target.kind, contract));
    } catch (err) {
      if (err instanceof MergeError) throw new MergeError(`${describeRef(target)}: ${err.message}`);
      throw err;
    }
  }
  return result;
}

function describeRef(ref: DocumentRef): string {
  if (ref.kind === V1ALPHA1) return "v1alpha1 document";
  return ref.name === undefined ? ref.kind : `${ref.kind} "${ref.name}"`;
}

function v1alpha1First(docs: ConfigDocument[]): ConfigDocument[] {
  return [...docs.filter(isV1Alpha1), ...docs.filter((d) => !isV1Alpha1(d))];
}

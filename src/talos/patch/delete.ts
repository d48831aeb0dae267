/**
 * `$patch: delete` in strategic merge patches, as Talos's config decoder
 * reads them (pkg/machinery/config/configloader/internal/decoder/delete.go):
 *
 * - `key: {$patch: delete}` removes `key`;
 * - a list item `{field: value, $patch: delete}` removes the first item of
 *   that list whose `field` equals `value` (the item's first key other than
 *   `$patch` selects it);
 * - `$patch: delete` at the top of a document (with `apiVersion`, `kind` and,
 *   for named kinds, `name`) removes the whole document.
 *
 * The delete markers are taken out of the patch document; what remains is
 * merged as usual, after the deletes.
 */
import { V1ALPHA1, isPlainObject, type ConfigDocument } from "../document.js";

/** Which document a delete applies to: Talos matches apiVersion, kind and name. */
export interface DocumentRef {
  /** `v1alpha1` for the main document. */
  readonly kind: string;
  /** Empty for the v1alpha1 document. */
  readonly apiVersion: string;
  readonly name?: string;
}

export interface DeleteStep {
  readonly op: "delete";
  readonly target: DocumentRef;
  /** Field names from the document root; empty = the whole document. */
  readonly path: readonly string[];
  /** For a list item: the list is at `path`, the item is the one whose `key` equals `value`. */
  readonly item?: { readonly key: string; readonly value: string };
}

export class DeleteError extends Error {
  override name = "DeleteError";
}

const PATCH = "$patch";

function isDeleteMarker(node: Record<string, unknown>, path: readonly string[]): boolean {
  if (!(PATCH in node)) return false;
  // Kubernetes knows `$patch: replace` and `merge`; Talos only `delete` (anything else fails to decode).
  if (node[PATCH] !== "delete") throw new DeleteError(`${path.join(".") || "document"}: only "$patch: delete" is supported, not ${JSON.stringify(node[PATCH])}`);
  return true;
}

function scalarText(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return undefined;
}

/** The document a patch document addresses, for its delete steps. */
function refOf(root: Record<string, unknown>, wholeDocument: boolean): DocumentRef {
  const apiVersion = typeof root.apiVersion === "string" ? root.apiVersion : "";
  const kind = typeof root.kind === "string" ? root.kind : "";
  if (kind === "" && apiVersion === "") {
    if (wholeDocument) throw new DeleteError(`"$patch: delete" at the top of a document needs the document's apiVersion and kind (the v1alpha1 document cannot be deleted)`);
    return { kind: V1ALPHA1, apiVersion: "" };
  }
  if (kind === "" || apiVersion === "") throw new DeleteError(`a document using "$patch: delete" needs both apiVersion and kind`);
  const name = typeof root.name === "string" && root.name !== "" ? root.name : undefined;
  return name === undefined ? { kind, apiVersion } : { kind, apiVersion, name };
}

/**
 * Takes every delete marker out of `doc` (changed in place) and returns the
 * delete steps in document order, plus whether the document itself is now
 * empty (only its identity is left) and can be dropped.
 */
export function extractDeletes(doc: ConfigDocument): { deletes: DeleteStep[]; empty: boolean } {
  const deletes: DeleteStep[] = [];
  if (isDeleteMarker(doc, [])) {
    deletes.push({ op: "delete", target: refOf(doc, true), path: [] });
    return { deletes, empty: true };
  }
  const visit = (node: unknown, path: string[], inList: boolean): boolean => {
    if (isPlainObject(node)) {
      if (isDeleteMarker(node, path)) {
        deletes.push(deleteStep(doc, node, path, inList));
        return true;
      }
      for (const key of Object.keys(node)) {
        if (visit(node[key], [...path, key], false)) {
          delete node[key];
          if (Object.keys(node).length === 0) return true;
        }
      }
      return false;
    }
    if (Array.isArray(node)) {
      // Bounded by the list's length: each round either advances or shrinks it.
      for (let i = 0; i < node.length; ) {
        if (visit(node[i], [...path, `[${i}]`], true)) {
          node.splice(i, 1);
          if (node.length === 0) return true;
        } else {
          i++;
        }
      }
    }
    return false;
  };
  for (const key of Object.keys(doc)) {
    if (visit(doc[key], [key], false)) delete doc[key];
  }
  return { deletes, empty: deletes.length > 0 && isIdentityOnly(doc) };
}

function deleteStep(root: ConfigDocument, node: Record<string, unknown>, path: string[], inList: boolean): DeleteStep {
  const shown = path.join(".");
  if (!inList) {
    if (path.some((p) => p.startsWith("["))) {
      throw new DeleteError(`${shown}: cannot delete a key inside a list item; delete the whole item (select it by its first key)`);
    }
    return { op: "delete", target: refOf(root, false), path };
  }
  const listPath = path.slice(0, -1);
  if (listPath.some((p) => p.startsWith("["))) {
    throw new DeleteError(`${shown}: deleting items of nested lists is not supported`);
  }
  const first = Object.entries(node).find(([k]) => k !== PATCH);
  if (!first) throw new DeleteError(`${shown}: a list item to delete needs a "key: value" besides "$patch: delete" to select it`);
  const value = scalarText(first[1]);
  if (value === undefined) {
    throw new DeleteError(`${shown}: a list item to delete is selected by its first key ("${first[0]}"), which must have a plain value`);
  }
  return { op: "delete", target: refOf(root, false), path: listPath, item: { key: first[0], value } };
}

/**
 * Talos skips a patch document its deletes left with nothing but its identity. (Talos
 * counts `version`, `kind` and `name` as identity but not `apiVersion`, so it
 * would append an empty document of that kind when the target is absent; we
 * treat `apiVersion` as identity too and append nothing.)
 */
function isIdentityOnly(doc: ConfigDocument): boolean {
  return Object.entries(doc).every(([k, v]) => ["version", "apiVersion", "kind", "name"].includes(k) && typeof v !== "object");
}

/**
 * Applies one delete to `doc` (in place). Returns "document" when the whole
 * document is to be removed.
 */
export function applyDelete(doc: ConfigDocument, step: DeleteStep): "document" | "field" {
  if (step.path.length === 0) return "document";
  const shown = step.path.join(".");
  let node: unknown = doc;
  const parents = step.item ? step.path : step.path.slice(0, -1);
  for (const [i, key] of parents.entries()) {
    const next = isPlainObject(node) ? node[key] : undefined;
    if (next === undefined || next === null) {
      throw new DeleteError(`cannot delete ${shown}: ${step.path.slice(0, i + 1).join(".")} is not in the config`);
    }
    node = next;
  }
  if (step.item) {
    const { key, value } = step.item;
    if (!Array.isArray(node)) throw new DeleteError(`cannot delete an item of ${shown}: it is not a list`);
    const index = node.findIndex((it) => isPlainObject(it) && scalarText(it[key]) === value);
    if (index < 0) throw new DeleteError(`cannot delete the item of ${shown} with ${key}: ${value}: there is none`);
    node.splice(index, 1);
    return "field";
  }
  if (!isPlainObject(node)) throw new DeleteError(`cannot delete ${shown}: ${step.path.slice(0, -1).join(".")} is not a mapping`);
  // A key that is already absent is what Talos does for a struct field: nothing to do.
  delete node[step.path[step.path.length - 1]!];
  return "field";
}

/**
 * RFC 6902 JSON Patch over plain data (Talos applies these with
 * evanphx/json-patch): add, remove, replace, move, copy, test, with RFC 6901
 * pointers. Operations apply in order to a private copy; the first failure
 * stops the patch and names the operation.
 */
import { describe, isPlainObject } from "../document.js";
import { deepClone, deepEqual } from "./merge.js";

export type JsonPatchOperation =
  | { readonly op: "add" | "replace" | "test"; readonly path: string; readonly value: unknown }
  | { readonly op: "remove"; readonly path: string }
  | { readonly op: "move" | "copy"; readonly from: string; readonly path: string };

export class JsonPatchError extends Error {
  override name = "JsonPatchError";
}

const OPS = new Set(["add", "remove", "replace", "move", "copy", "test"]);

/** Checks the shape of one operation (an item of the patch list). */
export function parseOperation(raw: unknown, index: number): JsonPatchOperation {
  const at = `operation ${index + 1}`;
  if (!isPlainObject(raw)) throw new JsonPatchError(`${at}: expected a mapping with "op" and "path", found ${describe(raw)}`);
  const { op, path, from } = raw;
  if (typeof op !== "string" || !OPS.has(op)) {
    throw new JsonPatchError(`${at}: "op" must be one of add, remove, replace, move, copy, test${op === undefined ? "" : ` (found ${JSON.stringify(op)})`}`);
  }
  if (typeof path !== "string") throw new JsonPatchError(`${at} (${op}): "path" is required, a JSON pointer such as /machine/network`);
  parsePointer(path, `${at} (${op}) path`);
  switch (op) {
    case "add":
    case "replace":
    case "test":
      if (!("value" in raw)) throw new JsonPatchError(`${at} (${op} ${path}): "value" is required`);
      return { op, path, value: raw.value };
    case "remove":
      return { op, path };
    default: {
      if (typeof from !== "string") throw new JsonPatchError(`${at} (${op} ${path}): "from" is required, a JSON pointer`);
      parsePointer(from, `${at} (${op}) from`);
      return { op: op as "move" | "copy", from, path };
    }
  }
}

/** RFC 6901: "" is the whole document; otherwise "/"-separated tokens with ~1 = "/" and ~0 = "~". */
function parsePointer(pointer: string, what: string): string[] {
  if (pointer === "") return [];
  if (!pointer.startsWith("/")) throw new JsonPatchError(`${what}: "${pointer}" is not a JSON pointer (it must start with "/")`);
  const tokens = pointer
    .slice(1)
    .split("/")
    .map((t) => t.replace(/~1/g, "/").replace(/~0/g, "~"));
  if (tokens.includes("__proto__")) throw new JsonPatchError(`${what}: "__proto__" is not a config key`);
  return tokens;
}

function arrayIndex(token: string, length: number, allowEnd: boolean): number | undefined {
  if (allowEnd && token === "-") return length;
  if (!/^(0|[1-9][0-9]*)$/.test(token)) return undefined;
  const i = Number(token);
  return i < length || (allowEnd && i === length) ? i : undefined;
}

interface Location {
  parent: Record<string, unknown> | unknown[];
  token: string;
}

/** The container holding the pointer's last token; throws when a parent is missing. */
function locate(doc: unknown, pointer: string): Location {
  const tokens = parsePointer(pointer, "path");
  let node: unknown = doc;
  for (const [i, token] of tokens.slice(0, -1).entries()) {
    const next = child(node, token);
    if (next === undefined) throw new JsonPatchError(`${pointer}: /${tokens.slice(0, i + 1).join("/")} does not exist`);
    node = next;
  }
  if (!Array.isArray(node) && !isPlainObject(node)) {
    throw new JsonPatchError(`${pointer}: its parent is ${describe(node)}, not a mapping or list`);
  }
  return { parent: node, token: tokens[tokens.length - 1]! };
}

function child(node: unknown, token: string): unknown {
  if (Array.isArray(node)) {
    const i = arrayIndex(token, node.length, false);
    return i === undefined ? undefined : node[i];
  }
  if (isPlainObject(node) && Object.hasOwn(node, token)) return node[token];
  return undefined;
}

function get(doc: unknown, pointer: string): unknown {
  if (pointer === "") return doc;
  const { parent, token } = locate(doc, pointer);
  const value = child(parent, token);
  if (value === undefined) throw new JsonPatchError(`${pointer} does not exist`);
  return value;
}

function add(doc: unknown, pointer: string, value: unknown): unknown {
  if (pointer === "") return value;
  const { parent, token } = locate(doc, pointer);
  if (Array.isArray(parent)) {
    const i = arrayIndex(token, parent.length, true);
    if (i === undefined) throw new JsonPatchError(`${pointer}: index ${token} is out of range for a list of ${parent.length}`);
    parent.splice(i, 0, value);
  } else {
    parent[token] = value;
  }
  return doc;
}

function remove(doc: unknown, pointer: string): unknown {
  if (pointer === "") throw new JsonPatchError(`cannot remove the whole document`);
  const { parent, token } = locate(doc, pointer);
  if (child(parent, token) === undefined) throw new JsonPatchError(`${pointer} does not exist`);
  if (Array.isArray(parent)) parent.splice(Number(token), 1);
  else delete parent[token];
  return doc;
}

function applyOne(doc: unknown, op: JsonPatchOperation): unknown {
  switch (op.op) {
    case "add":
      return add(doc, op.path, deepClone(op.value));
    case "remove":
      return remove(doc, op.path);
    case "replace":
      if (op.path === "") return deepClone(op.value);
      // remove fails when the target is absent, as "replace" must.
      return add(remove(doc, op.path), op.path, deepClone(op.value));
    case "move": {
      if (op.path === op.from) return doc;
      if (op.path.startsWith(`${op.from}/`)) throw new JsonPatchError(`cannot move ${op.from} into its own child ${op.path}`);
      const value = get(doc, op.from);
      return add(remove(doc, op.from), op.path, value);
    }
    case "copy":
      return add(doc, op.path, deepClone(get(doc, op.from)));
    case "test":
      if (!deepEqual(get(doc, op.path), op.value)) throw new JsonPatchError(`test failed: ${op.path} is not ${JSON.stringify(op.value)}`);
      return doc;
  }
}

/** Applies the operations to a copy of `doc`; `doc` itself is never changed. */
export function applyJsonPatch(doc: unknown, operations: readonly JsonPatchOperation[]): unknown {
  let result = deepClone(doc);
  for (const [i, op] of operations.entries()) {
    try {
      result = applyOne(result, op);
    } catch (err) {
      if (err instanceof JsonPatchError) throw new JsonPatchError(`operation ${i + 1} (${op.op} ${op.path}): ${err.message}`);
      throw err;
    }
  }
  return result;
}

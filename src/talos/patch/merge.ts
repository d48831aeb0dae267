/**
 * Talos's merge of one patch document into one config document
 * (pkg/machinery/config/merge), on plain data:
 * - mappings merge key by key; a key the config lacks is added;
 * - lists append, except replace-tagged fields and keyed lists (rules.ts);
 * - a scalar replaces the config's value unless it is an empty string, zero
 *   or null; `false` always replaces;
 * - a mapping, list and scalar never merge into one another: that is an
 *   error naming the path, as a typed Talos decode would fail.
 *
 * `left` is the caller's private copy and is changed in place; nothing of
 * `right` is shared with the result.
 */
import { describe, isPlainObject } from "../document.js";
import { childPath, itemPath, type ListKey, type MergeRules } from "./rules.js";

export class MergeError extends Error {
  override name = "MergeError";
}

export function deepClone<T>(value: T): T {
  return structuredClone(value);
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  }
  if (isPlainObject(a) && isPlainObject(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => k in b && deepEqual(a[k], b[k]));
  }
  return false;
}

/** Zero values do not overwrite (Go's IsZero for strings and numbers); booleans always do. */
function isZeroScalar(value: unknown): boolean {
  return value === null || value === undefined || value === "" || value === 0;
}

function where(path: string): string {
  return path === "" ? "the document root" : path;
}

/** Merges `right` into the mapping `left` in place. */
export function mergeMapping(left: Record<string, unknown>, right: Record<string, unknown>, path: string, rules: MergeRules): void {
  for (const [key, value] of Object.entries(right)) {
    const p = childPath(path, key);
    if (value === null || value === undefined) continue;
    if (!(key in left) || left[key] === null || left[key] === undefined) {
      left[key] = deepClone(value);
      continue;
    }
    left[key] = mergeValue(left[key], value, p, rules);
  }
}

function mergeValue(left: unknown, right: unknown, path: string, rules: MergeRules): unknown {
  const rule = rules.at(path);
  if (rule?.kind === "replace") return deepClone(right);
  if (rule?.kind === "args") {
    if (!isPlainObject(left) || !isPlainObject(right)) throw mismatch(left, right, path);
    // meta.Args.Merge: maps.Copy, every value replaced whole (a list value too).
    for (const [k, v] of Object.entries(right)) left[k] = deepClone(v);
    return left;
  }
  if (Array.isArray(left) || Array.isArray(right)) {
    if (!Array.isArray(left) || !Array.isArray(right)) throw mismatch(left, right, path);
    if (rule?.kind === "list") return mergeKeyedList(left, right, path, rule.key, rules);
    return [...left, ...right.map(deepClone)];
  }
  if (isPlainObject(left) || isPlainObject(right)) {
    if (!isPlainObject(left) || !isPlainObject(right)) throw mismatch(left, right, path);
    mergeMapping(left, right, path, rules);
    return left;
  }
  if (isZeroScalar(right)) return left;
  if (typeof left !== typeof right) {
    // yaml.v3 decodes any scalar into a string field; a string into a number or boolean field fails.
    if (typeof left === "string") return String(right);
    throw mismatch(left, right, path);
  }
  return right;
}

function mismatch(left: unknown, right: unknown, path: string): MergeError {
  const found = typeof right === "string" || typeof right === "number" || typeof right === "boolean" ? `${typeof right} ${JSON.stringify(right)}` : describe(right);
  return new MergeError(`${where(path)}: the patch has ${found} where the config has ${describe(left)}`);
}

function findItem(items: unknown[], item: unknown, key: ListKey): number {
  if (!isPlainObject(item)) return -1;
  switch (key.kind) {
    case "device": {
      // NetworkDeviceList.mergeDevice: by interface name, else by an identical selector.
      const name = item.interface;
      if (typeof name === "string" && name !== "") {
        return items.findIndex((d) => isPlainObject(d) && d.interface === name);
      }
      const selector = item.deviceSelector;
      if (selector !== undefined && selector !== null) {
        return items.findIndex((d) => isPlainObject(d) && d.deviceSelector !== undefined && deepEqual(d.deviceSelector, selector));
      }
      return -1;
    }
    case "field":
    case "replace-by-field": {
      const value = item[key.field];
      return items.findIndex((d) => isPlainObject(d) && sameScalar(d[key.field], value));
    }
  }
}

/** Go compares the typed field: an absent field is its zero value. */
function sameScalar(a: unknown, b: unknown): boolean {
  const norm = (v: unknown) => (v === undefined || v === null ? "" : String(v));
  return norm(a) === norm(b);
}

function mergeKeyedList(left: unknown[], right: unknown[], path: string, key: ListKey, rules: MergeRules): unknown[] {
  const result = left;
  for (const item of right) {
    const index = findItem(result, item, key);
    if (index < 0) {
      result.push(deepClone(item));
    } else if (key.kind === "replace-by-field") {
      result[index] = deepClone(item);
    } else {
      const existing = result[index];
      if (!isPlainObject(existing) || !isPlainObject(item)) throw mismatch(existing, item, itemPath(path));
      mergeMapping(existing, item, itemPath(path), rules);
    }
  }
  return result;
}

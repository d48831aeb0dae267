/**
 * The shared reference material (captures, Talos goldens) lives beside the
 * repository, in ../shared/reference, not inside it.
 */
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { unmet } from "./tools.js";

/** The directory holding package.json: works from test/helpers and from dist/test/helpers. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error("no package.json above the test helpers");
    dir = parent;
  }
  return dir;
}

export function referenceDir(...parts: string[]): string {
  return resolve(repoRoot(), "..", "shared", "reference", ...parts);
}

/** True when the reference path exists; otherwise skips with a note (throws under CI). */
export function haveReference(...parts: string[]): boolean {
  const path = referenceDir(...parts);
  return existsSync(path) || unmet(`reference material not found at ${path}`);
}

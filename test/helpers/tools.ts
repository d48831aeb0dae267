/**
 * Preconditions for tests that need root or Debian tools. On a developer
 * machine a missing one skips the tests with a note naming the package; under
 * CI=true it throws, because CI must never go green by skipping.
 */
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

export function inCi(): boolean {
  return process.env.CI === "true";
}

/**
 * Returns false (after printing why) when a precondition is missing, for
 * `describe.skipIf(!ok)`. Under CI it throws instead.
 */
export function unmet(message: string): false {
  if (inCi()) throw new Error(`test precondition missing under CI: ${message}`);
  console.warn(`[skipped] ${message}`);
  return false;
}

/** True when `command` is on PATH; otherwise skips (or throws under CI) naming the Debian package. */
export function requireTool(command: string, debianPackage: string): boolean {
  return findOnPath(command) !== undefined || unmet(`\`${command}\` not found — apt-get install ${debianPackage}`);
}

export function requireRoot(): boolean {
  return process.getuid?.() === 0 || unmet("needs root (network namespaces, privileged ports)");
}

export function findOnPath(command: string): string | undefined {
  const dirs = (process.env.PATH ?? "").split(delimiter).concat(["/usr/sbin", "/sbin"]);
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

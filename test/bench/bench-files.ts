/** Test data for the benchmarks: random (incompressible) files, readable by servers that drop privileges. */
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, closeSync, mkdirSync, openSync, readFileSync, writeSync } from "node:fs";

/** A directory every server can read (nginx workers and tftpd-hpa run as other users). */
export function publicDir(path: string): string {
  mkdirSync(path, { recursive: true });
  chmodSync(path, 0o755);
  return path;
}

/** Writes `size` random bytes to `path` (mode 0644); returns their SHA-256. */
export function randomFile(path: string, size: number): string {
  const hash = createHash("sha256");
  const fd = openSync(path, "w", 0o644);
  try {
    const chunk = 1 << 20;
    for (let done = 0; done < size; done += chunk) {
      const b = randomBytes(Math.min(chunk, size - done));
      hash.update(b);
      writeSync(fd, b);
    }
  } finally {
    closeSync(fd);
  }
  chmodSync(path, 0o644);
  return hash.digest("hex");
}

export function sha256File(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

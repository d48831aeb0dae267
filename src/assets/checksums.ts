import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";

export type Algorithm = "sha256" | "sha512";

const HEX_LENGTH: Record<Algorithm, number> = { sha256: 64, sha512: 128 };

/**
 * A `sha256sum`/`sha512sum` list (`<hex>  <name>`, or `<hex> *<name>` for
 * binary mode), as Talos releases publish in sha256sum.txt/sha512sum.txt.
 * Lines that are not a digest of the right length are ignored; names may
 * carry a leading `./` or directory (`_out/vmlinuz-amd64`), matched by base name.
 */
export function parseChecksumList(text: string, algorithm: Algorithm): Map<string, string> {
  const out = new Map<string, string>();
  const line = new RegExp(`^([0-9a-fA-F]{${HEX_LENGTH[algorithm]}})\\s+\\*?(.+?)\\s*$`);
  for (const raw of text.split(/\r?\n/)) {
    const m = line.exec(raw.trim());
    if (!m) continue;
    const name = m[2]!.replace(/^.*\//, "");
    out.set(name, m[1]!.toLowerCase());
  }
  return out;
}

export interface FileDigests {
  sha256: string;
  sha512: string;
  size: number;
}

/** Both digests and the size of a file, in one streaming read. */
export async function digestFile(path: string): Promise<FileDigests> {
  const h256 = createHash("sha256");
  const h512 = createHash("sha512");
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    const b = chunk as Buffer;
    h256.update(b);
    h512.update(b);
    size += b.length;
  }
  return { sha256: h256.digest("hex"), sha512: h512.digest("hex"), size };
}

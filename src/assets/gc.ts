import { readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { AssetCache } from "./cache.js";
import { PART_FILE } from "./cache.js";
import { keyString, type Arch, type AssetKey } from "./types.js";

/** What a profile or cluster needs: any source of this (schematic, version, arch). */
export interface AssetReference {
  schematic: string | null;
  version: string;
  arch: Arch;
}

export interface GcItem {
  path: string;
  bytes: number;
  reason: "unreferenced" | "unfinished download" | "file without a record";
  key?: string;
}

export interface GcPlan {
  remove: GcItem[];
  keep: string[];
  bytes: number;
}

/** Temporary files younger than this may belong to a download running in another process. */
export const PARTIAL_GRACE_MS = 60 * 60_000;

const refString = (r: AssetReference) => `${r.schematic ?? "-"}/${r.version}/${r.arch}`;

async function sizeOf(path: string): Promise<number> {
  return stat(path).then((s) => s.size, () => 0);
}

/**
 * What `gc` would remove: cached sets no reference names (of any source),
 * temporary files of downloads that died (older than the grace period), and
 * files without a record. Removing nothing itself: `applyGc` does.
 */
export async function planGc(cache: AssetCache, references: readonly AssetReference[], now = Date.now()): Promise<GcPlan> {
  const wanted = new Set(references.map(refString));
  const plan: GcPlan = { remove: [], keep: [], bytes: 0 };
  const add = (item: GcItem) => {
    plan.remove.push(item);
    plan.bytes += item.bytes;
  };
  for (const { dir, key } of await cache.entryDirs()) {
    const referenced = wanted.has(refString(key));
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      const path = join(dir, name);
      if (PART_FILE.test(name) || /\.json\.tmp-\d+$/.test(name)) {
        const st = await stat(path).catch(() => undefined);
        if (st && now - st.mtimeMs > PARTIAL_GRACE_MS) add({ path, bytes: st.size, reason: "unfinished download" });
        continue;
      }
      const file = name === "kernel" || name === "initramfs" ? name : name === "kernel.json" || name === "initramfs.json" ? name.slice(0, -5) : undefined;
      if (file === undefined) {
        if (!referenced && name.startsWith("cmdline-metal-")) add({ path, bytes: await sizeOf(path), reason: "unreferenced" });
        continue;
      }
      const k: AssetKey = { ...key, file: file as AssetKey["file"] };
      const isRecord = name.endsWith(".json");
      const hasRecord = isRecord || (await cache.readManifest(k)) !== undefined;
      if (!referenced) add({ path, bytes: await sizeOf(path), reason: "unreferenced", key: keyString(k) });
      else if (!hasRecord) add({ path, bytes: await sizeOf(path), reason: "file without a record", key: keyString(k) });
      else if (!isRecord) plan.keep.push(keyString(k));
    }
  }
  return plan;
}

/** Removes what the plan lists; answers what it removed. */
export async function applyGc(plan: GcPlan): Promise<{ removed: number; bytes: number }> {
  let removed = 0;
  let bytes = 0;
  for (const item of plan.remove) {
    await rm(item.path, { force: true });
    removed++;
    bytes += item.bytes;
  }
  return { removed, bytes };
}

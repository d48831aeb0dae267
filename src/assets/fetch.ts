import type { Logger } from "pino";
import { installerImage } from "./installer.js";
import type { SchematicLookup } from "./profile.js";
import { extensionsCustomization, schematicId, type Customization } from "./schematic.js";
import type { AssetPair, AssetService, FetchOptions } from "./service.js";
import { AssetError, type Arch, type AssetSetKey } from "./types.js";
import { parseTalosVersion } from "./version.js";

/** `assets fetch` / `POST /api/v1/assets/fetch`: release files, a schematic (name or ID), or official extensions. */
export interface FetchRequest {
  version: string;
  arch: Arch;
  schematic?: string;
  extensions?: readonly string[];
}

export interface FetchOutcome {
  set: AssetSetKey;
  pair: AssetPair;
  installerImage: string;
}

/**
 * Downloads (or finds cached) the kernel and initramfs a request names. A
 * customization we know is registered with the factory first (the factory
 * serves only schematics it knows); when no factory answers, the local ID
 * is used and the download says why it failed.
 */
export async function fetchAssets(
  req: FetchRequest,
  deps: { service: AssetService; lookup: SchematicLookup; log: Logger },
  opts: FetchOptions = {},
): Promise<FetchOutcome> {
  const version = parseTalosVersion(req.version);
  if (req.schematic !== undefined && req.extensions !== undefined) {
    throw new AssetError("INVALID", "give either extensions or a schematic, not both");
  }
  let id: string | null = null;
  let customization: Customization | undefined;
  if (req.extensions !== undefined) {
    customization = extensionsCustomization(req.extensions);
    id = schematicId(customization);
  } else if (req.schematic !== undefined) {
    const found = deps.lookup(req.schematic);
    if (!found) throw new AssetError("INVALID", `no schematic named '${req.schematic}' (give a 64-hex ID, or define the name under talos.schematics)`);
    id = found.id;
    customization = found.customization;
  }
  if (id !== null && customization) {
    try {
      id = (await deps.service.register(customization)).id;
    } catch (err) {
      deps.log.warn({ schematic: id, err: (err as Error).message }, "could not register the schematic with the Image Factory");
    }
  }
  const set: AssetSetKey = { source: id === null ? "release" : "factory", schematic: id, version: version.text, arch: req.arch };
  const pair = await deps.service.ensurePair(set, opts);
  return { set, pair, installerImage: installerImage(version, id, deps.service.settings.installerRegistry) };
}

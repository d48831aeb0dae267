import { join } from "node:path";
import { z } from "zod";
import { customizationSchema } from "./schematic.js";
import type { AssetSettings } from "./service.js";

/**
 * Config keys of the boot-asset layer, merged by src/config/schema.ts into
 * the top-level schema: `talos: talosConfigSchema` and `cacheDir: cacheDirSchema`.
 */

export const DEFAULT_RELEASES_URL = "https://github.com/siderolabs/talos/releases/download";
export const DEFAULT_FACTORY_URL = "https://factory.talos.dev";
export const DEFAULT_INSTALLER_REGISTRY = "factory.talos.dev";

const httpUrl = z.string().refine(
  (s) => {
    try {
      const u = new URL(s);
      return (u.protocol === "http:" || u.protocol === "https:") && !u.search && !u.hash;
    } catch {
      return false;
    }
  },
  { message: "expected an http(s):// URL without query or fragment" },
);

/** An OCI registry host (and optional path prefix), no scheme: `factory.talos.dev`, `registry.lan:5000/talos`. */
const registry = z.string().regex(/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:\d{1,5})?(\/[a-z0-9._-]+)*$/, {
  message: "expected a registry host such as factory.talos.dev or registry.lan:5000 (no https://)",
});

/** Schematic names: what fits in URLs, logs and config keys. */
export const SCHEMATIC_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
export const schematicNameSchema = z.string().regex(SCHEMATIC_NAME, {
  message: "expected a name of letters, digits, '.', '_' or '-' (max 63)",
});

const TALOS_DEFAULTS = {
  releasesUrl: DEFAULT_RELEASES_URL,
  factoryUrl: DEFAULT_FACTORY_URL,
  installerRegistry: DEFAULT_INSTALLER_REGISTRY,
  schematics: {},
};

export const talosConfigSchema = z
  .strictObject({
    /** Talos GitHub releases, or a mirror with the same layout (`<url>/v<version>/<file>`). */
    releasesUrl: httpUrl.default(DEFAULT_RELEASES_URL),
    /** The Image Factory, or a mirror of its `/image/…` and `/schematics` paths. */
    factoryUrl: httpUrl.default(DEFAULT_FACTORY_URL),
    /** Where installer images are pulled from: an OCI registry, not an HTTP mirror. */
    installerRegistry: registry.default(DEFAULT_INSTALLER_REGISTRY),
    /** Named schematic customizations that profiles can reference by name. */
    schematics: z.record(schematicNameSchema, customizationSchema).default({}),
  })
  .default(TALOS_DEFAULTS);

/** Absolute path; `<stateDir>/cache` when absent. */
export const cacheDirSchema = z
  .string()
  .refine((s) => s.startsWith("/"), { message: "expected an absolute path" })
  .optional();

export type TalosConfig = z.output<typeof talosConfigSchema>;

/** The asset settings of a loaded config (defaults applied for keys it lacks). */
export function assetSettingsFrom(cfg: { stateDir: string; cacheDir?: string | undefined; talos?: Partial<TalosConfig> | undefined }): AssetSettings {
  const talos = talosConfigSchema.parse(cfg.talos ?? {});
  return {
    cacheDir: cfg.cacheDir ?? join(cfg.stateDir, "cache"),
    releasesUrl: talos.releasesUrl,
    factoryUrl: talos.factoryUrl,
    installerRegistry: talos.installerRegistry,
    schematics: talos.schematics,
  };
}

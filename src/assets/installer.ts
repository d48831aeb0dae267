import { DEFAULT_SCHEMATIC_ID } from "./schematic.js";
import { atLeast, compareVersions, type TalosVersion } from "./version.js";

/**
 * The installer image a machine config must name, per version (DESIGN §4).
 * Without the schematic's installer, the installed system loses the
 * extensions and kernel arguments the PXE boot had.
 *
 *   no schematic, < 1.14   ghcr.io/siderolabs/installer:v<version>
 *   schematic,    < 1.10   <registry>/installer/<id>:v<version>
 *   schematic,    ≥ 1.10   <registry>/metal-installer/<id>:v<version>   (factory quirk SupportsUnifiedInstaller)
 *   no schematic, ≥ 1.14   <registry>/metal-installer/<default id>:v<version>   (ghcr installer no longer published)
 */
export const GHCR_INSTALLER = "ghcr.io/siderolabs/installer";

export function installerImage(version: TalosVersion, schematic: string | null, registry: string): string {
  const tag = `v${version.text}`;
  // The ghcr cut-off is a publishing fact for the 1.14 line as a whole
  // (its pre-releases included), not a Talos quirk.
  const ghcrPublished = compareVersions(`${version.major}.${version.minor}.0`, "1.14.0") < 0;
  if (schematic === null && ghcrPublished) return `${GHCR_INSTALLER}:${tag}`;
  const id = schematic ?? DEFAULT_SCHEMATIC_ID;
  const repo = atLeast(version, "1.10.0") ? "metal-installer" : "installer";
  return `${registry.replace(/\/+$/, "")}/${repo}/${id}:${tag}`;
}

import type { Arch, AssetFile, AssetKey } from "./types.js";

/**
 * Where each file lives upstream (DESIGN §4). Base URLs are configurable so a
 * local mirror works; a mirror keeps the upstream layout under its base.
 *
 *   release  <releasesUrl>/v<version>/vmlinuz-<arch> | initramfs-<arch>.xz | sha256sum.txt | sha512sum.txt
 *   factory  <factoryUrl>/image/<schematic>/v<version>/kernel-<arch> | initramfs-<arch>.xz | cmdline-metal-<arch>
 *            <factoryUrl>/schematics (POST)
 */
export interface UpstreamUrls {
  releasesUrl: string;
  factoryUrl: string;
}

const base = (url: string): string => url.replace(/\/+$/, "");

/** The file name in a Talos GitHub release. */
export function releaseFileName(file: AssetFile, arch: Arch): string {
  return file === "kernel" ? `vmlinuz-${arch}` : `initramfs-${arch}.xz`;
}

/** The file name under the factory's `/image/<schematic>/v<version>/`. */
export function factoryFileName(file: AssetFile, arch: Arch): string {
  return file === "kernel" ? `kernel-${arch}` : `initramfs-${arch}.xz`;
}

export function releaseFileUrl(releasesUrl: string, version: string, name: string): string {
  return `${base(releasesUrl)}/v${version}/${name}`;
}

export function releaseChecksumUrls(releasesUrl: string, version: string): { sha256: string; sha512: string } {
  return { sha256: releaseFileUrl(releasesUrl, version, "sha256sum.txt"), sha512: releaseFileUrl(releasesUrl, version, "sha512sum.txt") };
}

export function factoryFileUrl(factoryUrl: string, schematic: string, version: string, name: string): string {
  return `${base(factoryUrl)}/image/${schematic}/v${version}/${name}`;
}

/** The exact PXE kernel command line the factory builds for a schematic (DESIGN §4). */
export function factoryCmdlineUrl(factoryUrl: string, schematic: string, version: string, arch: Arch): string {
  return factoryFileUrl(factoryUrl, schematic, version, `cmdline-metal-${arch}`);
}

export function factorySchematicsUrl(factoryUrl: string): string {
  return `${base(factoryUrl)}/schematics`;
}

/** The upstream URL of a downloadable key; imports have none. */
export function upstreamUrl(key: AssetKey, urls: UpstreamUrls): string | null {
  if (key.source === "release") return releaseFileUrl(urls.releasesUrl, key.version, releaseFileName(key.file, key.arch));
  if (key.source === "factory" && key.schematic) {
    return factoryFileUrl(urls.factoryUrl, key.schematic, key.version, factoryFileName(key.file, key.arch));
  }
  return null;
}

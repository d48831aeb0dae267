import { describe, expect, it } from "vitest";
import { installerImage } from "../../src/assets/installer.js";
import { DEFAULT_SCHEMATIC_ID } from "../../src/assets/schematic.js";
import { parseTalosVersion } from "../../src/assets/version.js";

const ID = "ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515";
const DEFAULT = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba";

/** DESIGN §4 "Installer images", one row per (version, schematic). */
const table: Array<[string, string | null, string]> = [
  ["1.9.6", null, "ghcr.io/siderolabs/installer:v1.9.6"],
  ["1.9.6", ID, `factory.talos.dev/installer/${ID}:v1.9.6`],
  ["1.10.0-beta.0", ID, `factory.talos.dev/installer/${ID}:v1.10.0-beta.0`],
  ["1.10.9", null, "ghcr.io/siderolabs/installer:v1.10.9"],
  ["1.10.9", ID, `factory.talos.dev/metal-installer/${ID}:v1.10.9`],
  ["1.13.10", null, "ghcr.io/siderolabs/installer:v1.13.10"],
  ["1.13.10", ID, `factory.talos.dev/metal-installer/${ID}:v1.13.10`],
  ["1.14.7", null, `factory.talos.dev/metal-installer/${DEFAULT}:v1.14.7`],
  ["1.14.7", ID, `factory.talos.dev/metal-installer/${ID}:v1.14.7`],
  ["1.14.0-beta.1", null, `factory.talos.dev/metal-installer/${DEFAULT}:v1.14.0-beta.1`],
];

describe("installer image per version (DESIGN §4)", () => {
  it.each(table)("Talos %s, schematic %s → %s", (version, schematic, image) => {
    expect(installerImage(parseTalosVersion(version), schematic, "factory.talos.dev")).toBe(image);
  });

  it("the default schematic is the factory's", () => {
    expect(DEFAULT_SCHEMATIC_ID).toBe(DEFAULT);
  });

  it("uses the configured registry, and the full version in the tag", () => {
    expect(installerImage(parseTalosVersion("v1.14.7"), ID, "registry.lan:5000/talos/")).toBe(`registry.lan:5000/talos/metal-installer/${ID}:v1.14.7`);
  });
});

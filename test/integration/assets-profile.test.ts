import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { profileReferences } from "../../src/assets/cli.js";
import { archFromClientArch, maintenanceModeChecks, prefetchProfiles, resolveProfileAssets, schematicLookup, talosProfileSchema } from "../../src/assets/profile.js";
import { AssetService } from "../../src/assets/service.js";
import { silentLogger } from "../../src/log.js";
import { ASSETS_FAMILY, SchematicStore } from "../../src/store/assets.js";
import { openMemoryDatabase } from "../../src/store/db.js";
import { FakeTalosMirror } from "../helpers/fake-talos-mirror.js";
import { tempDir } from "../helpers/fixtures.js";
import { SCHEMATIC_VECTORS } from "../helpers/schematic-vectors.js";

const QEMU = SCHEMATIC_VECTORS[1]!;
const DEFAULT = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba";

/** DESIGN §4 amd64 lines (see test/unit/assets-kernel-args.test.ts for how each is derived). */
const L19 = "talos.platform=metal console=tty0 init_on_alloc=1 slab_nomerge pti=on consoleblank=0 nvme_core.io_timeout=4294967295 printk.devkmsg=on ima_template=ima-ng ima_appraise=fix ima_hash=sha512";
const L110 = `${L19} selinux=1`;
const L113 = "talos.platform=metal console=tty0 init_on_alloc=1 slab_nomerge pti=on consoleblank=0 nvme_core.io_timeout=4294967295 printk.devkmsg=on selinux=1 module.sig_enforce=1 proc_mem.force_override=never";
const L114 = "talos.platform=metal console=tty0 slab_nomerge pti=on consoleblank=0 printk.devkmsg=on selinux=1 module.sig_enforce=1 proc_mem.force_override=never";
const CONFIG = "http://192.168.77.1:8080/boot/52-54-00-12-34-56/config/tok";

/** DESIGN §4: the kernel command line and installer for each version, with and without a schematic (no factory command line offered). */
const rows: Array<[string, string | null, string, string]> = [
  ["1.9.6", null, L19, "ghcr.io/siderolabs/installer:v1.9.6"],
  ["1.9.6", QEMU.id, L19, `factory.talos.dev/installer/${QEMU.id}:v1.9.6`],
  ["1.10.9", null, L110, "ghcr.io/siderolabs/installer:v1.10.9"],
  ["1.10.9", QEMU.id, L110, `factory.talos.dev/metal-installer/${QEMU.id}:v1.10.9`],
  ["1.13.10", null, L113, "ghcr.io/siderolabs/installer:v1.13.10"],
  ["1.13.10", QEMU.id, L113, `factory.talos.dev/metal-installer/${QEMU.id}:v1.13.10`],
  ["1.14.7", null, L114, `factory.talos.dev/metal-installer/${DEFAULT}:v1.14.7`],
  ["1.14.7", QEMU.id, L114, `factory.talos.dev/metal-installer/${QEMU.id}:v1.14.7`],
];

describe("Talos-form profiles", () => {
  const mirror = new FakeTalosMirror();
  let dir: string;
  let service: AssetService;

  beforeAll(async () => {
    await mirror.start();
    mirror.known.add(QEMU.id);
    dir = tempDir("tnb-profile-");
    service = new AssetService(
      { cacheDir: dir, releasesUrl: mirror.releasesUrl, factoryUrl: mirror.factoryUrl, installerRegistry: "factory.talos.dev", schematics: {} },
      silentLogger(),
      { retryDelayMs: 0 },
    );
  });
  afterAll(async () => {
    await mirror.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each(rows)("Talos %s, schematic %s: DESIGN §4 command line and installer", async (version, schematic, line, installer) => {
    const profile = talosProfileSchema.parse({ version, arch: "auto", ...(schematic ? { schematic } : {}) });
    const r = await resolveProfileAssets(profile, { clientArch: 7, configUrl: CONFIG }, { service, lookup: schematicLookup({}), log: silentLogger() });
    expect(r.cmdline).toBe(`${line} talos.config=${CONFIG}`);
    expect(r.installerImage).toBe(installer);
    expect(r.set).toEqual({ source: schematic ? "factory" : "release", schematic, version, arch: "amd64" });
  });

  it("prefetch on start: a profile that cannot be fetched is a warning, never a failure", async () => {
    mirror.publish = { sha256: false, sha512: false };
    const warnings: string[] = [];
    const log = silentLogger();
    log.warn = ((obj: { profile: string }) => void warnings.push(obj.profile)) as typeof log.warn;
    const profiles = {
      broken: { talos: talosProfileSchema.parse({ version: "1.11.6", arch: "arm64" }) },
      rescue: {},
    };
    await expect(prefetchProfiles(profiles, { service, lookup: schematicLookup({}), log })).resolves.toBeUndefined();
    mirror.publish = { sha256: true, sha512: true };
    expect(warnings).toEqual(["broken"]);
    await prefetchProfiles({ good: { talos: talosProfileSchema.parse({ version: "1.11.6", arch: "auto" }) } }, { service, lookup: schematicLookup({}), log });
    expect((await service.cache.list()).filter((e) => e.key.version === "1.11.6").map((e) => e.key.arch)).toEqual(["amd64", "amd64"]);
  });

  it("arch auto follows the client's option 93", () => {
    expect([0, 7, 9, 16].map(archFromClientArch)).toEqual(["amd64", "amd64", "amd64", "amd64"]);
    expect([11, 19].map(archFromClientArch)).toEqual(["arm64", "arm64"]);
    expect(archFromClientArch(10)).toBeUndefined();
  });

  it("validates the Talos form at the edge", () => {
    expect(talosProfileSchema.safeParse({ version: "1.14" }).success).toBe(false);
    expect(talosProfileSchema.safeParse({ version: "1.8.4" }).success).toBe(false);
    expect(talosProfileSchema.safeParse({ version: "1.14.7", schematic: "has space" }).success).toBe(false);
    expect(talosProfileSchema.safeParse({ version: "1.14.7", extraArgs: ["a b"] }).success).toBe(false);
    expect(talosProfileSchema.parse({ version: "v1.14.7" })).toEqual({ version: "v1.14.7", arch: "auto", extraArgs: [] });
  });

  it("resolves schematic names from the config first, then the store; IDs pass through", () => {
    const store = new SchematicStore(openMemoryDatabase([ASSETS_FAMILY]));
    store.put({ name: "stored", id: QEMU.id, customization: QEMU.customization, yaml: QEMU.yaml });
    const lookup = schematicLookup({ configured: { extraKernelArgs: ["noapic", "nolapic"] } }, store);
    expect(lookup("configured")?.id).toBe("9cba8e32753f91a16c1837ab8abf356af021706ef284aef07380780177d9a06c");
    expect(lookup("stored")).toEqual({ id: QEMU.id, customization: QEMU.customization });
    expect(lookup(DEFAULT)).toEqual({ id: DEFAULT });
    expect(lookup("missing")).toBeUndefined();
  });

  it("gc references: arch auto keeps both architectures; an unknown schematic name stops the collection", () => {
    const refs = profileReferences({ a: { talos: { version: "v1.14.7", arch: "auto", extraArgs: [] } }, b: {} }, schematicLookup({}));
    expect(refs).toEqual([
      { schematic: null, version: "1.14.7", arch: "amd64" },
      { schematic: null, version: "1.14.7", arch: "arm64" },
    ]);
    expect(() => profileReferences({ a: { talos: { version: "1.14.7", schematic: "gone", arch: "amd64", extraArgs: [] } } }, schematicLookup({}))).toThrow(/not collecting/);
  });

  it("maintenance mode: a warning for every config-less Talos profile, a refusal as unknownMachines without allowMaintenance", () => {
    const profiles = {
      install: { talos: {}, config: "/etc/talos/worker.yaml" },
      open: { talos: {} },
      accepted: { talos: {}, allowMaintenance: true },
      rescue: {},
    };
    const ok = maintenanceModeChecks(profiles, "install");
    expect(ok.warnings.map((w) => w.split(":")[0])).toEqual(["profiles.open", "profiles.accepted"]);
    expect(ok.problems).toEqual([]);
    expect(maintenanceModeChecks(profiles, "open").problems).toEqual([expect.stringMatching(/^unknownMachines: profile 'open' boots Talos in maintenance mode/)]);
    expect(maintenanceModeChecks(profiles, "accepted").problems).toEqual([]);
  });
});

import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ChecksumMismatchError } from "../../src/assets/types.js";
import { AssetCache } from "../../src/assets/cache.js";
import { applyGc, planGc } from "../../src/assets/gc.js";
import { importAssets } from "../../src/assets/import.js";
import { resolveProfileAssets, schematicLookup } from "../../src/assets/profile.js";
import { AssetService, type AssetSettings } from "../../src/assets/service.js";
import type { AssetKey } from "../../src/assets/types.js";
import { parseTalosVersion } from "../../src/assets/version.js";
import { silentLogger } from "../../src/log.js";
import { FakeTalosMirror } from "../helpers/fake-talos-mirror.js";
import { tempDir } from "../helpers/fixtures.js";
import { SCHEMATIC_VECTORS } from "../helpers/schematic-vectors.js";

const QEMU = SCHEMATIC_VECTORS[1]!; // siderolabs/qemu-guest-agent
const sha = (algorithm: "sha256" | "sha512", b: Buffer) => createHash(algorithm).update(b).digest("hex");
const release = (file: AssetKey["file"], version = "1.14.7", arch: AssetKey["arch"] = "amd64"): AssetKey => ({ source: "release", schematic: null, version, arch, file });
const factory = (file: AssetKey["file"], schematic = QEMU.id, version = "1.14.7"): AssetKey => ({ source: "factory", schematic, version, arch: "amd64", file });

/** Everything under the cache root, relative: to prove nothing (partial or whole) was left behind. */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => join(d.parentPath ?? (d as unknown as { path: string }).path, d.name).slice(dir.length + 1))
    .sort();
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe("Talos asset cache against a stand-in release mirror and factory", () => {
  const mirror = new FakeTalosMirror();
  let dir: string;
  let settings: AssetSettings;
  let service: AssetService;
  const newService = () => new AssetService(settings, silentLogger(), { attempts: 3, retryDelayMs: 0, idleTimeoutMs: 10_000 });

  beforeAll(() => mirror.start());
  afterAll(() => mirror.stop());
  beforeEach(() => {
    dir = tempDir("tnb-assets-");
    mirror.reset();
    mirror.known.add(QEMU.id);
    settings = { cacheDir: dir, releasesUrl: mirror.releasesUrl, factoryUrl: mirror.factoryUrl, installerRegistry: "factory.talos.dev", schematics: {} };
    service = newService();
  });
  afterEach(() => {
    mirror.reset();
    rmSync(dir, { recursive: true, force: true });
  });

  it("fetches release files, verifies them against sha512sum.txt and sha256sum.txt, and lists them", async () => {
    const pair = await service.ensurePair({ source: "release", schematic: null, version: "1.14.7", arch: "amd64" });
    const kernel = mirror.bytes("release", "1.14.7", "vmlinuz-amd64");
    expect(readFileSync(pair.kernel.path).equals(kernel)).toBe(true);
    expect(readFileSync(pair.initramfs.path).equals(mirror.bytes("release", "1.14.7", "initramfs-amd64.xz"))).toBe(true);
    expect(pair.kernel.manifest).toMatchObject({ verifiedBy: "release-checksums", sha256: sha("sha256", kernel), sha512: sha("sha512", kernel), size: kernel.length });
    expect(pair.kernel.manifest.basis).toContain("sha512sum.txt and sha256sum.txt of Talos v1.14.7");
    const listed = await service.cache.list();
    expect(listed.map((e) => e.key.file).sort()).toEqual(["initramfs", "kernel"]);
    // A second ask is served from the cache: no new downloads.
    const before = mirror.requests.length;
    await newService().ensurePair({ source: "release", schematic: null, version: "1.14.7", arch: "amd64" });
    expect(mirror.requests.length).toBe(before);
  });

  it("verifies against whichever list the release publishes, and refuses a release with none", async () => {
    mirror.publish = { sha256: true, sha512: false };
    const k = await service.ensureFile(release("kernel", "1.13.10"));
    expect(k.manifest.basis).toBe("sha256sum.txt of Talos v1.13.10");
    mirror.publish = { sha256: false, sha512: false };
    await expect(service.ensureFile(release("kernel", "1.12.11"))).rejects.toThrow(/neither sha256sum\.txt nor sha512sum\.txt lists vmlinuz-amd64/);
    expect(mirror.count(/\/v1\.12\.11\/vmlinuz/)).toBe(0);
  });

  it("a checksum mismatch is an error naming both digests, and nothing enters the cache", async () => {
    const good = mirror.bytes("release", "1.14.7", "vmlinuz-amd64");
    const bad = Buffer.from(good.map((b) => b ^ 0xff));
    mirror.corruptNext(/vmlinuz-amd64$/, 1);
    const err = await service.ensureFile(release("kernel")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChecksumMismatchError);
    const msg = (err as Error).message;
    expect(msg).toContain(sha("sha512", good));
    expect(msg).toContain(sha("sha512", bad));
    expect(await service.cache.list()).toEqual([]);
    expect(filesUnder(service.cache.root)).toEqual([]);
  });

  it("factory files: follows the 302, records sha256 and size on first fetch, and holds later fetches to them", async () => {
    const k = await service.ensureFile(factory("kernel"));
    const bytes = mirror.bytes("factory", "1.14.7", "kernel-amd64", QEMU.id);
    expect(readFileSync(k.path).equals(bytes)).toBe(true);
    expect(k.manifest).toMatchObject({ verifiedBy: "first-fetch", sha256: sha("sha256", bytes), size: bytes.length });
    expect(mirror.count(/^\/factory\/image\//)).toBe(1);
    expect(mirror.count(/^\/factory-cdn\//)).toBe(1);

    // The bytes go missing; the factory now serves others: the record pins them.
    rmSync(k.path);
    mirror.corruptNext(/kernel-amd64$/, 1);
    const err = await newService().ensureFile(factory("kernel")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChecksumMismatchError);
    expect((err as Error).message).toContain(sha("sha256", bytes));
    expect((err as Error).message).toContain(sha("sha256", Buffer.from(bytes.map((b) => b ^ 0xff))));
    expect(existsSync(k.path)).toBe(false);
    // With the right bytes back, the same record accepts them.
    expect((await newService().ensureFile(factory("kernel"))).sha256).toBe(sha("sha256", bytes));
  });

  it("verifies a cached file on reuse: one changed on disk is dropped and fetched again", async () => {
    const k = await service.ensureFile(factory("kernel"));
    const original = readFileSync(k.path);
    const tampered = Buffer.from(original);
    tampered[100] = tampered[100]! ^ 1;
    writeFileSync(k.path, tampered);
    const fresh = newService(); // a new process: nothing re-hashed yet
    expect(await fresh.cache.get(factory("kernel"))).toBeUndefined();
    const again = await fresh.ensureFile(factory("kernel"));
    expect(readFileSync(again.path).equals(original)).toBe(true);
  });

  it("a connection cut mid-file resumes with a Range request where the server allows it (release)", async () => {
    mirror.cutNext(/vmlinuz-amd64$/, 50_000);
    const k = await service.ensureFile(release("kernel"));
    expect(readFileSync(k.path).equals(mirror.bytes("release", "1.14.7", "vmlinuz-amd64"))).toBe(true);
    expect(mirror.count(/vmlinuz-amd64$/)).toBe(2);
    // How much of the cut body reached the disk is up to the client's stream
    // teardown; the resume must ask for the rest of exactly that.
    const resumedAt = mirror.requests.map((r) => /^bytes=(\d+)-$/.exec(r.range ?? "")?.[1]).filter((x) => x !== undefined).map(Number);
    expect(resumedAt).toHaveLength(1);
    expect(resumedAt[0]).toBeGreaterThan(0);
    expect(resumedAt[0]).toBeLessThanOrEqual(50_000);
  });

  it("a connection cut mid-file restarts from zero where it does not (factory CDN: no Range, no ETag)", async () => {
    mirror.cutNext(/initramfs-amd64\.xz$/, 100_000);
    const f = await service.ensureFile(factory("initramfs"));
    expect(readFileSync(f.path).equals(mirror.bytes("factory", "1.14.7", "initramfs-amd64.xz", QEMU.id))).toBe(true);
    expect(mirror.count(/^\/factory-cdn\/.*initramfs/)).toBe(2);
    expect(mirror.count(/^\/factory-cdn\/.*initramfs/, (r) => r.range !== undefined)).toBe(0);
  });

  it("a download that keeps failing leaves no cache entry and no partial file; a later try succeeds", async () => {
    const once = new AssetService(settings, silentLogger(), { attempts: 1, retryDelayMs: 0 });
    mirror.cutNext(/vmlinuz-amd64$/, 10_000);
    await expect(once.ensureFile(release("kernel"))).rejects.toThrow(/failed after 1 attempt/);
    expect(await once.cache.list()).toEqual([]);
    expect(filesUnder(once.cache.root)).toEqual([]);
    const k = await once.ensureFile(release("kernel"));
    expect(readFileSync(k.path).equals(mirror.bytes("release", "1.14.7", "vmlinuz-amd64"))).toBe(true);
  });

  it("20 concurrent boot requests for an uncached profile make exactly one upstream download per file", async () => {
    mirror.hold();
    const deps = { service, lookup: schematicLookup({}), log: silentLogger() };
    const profile = { version: "v1.14.7", arch: "amd64" as const, extraArgs: [] };
    const boots = Array.from({ length: 20 }, () => resolveProfileAssets(profile, { configUrl: "http://192.168.77.1:8080/c" }, deps));
    await until(() => mirror.count(/vmlinuz-amd64$/) >= 1 && mirror.count(/initramfs-amd64\.xz$/) >= 1, "the downloads to start");
    mirror.release();
    const results = await Promise.all(boots);
    expect(new Set(results.map((r) => r.kernelPath)).size).toBe(1);
    expect(new Set(results.map((r) => r.initrdPath)).size).toBe(1);
    expect(mirror.count(/vmlinuz-amd64$/)).toBe(1);
    expect(mirror.count(/initramfs-amd64\.xz$/)).toBe(1);
    expect(readFileSync(results[0]!.kernelPath).equals(mirror.bytes("release", "1.14.7", "vmlinuz-amd64"))).toBe(true);
  });

  it("a boot request waits a bounded time for a download in progress, then gets a clear error; the download goes on", async () => {
    mirror.hold();
    const deps = { service, lookup: schematicLookup({}), log: silentLogger() };
    const profile = { version: "1.13.10", arch: "amd64" as const, extraArgs: [] };
    await expect(resolveProfileAssets(profile, { waitMs: 50 }, deps)).rejects.toThrow(/still downloading/);
    mirror.release();
    const r = await resolveProfileAssets(profile, {}, deps);
    expect(existsSync(r.kernelPath)).toBe(true);
    expect(mirror.count(/v1\.13\.10\/vmlinuz-amd64$/)).toBe(1);
  });

  it("a schematic profile: registers, downloads from the factory, and boots with the factory's command line", async () => {
    mirror.known.delete(QEMU.id);
    mirror.cmdline = (id, version, arch) => `talos.platform=metal console=tty0 factory=${id.slice(0, 8)}/${version}/${arch}`;
    const lookup = schematicLookup({ qemu: { systemExtensions: { officialExtensions: ["siderolabs/qemu-guest-agent"] } } });
    const r = await resolveProfileAssets(
      { version: "1.14.7", schematic: "qemu", arch: "auto", extraArgs: ["ip=dhcp"] },
      { clientArch: 7, configUrl: "http://h/c" },
      { service, lookup, log: silentLogger() },
    );
    expect(r.set).toEqual({ source: "factory", schematic: QEMU.id, version: "1.14.7", arch: "amd64" });
    expect(r.cmdline).toBe(`talos.platform=metal console=tty0 factory=${QEMU.id.slice(0, 8)}/1.14.7/amd64 ip=dhcp talos.config=http://h/c`);
    expect(r.installerImage).toBe(`factory.talos.dev/metal-installer/${QEMU.id}:v1.14.7`);
    expect(mirror.count(/^\/factory\/schematics$/)).toBe(1);
    // The command line was kept: the next boot needs no factory for it.
    mirror.cmdline = undefined;
    const again = await resolveProfileAssets({ version: "1.14.7", schematic: "qemu", arch: "amd64", extraArgs: [] }, {}, { service: newService(), lookup, log: silentLogger() });
    expect(again.cmdline).toBe(`talos.platform=metal console=tty0 factory=${QEMU.id.slice(0, 8)}/1.14.7/amd64`);
    // Files cached: no registration, no download on this boot path.
    expect(mirror.count(/^\/factory\/schematics$/)).toBe(1);
    expect(mirror.count(/^\/factory-cdn\//)).toBe(2);
  });

  it("import: with a sha256 list the files must match it; without one they are recorded as given", async () => {
    const src = tempDir("tnb-import-");
    const kernel = join(src, "vmlinuz-arm64");
    const initramfs = join(src, "my-initramfs.xz");
    writeFileSync(kernel, Buffer.from("kernel bytes"));
    writeFileSync(initramfs, Buffer.from("initramfs bytes"));
    const sums = join(src, "sha256sum.txt");
    writeFileSync(sums, `${sha("sha256", Buffer.from("kernel bytes"))}  vmlinuz-arm64\n${sha("sha256", Buffer.from("initramfs bytes"))}  initramfs-arm64.xz\n`);
    const cache = new AssetCache(dir, silentLogger());
    const v = parseTalosVersion("1.14.7");

    const checked = await importAssets(cache, { version: v, arch: "arm64", schematic: null, kernel, initramfs, sha256sums: sums }, silentLogger());
    expect(checked.map((e) => e.manifest.verifiedBy)).toEqual(["sha256sums", "sha256sums"]);
    expect(readFileSync(checked[1]!.path, "utf8")).toBe("initramfs bytes");

    const plain = await importAssets(cache, { version: v, arch: "amd64", schematic: QEMU.id, kernel, initramfs }, silentLogger());
    expect(plain.map((e) => e.manifest.verifiedBy)).toEqual(["unverified-import", "unverified-import"]);
    expect(plain[0]!.sha256).toBe(sha("sha256", Buffer.from("kernel bytes")));

    writeFileSync(sums, `${"0".repeat(64)}  vmlinuz-arm64\n${sha("sha256", Buffer.from("initramfs bytes"))}  initramfs-arm64.xz\n`);
    const err = await importAssets(cache, { version: parseTalosVersion("1.13.10"), arch: "arm64", schematic: null, kernel, initramfs, sha256sums: sums }, silentLogger()).catch(
      (e: unknown) => e,
    );
    expect((err as Error).message).toContain("0".repeat(64));
    expect((err as Error).message).toContain(sha("sha256", Buffer.from("kernel bytes")));
    expect((await cache.list()).filter((e) => e.key.version === "1.13.10")).toEqual([]);
    expect(filesUnder(cache.root).filter((f) => f.includes("1.13.10"))).toEqual([]);
    rmSync(src, { recursive: true, force: true });
  });

  it("an imported set serves a profile without any download", async () => {
    const src = tempDir("tnb-import-");
    writeFileSync(join(src, "k"), "k");
    writeFileSync(join(src, "i"), "i");
    await importAssets(service.cache, { version: parseTalosVersion("1.12.11"), arch: "amd64", schematic: null, kernel: join(src, "k"), initramfs: join(src, "i") }, silentLogger());
    const r = await resolveProfileAssets({ version: "1.12.11", arch: "amd64", extraArgs: [] }, {}, { service, lookup: schematicLookup({}), log: silentLogger() });
    expect(r.set.source).toBe("import");
    expect(readFileSync(r.kernelPath, "utf8")).toBe("k");
    expect(mirror.requests).toEqual([]);
    rmSync(src, { recursive: true, force: true });
  });

  it("gc: a dry run lists unreferenced sets and dead partial files and removes nothing; the real run removes exactly those", async () => {
    await service.ensurePair({ source: "release", schematic: null, version: "1.14.7", arch: "amd64" });
    await service.ensurePair({ source: "factory", schematic: QEMU.id, version: "1.14.7", arch: "amd64" });
    const cache = service.cache;
    const stale = `${cache.pathFor(release("kernel"))}.part-999-abcdef`;
    const live = `${cache.pathFor(release("kernel"))}.part-998-abcdef`;
    writeFileSync(stale, "partial");
    writeFileSync(live, "partial");
    const old = new Date(Date.now() - 2 * 3600_000);
    utimesSync(stale, old, old);
    const orphan = cache.pathFor({ ...release("kernel"), version: "1.13.10" });
    await import("node:fs/promises").then((fs) => fs.mkdir(join(orphan, ".."), { recursive: true }));
    writeFileSync(orphan, "no record");

    const refs = [{ schematic: null, version: "1.14.7", arch: "amd64" as const }];
    const before = filesUnder(cache.root);
    const plan = await planGc(cache, refs);
    expect(filesUnder(cache.root)).toEqual(before);
    const planned = plan.remove.map((i) => [i.path.slice(cache.root.length + 1), i.reason]).sort();
    expect(planned).toEqual(
      [
        [`factory/${QEMU.id}/1.14.7/amd64/initramfs`, "unreferenced"],
        [`factory/${QEMU.id}/1.14.7/amd64/initramfs.json`, "unreferenced"],
        [`factory/${QEMU.id}/1.14.7/amd64/kernel`, "unreferenced"],
        [`factory/${QEMU.id}/1.14.7/amd64/kernel.json`, "unreferenced"],
        ["release/_/1.13.10/amd64/kernel", "unreferenced"],
        ["release/_/1.14.7/amd64/kernel.part-999-abcdef", "unfinished download"],
      ].sort(),
    );
    await applyGc(plan);
    expect(filesUnder(cache.root)).toEqual(
      ["release/_/1.14.7/amd64/initramfs", "release/_/1.14.7/amd64/initramfs.json", "release/_/1.14.7/amd64/kernel", "release/_/1.14.7/amd64/kernel.json", "release/_/1.14.7/amd64/kernel.part-998-abcdef"].sort(),
    );
    expect((await cache.list()).map((e) => e.key.source)).toEqual(["release", "release"]);
  });
});

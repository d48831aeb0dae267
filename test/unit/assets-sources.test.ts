import { describe, expect, it } from "vitest";
import { parseChecksumList } from "../../src/assets/checksums.js";
import { factoryCmdlineUrl, factorySchematicsUrl, releaseChecksumUrls, upstreamUrl } from "../../src/assets/sources.js";
import { compareVersions, parseTalosVersion } from "../../src/assets/version.js";

const ID = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba";
const urls = { releasesUrl: "https://github.com/siderolabs/talos/releases/download", factoryUrl: "https://factory.talos.dev" };

describe("upstream URL shapes (DESIGN §4)", () => {
  it.each([
    ["release", null, "amd64", "kernel", "https://github.com/siderolabs/talos/releases/download/v1.14.7/vmlinuz-amd64"],
    ["release", null, "arm64", "initramfs", "https://github.com/siderolabs/talos/releases/download/v1.14.7/initramfs-arm64.xz"],
    ["factory", ID, "amd64", "kernel", `https://factory.talos.dev/image/${ID}/v1.14.7/kernel-amd64`],
    ["factory", ID, "arm64", "initramfs", `https://factory.talos.dev/image/${ID}/v1.14.7/initramfs-arm64.xz`],
  ] as const)("%s %s %s %s", (source, schematic, arch, file, url) => {
    expect(upstreamUrl({ source, schematic, version: "1.14.7", arch, file }, urls)).toBe(url);
  });

  it("imports have no upstream", () => {
    expect(upstreamUrl({ source: "import", schematic: null, version: "1.14.7", arch: "amd64", file: "kernel" }, urls)).toBeNull();
  });

  it("keeps a mirror's path prefix and drops trailing slashes", () => {
    const mirror = { releasesUrl: "http://mirror.lan/talos/releases/", factoryUrl: "http://mirror.lan/factory/" };
    expect(upstreamUrl({ source: "release", schematic: null, version: "1.9.6", arch: "amd64", file: "kernel" }, mirror)).toBe("http://mirror.lan/talos/releases/v1.9.6/vmlinuz-amd64");
    expect(releaseChecksumUrls(mirror.releasesUrl, "1.9.6")).toEqual({
      sha256: "http://mirror.lan/talos/releases/v1.9.6/sha256sum.txt",
      sha512: "http://mirror.lan/talos/releases/v1.9.6/sha512sum.txt",
    });
    expect(factoryCmdlineUrl(mirror.factoryUrl, ID, "1.9.6", "arm64")).toBe(`http://mirror.lan/factory/image/${ID}/v1.9.6/cmdline-metal-arm64`);
    expect(factorySchematicsUrl(mirror.factoryUrl)).toBe("http://mirror.lan/factory/schematics");
  });
});

describe("Talos versions", () => {
  it("accepts a leading v and needs the patch", () => {
    expect(parseTalosVersion("v1.14.7").text).toBe("1.14.7");
    expect(parseTalosVersion("1.14.7").text).toBe("1.14.7");
    expect(() => parseTalosVersion("1.14")).toThrow(/full Talos version/);
    expect(() => parseTalosVersion("1.8.3")).toThrow(/older than 1\.9\.0/);
  });

  it("orders pre-releases below the release", () => {
    expect(compareVersions("1.14.0-alpha.1", "1.14.0")).toBeLessThan(0);
    expect(compareVersions("1.14.0-alpha.2", "1.14.0-alpha.10")).toBeLessThan(0);
    expect(compareVersions("1.10.0", "1.9.6")).toBeGreaterThan(0);
  });
});

describe("checksum lists", () => {
  it("reads sha256sum/sha512sum lines, text or binary mode, by base name", () => {
    const a = "a".repeat(64);
    const b = "B".repeat(64);
    const text = `${a}  vmlinuz-amd64\n${b} *_out/initramfs-amd64.xz\n${"c".repeat(128)}  too-long\n\nnot a line\n`;
    const m = parseChecksumList(text, "sha256");
    expect([...m]).toEqual([
      ["vmlinuz-amd64", a],
      ["initramfs-amd64.xz", "b".repeat(64)],
    ]);
    expect(parseChecksumList(text, "sha512").get("too-long")).toBe("c".repeat(128));
  });
});

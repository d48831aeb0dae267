/**
 * The grub-mkimage network image: its argument list and cache key (pure),
 * and, where Debian's grub-efi-amd64-bin is installed, a real build, its
 * cache and its embedded prefix.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { GRUB_MODULES, buildGrubImage, grubHttpPrefix, grubImageKey, grubMkimageArgs } from "../../src/boot/grub-image.js";
import { buildBootloaderMap } from "../../src/boot/bootloaders.js";
import type { Booter } from "../../src/boot/booter.js";
import { loadTemplates } from "../../src/boot/templates.js";
import { BootUrls } from "../../src/boot/urls.js";
import { bootRoutes } from "../../src/http/boot-routes.js";
import type { UrlCache } from "../../src/boot/url-cache.js";
import { packageRoot } from "../../src/package-root.js";
import { silentLogger } from "../../src/log.js";
import { findOnPath, requireTool } from "../helpers/tools.js";

describe("grub-mkimage arguments", () => {
  it("builds an x86_64-efi image whose prefix is our HTTP URL, with the modules built in", () => {
    const args = grubMkimageArgs({ address: "192.0.2.5", httpPort: 8080, output: "/o/g.efi", embeddedConfig: "/o/e.cfg", moduleDir: "/m" });
    const opt = (flag: string) => args[args.indexOf(flag) + 1];
    expect(opt("-O")).toBe("x86_64-efi");
    expect(opt("-o")).toBe("/o/g.efi");
    expect(opt("-p")).toBe("(http,192.0.2.5:8080)/grub");
    expect(opt("-c")).toBe("/o/e.cfg");
    expect(opt("-d")).toBe("/m");
    // Modules come last, as positional arguments.
    expect(args.slice(-GRUB_MODULES.length)).toEqual([...GRUB_MODULES]);
    for (const m of ["efinet", "http", "normal", "configfile", "linux", "minicmd"]) expect(args).toContain(m);
  });

  it("puts IPv6 literals in brackets", () => {
    expect(grubHttpPrefix("fd77:77::1", 80)).toBe("(http,[fd77:77::1]:80)/grub");
  });

  it("keys the cache on address, port, grub-mkimage version and modules", () => {
    const base = { address: "192.0.2.5", httpPort: 8080, mkimageVersion: "grub-mkimage (GRUB) 2.06-13", moduleDir: "/m" };
    const k = grubImageKey(base);
    expect(k).toMatch(/^[0-9a-f]{16}$/);
    expect(grubImageKey({ ...base })).toBe(k);
    expect(grubImageKey({ ...base, mkimageVersion: `${base.mkimageVersion}\n` })).toBe(k);
    for (const changed of [
      { ...base, address: "192.0.2.6" },
      { ...base, httpPort: 8081 },
      { ...base, mkimageVersion: "grub-mkimage (GRUB) 2.12-1" },
      { ...base, modules: [...GRUB_MODULES, "gzio"] },
    ]) {
      expect(grubImageKey(changed)).not.toBe(k);
    }
  });
});

describe("buildGrubImage with a stand-in grub-mkimage", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "grub-image-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** A module dir with the .mod names and moddep.lst present, and a script that logs its calls and writes `-o`. */
  function fakes(opts: { fail?: boolean } = {}) {
    const moduleDir = join(dir, "mods");
    const calls = join(dir, "calls");
    const mkimage = join(dir, "grub-mkimage");
    mkdirSync(moduleDir);
    writeFileSync(join(moduleDir, "moddep.lst"), "");
    for (const m of GRUB_MODULES) writeFileSync(join(moduleDir, `${m}.mod`), "");
    writeFileSync(
      mkimage,
      [
        "#!/bin/sh",
        'if [ "$1" = --version ]; then echo "grub-mkimage (GRUB) test"; exit 0; fi',
        `echo "$*" >> ${calls}`,
        opts.fail ? "echo broken >&2; exit 3" : 'while [ $# -gt 0 ]; do if [ "$1" = -o ]; then printf MZ > "$2"; fi; shift; done',
        "",
      ].join("\n"),
    );
    chmodSync(mkimage, 0o755);
    const count = () => {
      try {
        return readFileSync(calls, "utf8").trim().split("\n").length;
      } catch {
        return 0;
      }
    };
    return { moduleDir, mkimage, count };
  }

  it.skipIf(!findOnPath("sh"))("builds once, then serves the cached image; a new address builds anew and removes the old", async () => {
    const f = fakes();
    const outDir = join(dir, "out");
    const o = { address: "192.0.2.5", httpPort: 8080, outDir, log: silentLogger(), moduleDir: f.moduleDir, mkimage: f.mkimage };
    const first = await buildGrubImage(o);
    expect(f.count()).toBe(1);
    expect(await buildGrubImage(o)).toBe(first);
    expect(f.count()).toBe(1);
    const second = await buildGrubImage({ ...o, address: "192.0.2.6" });
    expect(second).not.toBe(first);
    expect(f.count()).toBe(2);
    // No temporary files or stale images left behind.
    expect(readdirSync(outDir)).toEqual([second.slice(outDir.length + 1)]);
  });

  it.skipIf(!findOnPath("sh"))("a failing grub-mkimage rejects with its stderr and leaves nothing behind", async () => {
    const f = fakes({ fail: true });
    const outDir = join(dir, "out");
    await expect(buildGrubImage({ address: "192.0.2.5", httpPort: 8080, outDir, log: silentLogger(), moduleDir: f.moduleDir, mkimage: f.mkimage })).rejects.toThrow(/broken/);
    expect(readdirSync(outDir)).toEqual([]);
  });

  it("refuses when the modules are missing, naming the Debian package", async () => {
    await expect(buildGrubImage({ address: "192.0.2.5", httpPort: 8080, outDir: dir, log: silentLogger(), moduleDir: join(dir, "none") })).rejects.toThrow(
      /grub-efi-amd64-bin/,
    );
  });
});

describe("bootloaders.grubEfi: build", () => {
  it("serves the built image as grubnetx64.efi, without a warning", () => {
    const dir = mkdtempSync(join(tmpdir(), "grub-map-"));
    try {
      const image = join(dir, "grubnetx64-0123456789abcdef.efi");
      writeFileSync(image, "MZ");
      const map = buildBootloaderMap({ dir, grubEfi: "build", arm64Efi: null }, image);
      expect(map.files.get("grubnetx64.efi")).toBe(image);
      expect(map.warnings.filter((w) => w.includes("grubEfi"))).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("without a built image, warns and names what it serves instead", () => {
    const dir = mkdtempSync(join(tmpdir(), "grub-map-"));
    try {
      const map = buildBootloaderMap({ dir, grubEfi: "build", arm64Efi: null });
      expect(map.warnings.some((w) => w.includes('"build"') && w.includes("grub-efi-amd64-bin"))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("GET /grub/grub.cfg (the built image's $prefix/grub.cfg)", () => {
  const templates = loadTemplates(join(packageRoot(), "boot-templates"));
  const app = bootRoutes({
    booter: { urls: new BootUrls("192.0.2.5", 8080) } as unknown as Booter,
    urlCache: {} as UrlCache,
    bootloaderFiles: () => new Map(),
    templates: () => templates,
    log: silentLogger(),
  });

  for (const path of ["/grub/grub.cfg", "/grub/x86_64-efi/grub.cfg"]) {
    it(`${path} chains to the per-MAC config over HTTP, by GRUB's $net_default_mac`, async () => {
      const res = await app.request(path);
      expect(res.status).toBe(200);
      const body = await res.text();
      expect(res.headers.get("content-length")).toBe(String(Buffer.byteLength(body)));
      expect(body).toMatch(/^configfile \(http,192\.0\.2\.5:8080\)\/boot\/\$\{net_default_mac\}\/grub\.cfg$/m);
      expect(body).not.toContain("{{");
    });
  }

  it("other names under /grub are not found", async () => {
    expect((await app.request("/grub/x86_64-efi/command.lst")).status).toBe(404);
  });
});

const haveGrub = requireTool("grub-mkimage", "grub-efi-amd64-bin");
describe.skipIf(!haveGrub)("buildGrubImage with Debian's grub-mkimage", () => {
  it("writes a PE image with our prefix embedded, and reuses it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "grub-real-"));
    try {
      const o = { address: "192.0.2.44", httpPort: 8123, outDir: dir, log: silentLogger() };
      const path = await buildGrubImage(o);
      const bytes = readFileSync(path);
      expect(bytes.subarray(0, 2).toString("latin1")).toBe("MZ");
      expect(bytes.includes(Buffer.from("(http,192.0.2.44:8123)/grub"))).toBe(true);
      expect(bytes.includes(Buffer.from("net_bootp"))).toBe(true);
      const mtime = statSync(path).mtimeMs;
      expect(await buildGrubImage(o)).toBe(path);
      expect(statSync(path).mtimeMs).toBe(mtime);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

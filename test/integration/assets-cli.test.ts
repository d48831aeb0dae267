import { Command } from "commander";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registerAssetCommands, type AssetCliConfig } from "../../src/assets/cli.js";
import { silentLogger } from "../../src/log.js";
import { FakeTalosMirror } from "../helpers/fake-talos-mirror.js";
import { tempDir } from "../helpers/fixtures.js";
import { SCHEMATIC_VECTORS } from "../helpers/schematic-vectors.js";

const QEMU = SCHEMATIC_VECTORS[1]!;

describe("talos-netboot assets … (against a stand-in mirror)", () => {
  const mirror = new FakeTalosMirror();
  let stateDir: string;
  let config: AssetCliConfig;

  beforeAll(async () => {
    await mirror.start();
    stateDir = tempDir("tnb-assets-cli-");
    config = {
      stateDir,
      talos: { releasesUrl: mirror.releasesUrl, factoryUrl: mirror.factoryUrl },
      profiles: { workers: { talos: { version: "1.14.7", schematic: QEMU.id, arch: "amd64", extraArgs: [] } } },
    };
  });
  afterAll(async () => {
    await mirror.stop();
    rmSync(stateDir, { recursive: true, force: true });
  });

  /** Runs one command line; answers its exit status and output. */
  async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
    let out = "";
    let err = "";
    let code = -1;
    const program = new Command().exitOverride().configureOutput({ writeOut: (s) => (out += s), writeErr: (s) => (err += s) });
    registerAssetCommands(program, {
      stdout: { write: (s: string) => (out += s), isTTY: false },
      stderr: { write: (s: string) => (err += s), isTTY: false },
      exit: (c) => (code = c),
      loadConfig: () => config,
      log: silentLogger(),
      tuning: { retryDelayMs: 0 },
    });
    try {
      await program.parseAsync(["node", "talos-netboot", ...args]);
    } catch (e) {
      code = (e as { exitCode?: number }).exitCode ?? 1;
    }
    return { code, out, err };
  }

  it("fetch --extensions leaves a verified kernel and initramfs in the cache (the issue's 'done when')", async () => {
    const r = await cli("assets", "fetch", "--version", "1.14.7", "--arch", "amd64", "--extensions", "siderolabs/qemu-guest-agent");
    expect(r.err).not.toMatch(/talos-netboot:/);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`schematic ${QEMU.id}`);
    expect(r.out).toContain(`installer factory.talos.dev/metal-installer/${QEMU.id}:v1.14.7`);
    // Plain progress lines when stderr is not a terminal.
    expect(r.err).toMatch(/Talos 1\.14\.7 amd64 {2}.*100%/);

    const list = await cli("assets", "list", "--json");
    expect(list.code).toBe(0);
    const entries = JSON.parse(list.out) as Array<Record<string, unknown>>;
    expect(entries).toHaveLength(2);
    for (const e of entries) {
      expect(Object.keys(e).sort()).toEqual(["arch", "file", "path", "schematic", "sha256", "size", "source", "version"]);
      const name = e.file === "kernel" ? "kernel-amd64" : "initramfs-amd64.xz";
      const bytes = mirror.bytes("factory", "1.14.7", name, QEMU.id);
      expect(e).toMatchObject({ source: "factory", version: "1.14.7", arch: "amd64", schematic: QEMU.id, size: bytes.length });
      expect(e.sha256).toBe(createHash("sha256").update(bytes).digest("hex"));
      expect(readFileSync(e.path as string).equals(bytes)).toBe(true);
    }
  });

  it("fetch without a schematic takes the release files; versions may carry a v", async () => {
    const r = await cli("assets", "fetch", "--version", "v1.13.10", "--arch", "arm64");
    expect(r.code).toBe(0);
    expect(r.out).toContain("installer ghcr.io/siderolabs/installer:v1.13.10");
  });

  it("exits non-zero with one line on failure", async () => {
    for (const args of [
      ["--version", "1.14", "--arch", "amd64"],
      ["--version", "1.14.7", "--arch", "x86"],
      ["--version", "1.14.7", "--arch", "amd64", "--schematic", "no-such-name"],
    ]) {
      const r = await cli("assets", "fetch", ...args);
      expect(r.code).toBe(1);
      expect(r.err.trim().split("\n")).toHaveLength(1);
      expect(r.err).toMatch(/^talos-netboot: /);
    }
    mirror.corruptNext(/vmlinuz-amd64$/, 1);
    const bad = await cli("assets", "fetch", "--version", "1.12.11", "--arch", "amd64");
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/talos-netboot: .*sha512 mismatch — expected [0-9a-f]{128} .*got [0-9a-f]{128}/);
  });

  it("import with and without --sha256sums, then verify", async () => {
    const src = tempDir("tnb-import-");
    writeFileSync(join(src, "vmlinuz-amd64"), "kernel");
    writeFileSync(join(src, "initramfs-amd64.xz"), "initramfs");
    const sum = (s: string) => createHash("sha256").update(s).digest("hex");
    writeFileSync(join(src, "sha256sum.txt"), `${sum("kernel")}  vmlinuz-amd64\n${sum("initramfs")}  initramfs-amd64.xz\n`);
    const args = ["--arch", "amd64", "--kernel", join(src, "vmlinuz-amd64"), "--initramfs", join(src, "initramfs-amd64.xz")];
    const checked = await cli("assets", "import", "--version", "1.11.6", ...args, "--sha256sums", join(src, "sha256sum.txt"));
    expect(checked.code).toBe(0);
    const plain = await cli("assets", "import", "--version", "1.10.9", ...args);
    expect(plain.code).toBe(0);
    expect(plain.out).toContain(`sha256:${sum("kernel")}`);
    expect(plain.out).toContain("no --sha256sums");

    const verify = await cli("assets", "verify");
    expect(verify.code).toBe(0);
    expect(verify.out).not.toContain("FAIL");
    const imported = (JSON.parse((await cli("assets", "list", "--json")).out) as Array<{ source: string; path: string; version: string }>).filter((e) => e.source === "import");
    expect(imported.map((e) => e.version).sort()).toEqual(["1.10.9", "1.10.9", "1.11.6", "1.11.6"]);

    writeFileSync(imported[0]!.path, "tampered!");
    const failed = await cli("assets", "verify");
    expect(failed.code).toBe(1);
    expect(failed.out).toMatch(/FAIL {2}import/);
    rmSync(src, { recursive: true, force: true });
  });

  it("gc is a dry run unless --yes, and keeps what the profiles reference", async () => {
    const before = JSON.parse((await cli("assets", "list", "--json")).out) as Array<{ path: string; schematic: string | null }>;
    const dry = await cli("assets", "gc");
    expect(dry.code).toBe(0);
    expect(dry.out).toMatch(/dry run: \d+ file\(s\)/);
    for (const e of before) expect(existsSync(e.path)).toBe(true);

    const refused = await cli("assets", "gc", "--yes");
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/gc --yes needs --config/);
    const real = await cli("assets", "gc", "--yes", "--config", "/etc/talos-netboot.yaml");
    expect(real.code).toBe(0);
    const after = JSON.parse((await cli("assets", "list", "--json")).out) as Array<{ schematic: string | null; version: string }>;
    expect(after.map((e) => [e.schematic, e.version])).toEqual([
      [QEMU.id, "1.14.7"],
      [QEMU.id, "1.14.7"],
    ]);
  });
});

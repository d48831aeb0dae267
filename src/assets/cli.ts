import type { Command } from "commander";
import type { Logger } from "pino";
import { ConfigError, loadConfigFile, loadEmbeddedDefault } from "../config/load.js";
import { createLogger } from "../log.js";
import { SchematicStore, ASSETS_FAMILY } from "../store/assets.js";
import { openDatabase } from "../store/db.js";
import { entryJson } from "./cache.js";
import { assetSettingsFrom, type TalosConfig } from "./config.js";
import { fetchAssets } from "./fetch.js";
import { applyGc, planGc, type AssetReference } from "./gc.js";
import { importAssets } from "./import.js";
import { schematicLookup, type SchematicLookup, type TalosProfile } from "./profile.js";
import { formatBytes, pairProgress, ProgressReporter } from "./progress.js";
import { isSchematicId } from "./schematic.js";
import { AssetService, type DownloadTuning } from "./service.js";
import { ARCHES, AssetError, type Arch } from "./types.js";
import { parseTalosVersion } from "./version.js";

/** What the asset commands read from a config. */
export interface AssetCliConfig {
  stateDir: string;
  cacheDir?: string;
  talos?: Partial<TalosConfig>;
  profiles: Record<string, { talos?: TalosProfile }>;
}

export interface AssetCliIo {
  stdout: { write(text: string): unknown; isTTY?: boolean };
  stderr: { write(text: string): unknown; isTTY?: boolean };
  /** Sets the process's exit status (tests capture it). */
  exit: (code: number) => void;
  /** Loads `--config` (or the embedded default); tests inject configs. */
  loadConfig: (path: string | undefined) => AssetCliConfig;
  log?: Logger;
  tuning?: DownloadTuning;
}

/** A placeholder interface so the embedded default loads on multi-homed hosts: asset commands never use server.address. */
const PLACEHOLDER_INTERFACES = {
  "assets-cli": [{ address: "127.0.0.1", netmask: "255.0.0.0", family: "IPv4" as const, mac: "00:00:00:00:00:00", internal: false, cidr: "127.0.0.1/8" }],
};

function defaultLoadConfig(path: string | undefined): AssetCliConfig {
  const cfg = path ? loadConfigFile(path, { checkFiles: false }) : loadEmbeddedDefault({ interfaces: PLACEHOLDER_INTERFACES });
  return cfg as unknown as AssetCliConfig;
}

function processIo(): AssetCliIo {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    exit: (code) => {
      process.exitCode = code;
    },
    loadConfig: defaultLoadConfig,
  };
}

const oneLine = (s: string) => s.replace(/\s*\n\s*/g, "; ");

function parseArch(s: string): Arch {
  if ((ARCHES as readonly string[]).includes(s)) return s as Arch;
  throw new AssetError("INVALID", `--arch: expected ${ARCHES.join(" or ")}, got '${s}'`);
}

interface Context {
  config: AssetCliConfig;
  service: AssetService;
  log: Logger;
  lookup: SchematicLookup;
  close: () => void;
}

/**
 * `talos-netboot assets fetch|list|import|verify|gc`. Every failure is one
 * line on stderr and a non-zero exit.
 */
export function registerAssetCommands(program: Command, io: AssetCliIo = processIo()): void {
  const assets = program.command("assets").description("Talos kernels and initramfs: fetch, list, import, verify, gc");

  const context = (configPath: string | undefined): Context => {
    const config = io.loadConfig(configPath);
    const settings = assetSettingsFrom(config);
    const log = io.log ?? createLogger("warn", { pretty: false });
    let db: ReturnType<typeof openDatabase> | undefined;
    let store: SchematicStore | undefined;
    const storeView = {
      get: (name: string) => {
        db ??= openDatabase(config.stateDir, [ASSETS_FAMILY]);
        store ??= new SchematicStore(db);
        return store.get(name);
      },
      byId: (id: string) => {
        db ??= openDatabase(config.stateDir, [ASSETS_FAMILY]);
        store ??= new SchematicStore(db);
        return store.byId(id);
      },
    };
    // Names not in the config file live in the database: opened only when one is asked for.
    const lookup = schematicLookup(settings.schematics, storeView);
    return { config, service: new AssetService(settings, log, io.tuning), log, lookup, close: () => db?.close() };
  };

  const run =
    <A extends unknown[]>(fn: (...args: A) => Promise<number | void>) =>
    async (...args: A): Promise<void> => {
      try {
        io.exit((await fn(...args)) ?? 0);
      } catch (err) {
        const known = err instanceof AssetError || err instanceof ConfigError;
        io.stderr.write(`talos-netboot: ${oneLine(known ? err.message : `unexpected error: ${(err as Error).message}`)}\n`);
        io.exit(1);
      }
    };

  assets
    .command("fetch")
    .description("download and verify a Talos kernel and initramfs into the cache")
    .requiredOption("--version <version>", "full Talos version, e.g. 1.14.7 (leading v optional)")
    .requiredOption("--arch <arch>", "amd64 or arm64")
    .option("--extensions <list>", "official extensions, comma-separated (a schematic made of them)")
    .option("--schematic <id-or-name>", "a schematic ID, or a name from talos.schematics / the API")
    .option("-c, --config <file>", "YAML config file (default: the embedded default)")
    .action(
      run(async (opts: { version: string; arch: string; extensions?: string; schematic?: string; config?: string }) => {
        const arch = parseArch(opts.arch);
        const ctx = context(opts.config);
        try {
          const extensions = opts.extensions?.split(",").map((e) => e.trim()).filter(Boolean);
          const bar = new ProgressReporter(io.stderr, `Talos ${parseTalosVersion(opts.version).text} ${arch}`);
          const outcome = await fetchAssets(
            { version: opts.version, arch, ...(opts.schematic !== undefined ? { schematic: opts.schematic } : {}), ...(extensions ? { extensions } : {}) },
            ctx,
            { onProgress: pairProgress((bytes, total) => bar.update(bytes, total)) },
          );
          bar.done();
          for (const e of [outcome.pair.kernel, outcome.pair.initramfs]) {
            io.stdout.write(`${e.key.file.padEnd(9)} ${e.path}  sha256:${e.sha256}  ${formatBytes(e.size)}\n`);
          }
          if (outcome.set.schematic) io.stdout.write(`schematic ${outcome.set.schematic}\n`);
          io.stdout.write(`installer ${outcome.installerImage}\n`);
        } finally {
          ctx.close();
        }
      }),
    );

  assets
    .command("list")
    .description("list verified cache entries")
    .option("--json", "print a JSON array")
    .option("-c, --config <file>", "YAML config file (default: the embedded default)")
    .action(
      run(async (opts: { json?: boolean; config?: string }) => {
        const ctx = context(opts.config);
        const entries = (await ctx.service.cache.list()).map(entryJson);
        if (opts.json) {
          io.stdout.write(`${JSON.stringify(entries, null, 2)}\n`);
          return;
        }
        if (entries.length === 0) io.stdout.write(`no Talos boot files in ${ctx.service.cache.root}\n`);
        for (const e of entries) {
          io.stdout.write(`${e.source.padEnd(8)} ${e.version.padEnd(10)} ${e.arch} ${e.file.padEnd(9)} ${(e.schematic ?? "-").slice(0, 12).padEnd(12)} ${formatBytes(e.size).padStart(10)}  ${e.path}\n`);
        }
      }),
    );

  assets
    .command("import")
    .description("add a kernel and initramfs carried in by hand (air-gapped sites)")
    .requiredOption("--version <version>", "full Talos version, e.g. 1.14.7")
    .requiredOption("--arch <arch>", "amd64 or arm64")
    .option("--schematic <id>", "the schematic the files were built with (omit for release files)")
    .requiredOption("--kernel <file>", "the kernel (vmlinuz-<arch> or kernel-<arch>)")
    .requiredOption("--initramfs <file>", "the initramfs (initramfs-<arch>.xz)")
    .option("--sha256sums <file>", "a sha256sum list to check both files against")
    .option("-c, --config <file>", "YAML config file (default: the embedded default)")
    .action(
      run(async (opts: { version: string; arch: string; schematic?: string; kernel: string; initramfs: string; sha256sums?: string; config?: string }) => {
        const version = parseTalosVersion(opts.version);
        const arch = parseArch(opts.arch);
        const ctx = context(opts.config);
        try {
          let schematic: string | null = null;
          if (opts.schematic !== undefined) {
            const found = isSchematicId(opts.schematic) ? { id: opts.schematic } : ctx.lookup(opts.schematic);
            if (!found) throw new AssetError("INVALID", `--schematic: '${opts.schematic}' is neither a 64-hex ID nor a known schematic name`);
            schematic = found.id;
          }
          const entries = await importAssets(
            ctx.service.cache,
            { version, arch, schematic, kernel: opts.kernel, initramfs: opts.initramfs, ...(opts.sha256sums ? { sha256sums: opts.sha256sums } : {}) },
            ctx.log,
          );
          for (const e of entries) io.stdout.write(`imported ${e.key.file.padEnd(9)} ${e.path}  sha256:${e.sha256}\n`);
          if (!opts.sha256sums) io.stdout.write("no --sha256sums: compare the sha256 values above with the published ones\n");
        } finally {
          ctx.close();
        }
      }),
    );

  assets
    .command("verify")
    .description("re-hash every cached file against its record")
    .option("-c, --config <file>", "YAML config file (default: the embedded default)")
    .action(
      run(async (opts: { config?: string }) => {
        const ctx = context(opts.config);
        let bad = 0;
        for (const r of await ctx.service.cache.records()) {
          const v = await ctx.service.cache.verify(r.key);
          const label = `${r.key.source} ${r.key.version} ${r.key.arch} ${r.key.file}${r.key.schematic ? ` ${r.key.schematic.slice(0, 12)}` : ""}`;
          if (v.ok) io.stdout.write(`ok    ${label}\n`);
          else {
            bad++;
            io.stdout.write(`FAIL  ${label}: ${v.problem}\n`);
          }
        }
        if (bad > 0) {
          io.stderr.write(`talos-netboot: ${bad} cached file${bad === 1 ? "" : "s"} failed verification\n`);
          return 1;
        }
      }),
    );

  assets
    .command("gc")
    .description("remove cached files no profile references (a dry run unless --yes)")
    .option("--yes", "remove them")
    .option("-c, --config <file>", "YAML config file (default: the embedded default)")
    .action(
      run(async (opts: { yes?: boolean; config?: string }) => {
        if (opts.yes && opts.config === undefined) {
          // The embedded default has no profiles: everything would look unreferenced.
          throw new AssetError("INVALID", "gc --yes needs --config (the daemon's config file): without its profiles every cached file looks unreferenced");
        }
        const ctx = context(opts.config);
        try {
          const refs = profileReferences(ctx.config.profiles, ctx.lookup);
          const plan = await planGc(ctx.service.cache, refs);
          for (const item of plan.remove) io.stdout.write(`${opts.yes ? "remove" : "would remove"}  ${item.path}  (${item.reason}, ${formatBytes(item.bytes)})\n`);
          if (!opts.yes) {
            io.stdout.write(`dry run: ${plan.remove.length} file(s), ${formatBytes(plan.bytes)}; run again with --yes to remove them\n`);
            return;
          }
          const done = await applyGc(plan);
          io.stdout.write(`removed ${done.removed} file(s), ${formatBytes(done.bytes)}\n`);
        } finally {
          ctx.close();
        }
      }),
    );
}

/**
 * What the config's Talos profiles reference; `arch: auto` keeps both.
 * A schematic name that cannot be resolved stops the collection: guessing
 * could delete what a profile needs.
 */
export function profileReferences(profiles: AssetCliConfig["profiles"], lookup: SchematicLookup): AssetReference[] {
  const refs: AssetReference[] = [];
  for (const [name, p] of Object.entries(profiles)) {
    if (!p.talos) continue;
    let schematic: string | null = null;
    if (p.talos.schematic !== undefined) {
      const found = lookup(p.talos.schematic);
      if (!found) throw new AssetError("INVALID", `profiles.${name}.talos.schematic: no schematic '${p.talos.schematic}'; not collecting anything`);
      schematic = found.id;
    }
    const version = parseTalosVersion(p.talos.version).text;
    const arches: Arch[] = p.talos.arch === "auto" ? [...ARCHES] : [p.talos.arch];
    for (const arch of arches) refs.push({ schematic, version, arch });
  }
  return refs;
}

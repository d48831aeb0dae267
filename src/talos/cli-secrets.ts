/**
 * `talos-netboot gen secrets`: as `talosctl gen secrets`, a new bundle in
 * talosctl's secrets.yaml format, mode 0600, never silently overwriting.
 */
import type { Command } from "commander";
import { constants, promises as fs } from "node:fs";
import { basename, dirname, join } from "node:path";
import { randomBytes } from "node:crypto";
import { genCommand } from "./cli-gen.js";
import { generateSecrets } from "./secrets.js";
import { writeSecretsYaml } from "./secrets-yaml.js";

/**
 * Writes `data` to `path` with mode 0600. Without `force` an existing file is
 * an error (checked atomically by O_EXCL); with it the file is replaced by a
 * rename, so the old mode never carries over and a reader never sees half.
 */
export async function writeSecretFile(path: string, data: string, force: boolean): Promise<void> {
  // Like talosctl: the output directory is created when missing (owner-only).
  await fs.mkdir(dirname(path), { recursive: true, mode: 0o700 });
  if (!force) {
    let handle;
    try {
      handle = await fs.open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") {
        throw new Error(`file "${path}" already exists, use --force to overwrite`);
      }
      throw err;
    }
    try {
      await handle.writeFile(data);
    } finally {
      await handle.close();
    }
    return;
  }
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  try {
    await fs.writeFile(tmp, data, { mode: 0o600, flag: "wx" });
    await fs.rename(tmp, path);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await fs.lstat(path);
    return true;
  } catch {
    return false;
  }
}

export function registerSecretsCommands(program: Command): void {
  genCommand(program)
    .command("secrets")
    .description("generate a cluster secrets bundle (talosctl's secrets.yaml format; mode 0600)")
    .option("-o, --output-file <file>", 'output file, or "-" for stdout', "secrets.yaml")
    .option("-f, --force", "overwrite an existing file", false)
    .option("--talos-version <version>", "Talos version the bundle is for (e.g. 1.14); default: the current contract")
    .action(async function (this: Command, opts: { outputFile: string; force: boolean; talosVersion?: string }) {
      try {
        // Fail before spending a second on the RSA key; O_EXCL still guards the race.
        if (opts.outputFile !== "-" && !opts.force && (await exists(opts.outputFile))) {
          throw new Error(`file "${opts.outputFile}" already exists, use --force to overwrite`);
        }
        const bundle = await generateSecrets({ versionContract: opts.talosVersion });
        const text = writeSecretsYaml(bundle);
        if (opts.outputFile === "-") process.stdout.write(text);
        else await writeSecretFile(opts.outputFile, text, opts.force);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        this.error(`talos-netboot: ${message}`, { exitCode: 1 });
      }
    });
}

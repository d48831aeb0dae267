/**
 * `talos-netboot gen config`: as `talosctl gen config`, controlplane.yaml,
 * worker.yaml and talosconfig for a cluster, from a secrets bundle given with
 * --with-secrets or made on the spot. Differences from talosctl, on purpose:
 * the Kubernetes version and installer image default per Talos version
 * contract (talosctl takes them from its own binary), and all three files
 * are written 0600 (they hold keys).
 */
import type { Command } from "commander";
import { promises as fs } from "node:fs";
import { join } from "node:path";
import { genCommand } from "./cli-gen.js";
import { writeSecretFile } from "./cli-secrets.js";
import { installerImage } from "./contracts/index.js";
import { stringifyDocuments } from "./document.js";
import { generateConfigs, secretsInputFromBundle, type GenerateOptions } from "./generate.js";
import { applyPatches, parsePatch, type Patch } from "./patch.js";
import { generateSecrets, type SecretsBundle } from "./secrets.js";
import { readSecretsYaml } from "./secrets-yaml.js";
import { makeTalosconfig } from "./talosconfig.js";
import { parseTalosVersion } from "./version.js";

export const DEFAULT_INSTALL_DISK = "/dev/sda";

export interface GenConfigArgs {
  readonly clusterName: string;
  readonly endpoint: string;
  readonly outputDir: string;
  readonly withSecrets?: string;
  readonly talosVersion?: string;
  readonly kubernetesVersion?: string;
  /** Patch arguments as given: `@file` or inline YAML/JSON. */
  readonly configPatch?: readonly string[];
  readonly configPatchControlPlane?: readonly string[];
  readonly configPatchWorker?: readonly string[];
  readonly additionalSANs?: readonly string[];
  readonly dnsDomain?: string;
  readonly installDisk?: string;
  readonly installImage?: string;
  /** `host=url` pairs; several for one host add endpoints in order. */
  readonly registryMirrors?: readonly string[];
  readonly force?: boolean;
}

export interface GenConfigResult {
  readonly files: string[];
  readonly warnings: string[];
}

export class GenConfigError extends Error {
  override name = "GenConfigError";
}

function registryMirrors(specs: readonly string[]): Record<string, string[]> | undefined {
  if (specs.length === 0) return undefined;
  const mirrors: Record<string, string[]> = {};
  for (const spec of specs) {
    const at = spec.indexOf("=");
    if (at <= 0 || at === spec.length - 1) throw new GenConfigError(`invalid registry mirror "${spec}": expected <registry host>=<mirror URL>`);
    (mirrors[spec.slice(0, at)] ??= []).push(spec.slice(at + 1));
  }
  return mirrors;
}

async function loadPatches(args: readonly string[] | undefined): Promise<Patch[]> {
  const patches: Patch[] = [];
  for (const arg of args ?? []) {
    if (arg.startsWith("@")) {
      const path = arg.slice(1);
      let text: string;
      try {
        text = await fs.readFile(path, "utf8");
      } catch (err) {
        throw new GenConfigError(`cannot read patch file "${path}": ${(err as Error).message}`);
      }
      patches.push(parsePatch(text, arg));
    } else {
      patches.push(parsePatch(arg, `patch "${arg.length > 40 ? `${arg.slice(0, 40)}…` : arg}"`));
    }
  }
  return patches;
}

async function refuseExisting(paths: readonly string[]): Promise<void> {
  for (const path of paths) {
    try {
      await fs.lstat(path);
    } catch {
      continue;
    }
    throw new GenConfigError(`file "${path}" already exists, use --force to overwrite`);
  }
}

/**
 * Generates and writes the three files. Every input is checked and every
 * patch applied before the first file is written, so a bad patch or an
 * existing file leaves the directory as it was.
 */
export async function genConfig(args: GenConfigArgs): Promise<GenConfigResult> {
  const talos = parseTalosVersion(args.talosVersion);
  const { contract } = talos;
  const files = ["controlplane.yaml", "worker.yaml", "talosconfig"].map((f) => join(args.outputDir, f));
  if (!args.force) await refuseExisting(files);

  const patches = await loadPatches(args.configPatch);
  const cpPatches = await loadPatches(args.configPatchControlPlane);
  const workerPatches = await loadPatches(args.configPatchWorker);

  let bundle: SecretsBundle;
  if (args.withSecrets !== undefined) {
    let text: string;
    try {
      text = await fs.readFile(args.withSecrets, "utf8");
    } catch (err) {
      throw new GenConfigError(`cannot read secrets bundle "${args.withSecrets}": ${(err as Error).message}`);
    }
    bundle = readSecretsYaml(text);
  } else {
    bundle = await generateSecrets({ versionContract: contract.version });
  }

  const options: GenerateOptions = {
    installDisk: args.installDisk ?? DEFAULT_INSTALL_DISK,
    installImage: args.installImage ?? installerImage(contract, talos.version),
    ...(args.additionalSANs?.length ? { additionalSANs: [...args.additionalSANs] } : {}),
    ...(args.dnsDomain !== undefined ? { dnsDomain: args.dnsDomain } : {}),
    ...(args.registryMirrors?.length ? { registryMirrors: registryMirrors(args.registryMirrors) } : {}),
  };
  const generated = generateConfigs({
    clusterName: args.clusterName,
    endpoint: args.endpoint,
    kubernetesVersion: args.kubernetesVersion,
    contract,
    secrets: secretsInputFromBundle(bundle),
    options,
  });
  // As talosctl's bundle: the common patches first, then the role's own.
  const controlplane = applyPatches(generated.controlplane, [...patches, ...cpPatches], { contract });
  const worker = applyPatches(generated.worker, [...patches, ...workerPatches], { contract });
  const talosconfig = await makeTalosconfig({ clusterName: args.clusterName, endpoints: [], secrets: bundle });

  await fs.mkdir(args.outputDir, { recursive: true });
  const texts = [stringifyDocuments(controlplane), stringifyDocuments(worker), talosconfig];
  for (const [i, path] of files.entries()) await writeSecretFile(path, texts[i]!, args.force ?? false);
  return { files, warnings: generated.warnings };
}

function list(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(",").map((s) => s.trim()).filter((s) => s !== "")];
}

function repeat(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

interface Flags {
  output: string;
  withSecrets?: string;
  talosVersion?: string;
  kubernetesVersion?: string;
  configPatch?: string[];
  configPatchControlPlane?: string[];
  configPatchWorker?: string[];
  additionalSans?: string[];
  dnsDomain?: string;
  installDisk: string;
  installImage?: string;
  registryMirror?: string[];
  force: boolean;
}

/** Adds `gen config` to the `gen` group (created on `program` when not given). */
export function registerConfigCommands(program: Command, gen: Command = genCommand(program)): void {
  gen
    .command("config")
    .description("generate controlplane.yaml, worker.yaml and talosconfig for a cluster (as talosctl gen config)")
    .argument("<cluster>", "cluster name")
    .argument("<endpoint>", "Kubernetes API endpoint, https://<host>:<port>")
    .option("-o, --output <dir>", "directory for the three files", ".")
    .option("--with-secrets <file>", "use this secrets bundle (talosctl's secrets.yaml format) instead of a new one")
    .option("--talos-version <version>", "Talos version to generate for (1.14, v1.14.7); default: the newest supported")
    .option("--kubernetes-version <version>", "Kubernetes version; default: the Talos version's default")
    .option("--config-patch <patch>", "patch for both configs, @file or inline (repeatable)", repeat)
    .option("--config-patch-control-plane <patch>", "patch for controlplane.yaml (repeatable)", repeat)
    .option("--config-patch-worker <patch>", "patch for worker.yaml (repeatable)", repeat)
    .option("--additional-sans <names>", "extra API server certificate SANs, comma-separated", list)
    .option("--dns-domain <domain>", "cluster DNS domain", "cluster.local")
    .option("--install-disk <device>", "disk to install to", DEFAULT_INSTALL_DISK)
    .option("--install-image <image>", "installer image; default: the Talos version's installer")
    .option("--registry-mirror <host=url>", "registry mirror (repeatable, or comma-separated)", list)
    .option("-f, --force", "overwrite existing files", false)
    .action(async function (this: Command, cluster: string, endpoint: string, flags: Flags) {
      try {
        const result = await genConfig({
          clusterName: cluster,
          endpoint,
          outputDir: flags.output,
          withSecrets: flags.withSecrets,
          talosVersion: flags.talosVersion,
          kubernetesVersion: flags.kubernetesVersion,
          configPatch: flags.configPatch,
          configPatchControlPlane: flags.configPatchControlPlane,
          configPatchWorker: flags.configPatchWorker,
          additionalSANs: flags.additionalSans,
          dnsDomain: flags.dnsDomain,
          installDisk: flags.installDisk,
          installImage: flags.installImage,
          registryMirrors: flags.registryMirror,
          force: flags.force,
        });
        for (const w of result.warnings) process.stderr.write(`warning: ${w}\n`);
        for (const f of result.files) process.stderr.write(`created ${f}\n`);
      } catch (err) {
        this.error(`talos-netboot: ${err instanceof Error ? err.message : String(err)}`, { exitCode: 1 });
      }
    });
}

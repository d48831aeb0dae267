/**
 * `talos-netboot validate --config FILE --mode metal`: talosctl's
 * `validate`, with our checks. `--config` is a machine config (as in
 * talosctl). Exit 0 when valid (warnings are printed), 1 listing every
 * problem.
 */
import { readFileSync } from "node:fs";
import { Option, type Command } from "commander";
import { DocumentError, parseDocuments } from "./document.js";
import { formatProblems, RUNTIME_MODES, validateConfig, type RuntimeMode } from "./validate.js";
import { parseTalosVersion, VersionError } from "./version.js";

export interface ValidateCliOptions {
  readonly config: string;
  readonly mode: RuntimeMode;
  readonly talosVersion?: string;
  readonly schema?: string;
  readonly strict?: boolean;
}

export interface CliIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly readFile: (path: string) => string;
  /** Sets the exit status (the process ends once its output is flushed). */
  readonly exit: (code: number) => void;
}

const processIo: CliIo = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  readFile: (path) => readFileSync(path, "utf8"),
  exit: (code) => {
    process.exitCode = code;
  },
};

/** Runs the command; returns the exit code. */
export function runValidate(opts: ValidateCliOptions, io: CliIo = processIo): number {
  const fail = (message: string) => {
    io.err(`talos-netboot validate: ${message}\n`);
    return 1;
  };
  let contract;
  try {
    contract = parseTalosVersion(opts.talosVersion).contract;
  } catch (err) {
    if (err instanceof VersionError) return fail(err.message);
    throw err;
  }
  let docs;
  try {
    docs = parseDocuments(io.readFile(opts.config));
  } catch (err) {
    if (err instanceof DocumentError) return fail(`${opts.config}: ${err.message}`);
    return fail(`cannot read ${opts.config}: ${(err as Error).message}`);
  }
  if (docs.length === 0) return fail(`${opts.config}: no documents: a machine config needs at least the v1alpha1 document`);
  let schema: Record<string, unknown> | undefined;
  if (opts.schema !== undefined) {
    try {
      schema = JSON.parse(io.readFile(opts.schema)) as Record<string, unknown>;
    } catch (err) {
      return fail(`cannot read the schema ${opts.schema}: ${(err as Error).message}`);
    }
  }
  let result;
  try {
    result = validateConfig(docs, { contract, mode: opts.mode, ...(schema ? { schema } : {}) });
  } catch (err) {
    return fail(`${opts.schema ?? "schema"}: ${(err as Error).message}`);
  }
  for (const line of formatProblems(result.warnings)) io.err(`warning: ${line}\n`);
  const errors = opts.strict ? [...result.errors, ...result.warnings] : result.errors;
  const what = `${opts.config} for ${opts.mode} mode (Talos ${contract.version} rules${schema ? "" : ", unknown keys not checked: no --schema"})`;
  if (errors.length > 0) {
    io.err(`${what}: ${errors.length} problem${errors.length === 1 ? "" : "s"}\n`);
    for (const line of formatProblems(errors)) io.err(`  ${line}\n`);
    return 1;
  }
  io.out(`${opts.config} is valid for ${opts.mode} mode (Talos ${contract.version} rules${schema ? "" : "; unknown keys not checked: no --schema"})\n`);
  return 0;
}

export function registerValidateCommand(program: Command, io: CliIo = processIo): Command {
  return program
    .command("validate")
    .description("validate a Talos machine config, as talosctl validate: exit 0, or 1 listing every problem")
    .requiredOption("-c, --config <file>", "the machine config (controlplane.yaml, worker.yaml)")
    .addOption(new Option("-m, --mode <mode>", "the runtime mode to validate for").choices([...RUNTIME_MODES]).makeOptionMandatory())
    .option("--talos-version <version>", "the Talos version whose rules apply (1.14, 1.13.5, …; default: the newest supported)")
    .option("--schema <file>", "Talos's config JSON schema for that version (config.schema.json): also checks unknown keys and types")
    .option("--strict", "treat warnings as errors")
    .action((opts: ValidateCliOptions) => {
      io.exit(runValidate(opts, io));
    });
}

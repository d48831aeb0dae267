#!/usr/bin/env node
import { Command } from "commander";
import { ConfigError, EMBEDDED_DEFAULT, loadConfigFile, loadEmbeddedDefault, missingFiles, type Config } from "./config/load.js";
import { Daemon } from "./daemon.js";
import { createLogger } from "./log.js";
import { PortBindError } from "./net/errors.js";
import { registerAssetCommands } from "./assets/cli.js";
import { errorLine, registerVmCommands } from "./providers/cli.js";
import { probeProxmox } from "./providers/index.js";
import { registerConfigCommands } from "./talos/cli-config.js";
import { genCommand } from "./talos/cli-gen.js";
import { registerSecretsCommands } from "./talos/cli-secrets.js";
import { registerValidateCommand } from "./talos/cli-validate.js";

function loadOrExit(path: string | undefined, checkFiles = true): Config {
  try {
    return path ? loadConfigFile(path, { checkFiles }) : loadEmbeddedDefault();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`talos-netboot: invalid configuration — ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}

async function serve(opts: { config?: string }): Promise<void> {
  const config = loadOrExit(opts.config);
  const log = createLogger(config.log.level, config.log.format === "auto" ? {} : { pretty: config.log.format === "pretty" });
  if (!opts.config) {
    log.info({ address: config.server.address, stateDir: config.stateDir }, `no --config: running on the ${EMBEDDED_DEFAULT}`);
    for (const problem of missingFiles(config)) log.warn(`${problem} — machines booting that profile will get 404s until it exists`);
  }
  let daemon: Daemon;
  try {
    daemon = await Daemon.start({ config, configPath: opts.config, log });
  } catch (err) {
    if (err instanceof PortBindError) {
      log.fatal(err.message);
      process.exit(2);
    }
    log.fatal({ err: (err as Error).message }, "cannot start");
    process.exit(1);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "stopping");
    // A stop that hangs must not hang the host's shutdown.
    setTimeout(() => process.exit(1), 10_000).unref();
    void daemon.stop().then(() => process.exit(0));
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGHUP", () => daemon.reload());
}

async function check(opts: { config: string; probe?: boolean }): Promise<void> {
  const config = loadOrExit(opts.config);
  process.stdout.write(
    `${opts.config}: OK — server ${config.server.address}, ${Object.keys(config.profiles).length} profile(s), ${config.machines.length} machine(s)\n`,
  );
  if (opts.probe && config.providers.proxmox) {
    try {
      process.stdout.write(`proxmox: OK — Proxmox VE ${await probeProxmox(config.providers.proxmox)}\n`);
    } catch (err) {
      process.stderr.write(`proxmox: ${errorLine(err)}\n`);
      process.exit(1);
    }
  }
}

const program = new Command()
  .name("talos-netboot")
  .description("Network-boot appliance for Talos Linux: ProxyDHCP, TFTP, HTTP boot and machine configs");
program
  .command("serve")
  .description("run the daemon (ProxyDHCP, TFTP, HTTP, control API)")
  .option("-c, --config <file>", "YAML config file (default: the embedded default)")
  .action(serve);
program
  .command("check")
  .description("validate a config file and exit: 0, or 1 listing every problem")
  .requiredOption("-c, --config <file>", "YAML config file")
  .option("--probe", "also call Proxmox VE's GET /version to prove the URL, TLS trust and token")
  .action(check);

registerSecretsCommands(program);
registerConfigCommands(program, genCommand(program));
registerValidateCommand(program);
registerAssetCommands(program);
registerVmCommands(program, { loadConfig: (path) => loadOrExit(path) });

await program.parseAsync(process.argv);

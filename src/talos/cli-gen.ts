import type { Command } from "commander";

/**
 * The `gen` command group. Several modules add subcommands to it (`gen
 * secrets`, `gen config`); whichever registers first creates it, the others
 * get the same one.
 */
export function genCommand(program: Command): Command {
  const existing = program.commands.find((c) => c.name() === "gen");
  if (existing) return existing;
  return program.command("gen").description("generate secrets bundles and Talos machine configs (as talosctl gen)");
}

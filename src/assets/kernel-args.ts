import type { Arch } from "./types.js";
import { atLeast, type TalosVersion } from "./version.js";

/**
 * The kernel command line Talos needs to PXE-boot, per version (DESIGN §4).
 * Built the way Talos's imager builds the factory's `cmdline-metal-<arch>`
 * (talos `pkg/imager/imager.go` buildCmdline): `talos.platform=metal`, the
 * metal platform's consoles, `kernel.DefaultArgs(quirks)`, then the
 * schematic's extra kernel args. Each quirk is the version threshold of
 * talos `pkg/machinery/imager/quirks/quirks.go`, so pre-releases follow
 * semantic-version order as in Talos (1.14.0-beta.1 is below 1.14.0).
 */

/** A kernel command line as Talos models it (siderolabs/go-procfs): keys in first-seen order, each with its values. */
export class Cmdline {
  private readonly params: Array<{ key: string; values: string[] }> = [];

  constructor(line = "") {
    for (const [key, value] of parse(line)) this.append(key, value);
  }

  append(key: string, value: string): void {
    const p = this.params.find((q) => q.key === key);
    if (p) p.values.push(value);
    else this.params.push({ key, values: [value] });
  }

  /** Replaces the key's values in place, or adds it at the end. */
  set(key: string, values: string[]): void {
    const p = this.params.find((q) => q.key === key);
    if (p) p.values = [...values];
    else this.params.push({ key, values: [...values] });
  }

  /**
   * go-procfs AppendAll: `-key` deletes the key (`-key=value` one value of
   * it); keys in `overwrite` replace what is there; anything else appends.
   */
  appendAll(args: readonly string[], opts: { overwrite?: readonly string[] } = {}): void {
    for (const [key, values] of grouped(args)) {
      if (key.length > 1 && key.startsWith("-")) {
        const name = key.slice(1);
        const i = this.params.findIndex((q) => q.key === name);
        if (i < 0) continue;
        if (values[0] === "") this.params.splice(i, 1);
        else this.params[i]!.values = this.params[i]!.values.filter((v) => !values.includes(v));
        continue;
      }
      if (opts.overwrite?.includes(key)) this.set(key, values);
      else for (const v of values) this.append(key, v);
    }
  }

  toString(): string {
    return this.params.flatMap((p) => p.values.map((v) => (v === "" ? p.key : `${p.key}=${v}`))).join(" ");
  }
}

function* parse(line: string): Generator<[string, string]> {
  for (const word of line.split(/\s+/)) {
    if (!word) continue;
    const eq = word.indexOf("=");
    yield eq < 0 ? [word, ""] : [word.slice(0, eq), word.slice(eq + 1)];
  }
}

/** go-procfs parse: one entry per key, values in order. */
function grouped(args: readonly string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [key, value] of parse(args.join(" "))) {
    const list = out.get(key);
    if (list) list.push(value);
    else out.set(key, [value]);
  }
  return out;
}

/** talos `pkg/machinery/kernel` DefaultArgs(quirks). */
export function talosDefaultArgs(v: TalosVersion): string[] {
  const args: string[] = [];
  if (!atLeast(v, "1.14.0")) args.push("init_on_alloc=1"); // DropInitOnAllocInArgs
  args.push("slab_nomerge=", "pti=on", "consoleblank=0");
  if (!atLeast(v, "1.14.0")) args.push("nvme_core.io_timeout=4294967295"); // NvmeCoreIoTimeoutAWSOnly
  args.push("printk.devkmsg=on");
  if (!atLeast(v, "1.11.0")) args.push("ima_template=ima-ng", "ima_appraise=fix", "ima_hash=sha512"); // SupportsIMA (≤ 1.10.99)
  if (atLeast(v, "1.10.0")) args.push("selinux=1"); // SupportsSELinux
  if (atLeast(v, "1.12.0")) args.push("module.sig_enforce=1"); // SupportsDisablingModuleSignatureVerification
  if (atLeast(v, "1.13.0")) args.push("proc_mem.force_override=never"); // ProcMemOverrideNever
  return args;
}

/** The metal platform's consoles (talos metal.go KernelArgs; ttyS0 on amd64 was dropped in 1.8). */
function metalConsoles(arch: Arch): string[] {
  return arch === "arm64" ? ["ttyAMA0", "tty0"] : ["tty0"];
}

/**
 * The PXE command line Talos's imager would build for this version, arch
 * and schematic extra kernel args — what the factory serves as
 * `cmdline-metal-<arch>`. META values (which the factory passes as
 * `talos.environment=INSTALLER_META_BASE64=…`) are not reproduced.
 */
export function talosPxeCmdline(v: TalosVersion, arch: Arch, schematicArgs: readonly string[] = []): Cmdline {
  const c = new Cmdline();
  c.append("talos.platform", "metal");
  c.set("console", metalConsoles(arch));
  c.appendAll(talosDefaultArgs(v));
  c.appendAll(schematicArgs, { overwrite: ["console", "talos.platform"] });
  return c;
}

export interface PxeCmdlineInput {
  version: TalosVersion;
  arch: Arch;
  /** The schematic's `customization.extraKernelArgs`. */
  schematicArgs?: readonly string[];
  /** The factory's `cmdline-metal-<arch>` for the schematic, when one was reachable: it wins. */
  factoryCmdline?: string;
  /** The profile's PXE-only arguments: appended; `-name` removes `name` from the line. */
  extraArgs?: readonly string[];
  /** Appended last as `talos.config=<url>`. */
  configUrl?: string;
}

/** The full kernel command line for a Talos PXE boot. */
export function buildPxeCmdline(input: PxeCmdlineInput): string {
  const c = input.factoryCmdline?.trim()
    ? new Cmdline(input.factoryCmdline)
    : talosPxeCmdline(input.version, input.arch, input.schematicArgs ?? []);
  c.appendAll(input.extraArgs ?? []);
  if (input.configUrl) c.append("talos.config", input.configUrl);
  return c.toString();
}

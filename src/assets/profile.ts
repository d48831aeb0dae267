import type { Logger } from "pino";
import { z } from "zod";
import { schematicNameSchema } from "./config.js";
import { installerImage } from "./installer.js";
import { buildPxeCmdline } from "./kernel-args.js";
import { customizationSchema, isSchematicId, schematicId, type Customization } from "./schematic.js";
import type { AssetService } from "./service.js";
import { AssetError, type Arch, type AssetSetKey } from "./types.js";
import { parseTalosVersion, type TalosVersion } from "./version.js";

/**
 * A profile's Talos form: `talos: {version, schematic, arch, extraArgs}`
 * in place of kernel/initrd paths. `schematic` is a stored name or an ID;
 * omitted means the release files. `extraArgs` are PXE-time arguments only
 * (the installed system's arguments belong to the schematic's
 * `extraKernelArgs`).
 */
export const talosProfileSchema = z.strictObject({
  version: z.string().refine(
    (s) => {
      try {
        parseTalosVersion(s);
        return true;
      } catch {
        return false;
      }
    },
    { message: "expected a full Talos version, 1.9.0 or newer, such as 1.14.7" },
  ),
  schematic: z
    .string()
    .refine((s) => isSchematicId(s) || schematicNameSchema.safeParse(s).success, {
      message: "expected a schematic name or a 64-hex schematic ID",
    })
    .optional(),
  arch: z.enum(["amd64", "arm64", "auto"]).default("auto"),
  extraArgs: z.array(z.string().regex(/^\S+$/, { message: "one kernel argument per item, no spaces" })).default([]),
});
export type TalosProfile = z.output<typeof talosProfileSchema>;

/** The architecture for a client's DHCP option 93 (IANA): x86 and x64 firmware boot amd64, ARM64 boots arm64. */
export function archFromClientArch(code: number | undefined): Arch | undefined {
  if (code === undefined) return undefined;
  if ([0, 6, 7, 9, 15, 16, 20].includes(code)) return "amd64";
  if (code === 11 || code === 19) return "arm64";
  return undefined;
}

/** Looks a schematic reference up: a name (config first, then stored), or an ID as is. */
export type SchematicLookup = (ref: string) => { id: string; customization?: Customization } | undefined;

/** A lookup over the config's `talos.schematics` and the stored ones. */
export function schematicLookup(
  configSchematics: Record<string, Customization>,
  stored?: { get(name: string): { id: string; customization: unknown } | undefined; byId(id: string): { customization: unknown } | undefined },
): SchematicLookup {
  return (ref) => {
    const configured = configSchematics[ref];
    if (configured) return { id: schematicId(configured), customization: configured };
    if (isSchematicId(ref)) {
      const s = stored?.byId(ref);
      const c = s ? customizationSchema.safeParse(s.customization) : undefined;
      return { id: ref, ...(c?.success ? { customization: c.data } : {}) };
    }
    const s = stored?.get(ref);
    if (!s) return undefined;
    const c = customizationSchema.safeParse(s.customization);
    return { id: s.id, ...(c.success ? { customization: c.data } : {}) };
  };
}

export interface ResolvedTalos {
  version: TalosVersion;
  arch: Arch;
  /** Null for release files. */
  schematic: string | null;
  customization?: Customization;
  /** What a machine config's install image must be for this profile (DESIGN §4). */
  installerImage: string;
}

/** Pure resolution of a Talos profile for one client: version, arch, schematic ID, installer. */
export function resolveTalosProfile(
  p: TalosProfile,
  ctx: { clientArch?: number; registry: string; lookup: SchematicLookup },
): ResolvedTalos {
  const version = parseTalosVersion(p.version);
  const arch = p.arch === "auto" ? (archFromClientArch(ctx.clientArch) ?? "amd64") : p.arch;
  let schematic: string | null = null;
  let customization: Customization | undefined;
  if (p.schematic !== undefined) {
    const found = ctx.lookup(p.schematic);
    if (!found) throw new AssetError("INVALID", `no schematic named '${p.schematic}' (define it under talos.schematics or POST /api/v1/schematics)`);
    schematic = found.id;
    customization = found.customization;
  }
  return { version, arch, schematic, customization, installerImage: installerImage(version, schematic, ctx.registry) };
}

export interface ProfileAssets {
  kernelPath: string;
  initrdPath: string;
  cmdline: string;
  installerImage: string;
  set: AssetSetKey;
}

export interface ResolveContext {
  /** DHCP option 93 of the client, for `arch: auto`. */
  clientArch?: number;
  /** The machine's talos.config URL; appended last when given. */
  configUrl?: string;
  /** How long a boot request waits for a download in progress. */
  waitMs?: number;
}

type ResolveDeps = { service: AssetService; lookup: SchematicLookup; log: Logger };

/**
 * The kernel command line of a Talos profile for one client, without
 * downloading anything: the factory's `cmdline-metal-<arch>` when the
 * profile has a schematic and a factory answers (or answered before), else
 * built locally per DESIGN §4; then the profile's extra arguments and
 * `talos.config=`. For rendering a boot script before the files are there.
 */
export async function resolveProfileCmdline(
  p: TalosProfile,
  ctx: Pick<ResolveContext, "clientArch" | "configUrl">,
  deps: ResolveDeps,
): Promise<{ cmdline: string; resolved: ResolvedTalos }> {
  const { service } = deps;
  const r = resolveTalosProfile(p, { clientArch: ctx.clientArch, registry: service.settings.installerRegistry, lookup: deps.lookup });
  const factoryCmdline = r.schematic ? await service.factoryCmdline(r.schematic, r.version.text, r.arch) : undefined;
  if (r.schematic && !factoryCmdline && r.customization?.meta?.length) {
    deps.log.warn({ schematic: r.schematic }, "no factory command line: the schematic's META values are not passed at PXE time");
  }
  const cmdline = buildPxeCmdline({
    version: r.version,
    arch: r.arch,
    schematicArgs: r.customization?.extraKernelArgs ?? [],
    factoryCmdline,
    extraArgs: p.extraArgs,
    configUrl: ctx.configUrl,
  });
  return { cmdline, resolved: r };
}

/**
 * The verified kernel and initramfs of a Talos profile for one client:
 * from the cache (a download, or an import of the same set), else fetched
 * now. A download in progress is waited for, bounded; past the bound the
 * caller gets a TIMEOUT error and the download goes on.
 */
export async function resolveProfileFiles(
  p: TalosProfile,
  ctx: Pick<ResolveContext, "clientArch" | "waitMs">,
  deps: ResolveDeps,
): Promise<{ kernelPath: string; initrdPath: string; set: AssetSetKey; resolved: ResolvedTalos }> {
  const { service } = deps;
  const r = resolveTalosProfile(p, { clientArch: ctx.clientArch, registry: service.settings.installerRegistry, lookup: deps.lookup });
  const set = await service.pickSource({ schematic: r.schematic, version: r.version.text, arch: r.arch });
  const work = (async () => {
    // The factory serves only schematics it knows: register before a
    // download, never on the boot path of files already cached.
    if (set.source === "factory" && r.customization && !(await service.hasPair(set))) {
      await service.register(r.customization).catch((err: Error) => deps.log.warn({ schematic: r.schematic, err: err.message }, "could not register the schematic"));
    }
    return service.ensurePair(set);
  })();
  const waitMs = ctx.waitMs ?? 120_000;
  const pair = await withinMs(work, waitMs, () => {
    work.catch(() => undefined);
    return new AssetError(
      "TIMEOUT",
      `Talos ${r.version.text} ${r.arch} boot files are still downloading after ${Math.round(waitMs / 1000)} s; the machine will get them on its next try`,
    );
  });
  return { kernelPath: pair.kernel.path, initrdPath: pair.initramfs.path, set, resolved: r };
}

/** Files and command line together: what a Talos profile boots. */
export async function resolveProfileAssets(p: TalosProfile, ctx: ResolveContext, deps: ResolveDeps): Promise<ProfileAssets> {
  const files = await resolveProfileFiles(p, ctx, deps);
  const { cmdline } = await resolveProfileCmdline(p, ctx, deps);
  return { kernelPath: files.kernelPath, initrdPath: files.initrdPath, cmdline, installerImage: files.resolved.installerImage, set: files.set };
}

function withinMs<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** A profile as far as maintenance-mode checks care. */
export interface MaintenanceView {
  talos?: unknown;
  config?: string;
  allowMaintenance?: boolean;
}

/**
 * A Talos profile without a config boots maintenance mode, where
 * ApplyConfiguration needs no credentials: anyone on the VLAN can take the
 * machine. Warn for every such profile; refuse one as `unknownMachines`
 * unless it says `allowMaintenance: true`.
 */
export function maintenanceModeChecks(profiles: Record<string, MaintenanceView>, unknownMachines: string): { warnings: string[]; problems: string[] } {
  const warnings: string[] = [];
  const problems: string[] = [];
  for (const [name, p] of Object.entries(profiles)) {
    if (!p.talos || p.config) continue;
    warnings.push(`profiles.${name}: a Talos profile without config boots maintenance mode — ApplyConfiguration is open to anyone on the network`);
    if (unknownMachines === name && !p.allowMaintenance) {
      problems.push(
        `unknownMachines: profile '${name}' boots Talos in maintenance mode (no config), which hands unknown machines to anyone on the VLAN; give it a config or set profiles.${name}.allowMaintenance: true`,
      );
    }
  }
  return { warnings, problems };
}

/**
 * Fetches the files of every Talos profile, at daemon start. A failure is a
 * warning: the daemon starts anyway and fetches again on the first boot.
 * `arch: auto` prefetches amd64 only (arm64 comes on demand).
 */
export async function prefetchProfiles(profiles: Record<string, { talos?: TalosProfile }>, deps: ResolveDeps): Promise<void> {
  await Promise.all(
    Object.entries(profiles).map(async ([name, p]) => {
      if (!p.talos) return;
      try {
        await resolveProfileFiles(p.talos, { waitMs: 24 * 3600_000 }, deps);
        deps.log.info({ profile: name }, "Talos boot files ready");
      } catch (err) {
        deps.log.warn({ profile: name, err: (err as Error).message }, "could not prefetch the profile's Talos boot files; will retry on the first boot");
      }
    }),
  );
}

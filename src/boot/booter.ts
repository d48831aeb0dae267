import { timingSafeEqual } from "node:crypto";
import type { Logger } from "pino";
import type { TalosProfile } from "../assets/profile.js";
import type { ProfileConfig } from "../config/load.js";
import { lookupNeighbour } from "../net/neighbours.js";
import type { Machine, MachineStore } from "../store/machines.js";
import type { BootloaderMap } from "./bootloaders.js";
import { decideDhcp } from "./decision.js";
import { parseMac, type Mac } from "./mac.js";
import { planBoot, type BootPlan } from "./plan.js";
import { renderGrubConfig, renderIpxeScript } from "./scripts.js";
import type { Templates } from "./templates.js";
import type { DhcpAnswer, DhcpBooter, FirmwareFacts, TftpClient, TftpResolution, TftpResolver } from "./types.js";
import type { BootUrls } from "./urls.js";

/** Everything the boot path reads from the configuration; replaced whole on SIGHUP. */
export interface BootSettings {
  profiles: Record<string, ProfileConfig>;
  /** `ignore`, or the profile unknown machines boot (they are then registered as `discovered`). */
  unknownMachines: string;
  bootloaders: BootloaderMap;
  urls: BootUrls;
  templates: Templates;
}

export interface MachineBoot {
  machine: Machine;
  profile: ProfileConfig;
  plan: BootPlan;
}

/** A machine config to serve: a file (the profile's) or text (generated for this machine). */
export type ConfigFetch =
  | { ok: true; source: { path: string } | { text: string }; firstFetch: boolean }
  | { ok: false; reason: string };

/** Looks up a config generated for a MAC (Talos config API); it wins over the profile's file. */
export type GeneratedConfigLookup = (mac: Mac) => string | undefined;

/**
 * Talos profiles (`talos: {version, schematic, arch}`) boot files from the
 * asset cache, with a command line built per Talos version. Implemented by
 * the assets layer; `clientArch` is the machine's DHCP option 93.
 */
export interface TalosBootAssets {
  cmdline(profile: TalosProfile, clientArch: number | undefined, configUrl: string | undefined): Promise<string>;
  /** Throws (e.g. still downloading) when the files cannot be had now. */
  files(profile: TalosProfile, clientArch: number | undefined): Promise<{ kernelPath: string; initrdPath: string }>;
}

export interface BooterDeps {
  /** Maps a TFTP client's IP to its MAC (the kernel's neighbour table by default). */
  neighbour?: (ip: string) => Promise<Mac | undefined>;
  generatedConfig?: GeneratedConfigLookup;
  talosAssets?: TalosBootAssets;
}

/** What a kernel/initrd request resolves to: a local file, an http(s) URL to cache, or why not. */
export type BootFileSource = { ok: true; source: string } | { ok: false; status: 404 | 503; reason: string };

/**
 * The boot policy behind every server: looks machines up, asks the pure
 * decision/plan functions, and writes what happened to the machine's
 * timeline. Servers never decide what to boot; they ask this.
 */
export class Booter implements DhcpBooter, TftpResolver {
  private readonly neighbour: (ip: string) => Promise<Mac | undefined>;
  private readonly generatedConfig: GeneratedConfigLookup;
  private readonly talosAssets: TalosBootAssets | undefined;

  constructor(
    private settings: BootSettings,
    private readonly store: MachineStore,
    private readonly log: Logger,
    deps: BooterDeps = {},
  ) {
    this.neighbour = deps.neighbour ?? lookupNeighbour;
    this.generatedConfig = deps.generatedConfig ?? (() => undefined);
    this.talosAssets = deps.talosAssets;
  }

  update(settings: BootSettings): void {
    this.settings = settings;
  }

  get urls(): BootUrls {
    return this.settings.urls;
  }

  /** The machine record for a MAC; unknown machines are registered when the policy names a profile. */
  private machineFor(mac: Mac, facts: Record<string, unknown>): Machine | undefined {
    const known = this.store.get(mac);
    if (known) return known;
    this.store.recordUnknown(mac, facts);
    const policy = this.settings.unknownMachines;
    if (policy === "ignore" || !(policy in this.settings.profiles)) return undefined;
    this.log.info({ mac, profile: policy }, "unknown machine registered with the unknownMachines profile");
    return this.store.upsert({ mac, profile: policy, hostname: null, bootfile: null, source: "discovered" });
  }

  answerDhcp(facts: FirmwareFacts): DhcpAnswer {
    const seen = {
      arch: facts.arch ?? null,
      ipxe: facts.ipxe,
      httpClient: facts.httpClient,
      port: facts.pxePort ? "pxe" : "dhcp",
      ...(facts.giaddr !== "0.0.0.0" ? { relay: facts.giaddr } : {}),
    };
    const machine = this.machineFor(facts.mac, seen);
    if (!machine) {
      this.log.debug({ mac: facts.mac, ...seen }, "DHCP from an unknown machine ignored (unknownMachines: ignore)");
      return { kind: "ignore", reason: "unknown-machine", detail: "not a registered machine and unknownMachines is ignore" };
    }
    const { profiles, bootloaders, urls } = this.settings;
    const answer = decideDhcp(facts, machine, { profiles, bootloaders: bootloaders.files, urls });
    if (answer.kind === "offer") {
      this.store.record(machine.mac, facts.pxePort ? "dhcp-4011" : "dhcp-offer", {
        arch: facts.arch ?? null,
        firmware: answer.firmware,
        bootFile: answer.bootFile,
        ...(facts.giaddr !== "0.0.0.0" ? { relay: facts.giaddr } : {}),
      });
      // The DHCP server logs the reply it sends; this is the decision's detail.
      this.log.debug({ mac: machine.mac, firmware: answer.firmware, bootFile: answer.bootFile, port: seen.port }, "proxy DHCP answer");
    } else {
      this.store.record(machine.mac, "dhcp-ignored", { arch: facts.arch ?? null, reason: answer.reason, detail: answer.detail });
      this.log.warn({ mac: machine.mac, reason: answer.reason }, answer.detail);
    }
    return answer;
  }

  /** The architecture the machine's firmware last announced (DHCP option 93), from its timeline. */
  private lastArch(mac: Mac): number | undefined {
    return this.store.lastArch(mac);
  }

  /** The machine, its profile and its plan — for the HTTP and TFTP boot paths. */
  async boot(mac: Mac): Promise<MachineBoot | undefined> {
    const machine = this.machineFor(mac, { via: "http" });
    if (!machine) return undefined;
    const profile = this.settings.profiles[machine.profile];
    if (!profile) {
      this.log.warn({ mac, profile: machine.profile }, "machine names a profile that does not exist");
      return undefined;
    }
    const hasConfig = profile.config !== undefined || this.generatedConfig(mac) !== undefined;
    let cmdline: string | undefined;
    if (profile.talos && machine.next === "profile") {
      if (!this.talosAssets) throw new Error("a talos profile needs the assets layer");
      const configUrl = hasConfig ? this.settings.urls.config(mac, machine.configToken) : undefined;
      cmdline = await this.talosAssets.cmdline(profile.talos, this.lastArch(mac), configUrl);
    }
    return { machine, profile, plan: planBoot(machine, profile, this.settings.urls, { hasConfig, cmdline }) };
  }

  /** iPXE script; null body means "answer 404" (local boot by http-404, or no such machine). */
  async ipxeScript(mac: Mac): Promise<{ body: string | null; plan?: BootPlan }> {
    const b = await this.boot(mac);
    if (!b) return { body: null };
    const body = renderIpxeScript(b.plan, this.settings.templates);
    this.recordScript(b, "ipxe");
    return { body, plan: b.plan };
  }

  async grubConfig(mac: Mac): Promise<string | null> {
    const b = await this.boot(mac);
    if (!b) return null;
    const body = renderGrubConfig(b.plan, this.settings.templates);
    this.recordScript(b, "grub");
    return body;
  }

  private recordScript(b: MachineBoot, kind: "ipxe" | "grub"): void {
    if (b.plan.mode === "local") {
      this.store.record(b.machine.mac, "local-boot", { via: kind, method: kind === "grub" ? "exit" : b.plan.method });
      this.log.info({ mac: b.machine.mac, via: kind }, "told to boot from local disk");
    } else {
      this.store.record(b.machine.mac, "script", { via: kind, profile: b.plan.profile });
      this.log.info({ mac: b.machine.mac, via: kind, profile: b.plan.profile }, "boot script served");
    }
  }

  /** Kernel or initrd source for a machine: a file path or an http(s) URL from its profile, or a cached Talos file. */
  async bootFileSource(mac: Mac, which: "kernel" | number): Promise<BootFileSource> {
    const machine = this.machineFor(mac, { via: "http" });
    const profile = machine && this.settings.profiles[machine.profile];
    if (!machine || !profile) return { ok: false, status: 404, reason: "unknown machine" };
    if (profile.talos) {
      if (which !== "kernel" && which !== 0) return { ok: false, status: 404, reason: "a talos profile has one initramfs" };
      try {
        const files = await this.talosAssets!.files(profile.talos, this.lastArch(mac));
        return { ok: true, source: which === "kernel" ? files.kernelPath : files.initrdPath };
      } catch (err) {
        const reason = (err as Error).message;
        this.store.record(mac, "assets-pending", { file: which === "kernel" ? "kernel" : "initramfs", reason });
        this.log.warn({ mac, reason }, "Talos boot files not available yet");
        return { ok: false, status: 503, reason };
      }
    }
    const source = which === "kernel" ? profile.kernel : profile.initrd[which];
    return source ? { ok: true, source } : { ok: false, status: 404, reason: "no such boot file in the profile" };
  }

  /** Called by HTTP when a kernel/initrd body was sent (or cut short). */
  bootFileSent(mac: Mac, which: "kernel" | number, bytes: number, complete: boolean): void {
    const machine = this.store.get(mac);
    if (!machine) return;
    this.store.record(mac, which === "kernel" ? "kernel" : "initrd", {
      ...(which === "kernel" ? {} : { index: which }),
      bytes,
      ...(complete ? {} : { incomplete: true }),
    });
    const profile = this.settings.profiles[machine.profile];
    // `once` without a config: the machine is done with us when its last boot file has arrived.
    if (complete && profile?.once && !profile.config && machine.next === "profile") {
      const initrds = profile.talos ? 1 : profile.initrd.length;
      const last = initrds === 0 ? "kernel" : initrds - 1;
      if (which === last) this.markInstalled(machine);
    }
  }

  /**
   * The per-machine config. The token must match (constant time); anything
   * else is a 404 that names nothing. The first fetch is the check-in.
   */
  config(mac: Mac, token: string): ConfigFetch {
    const machine = this.store.get(mac);
    if (!machine) return { ok: false, reason: "unknown machine" };
    const a = Buffer.from(token);
    const b = Buffer.from(machine.configToken);
    if (a.length !== b.length || !timingSafeEqual(a, b)) {
      this.store.record(mac, "config-denied", { reason: "wrong token" });
      return { ok: false, reason: "wrong token" };
    }
    const profile = this.settings.profiles[machine.profile];
    const generated = this.generatedConfig(mac);
    if (generated === undefined && !profile?.config) return { ok: false, reason: `profile '${machine.profile}' has no config and none was generated for this machine` };
    const firstFetch = !this.store.hasStep(mac, "config");
    this.store.record(mac, "config", { checkIn: firstFetch, ...(generated !== undefined ? { generated: true } : {}) });
    this.log.info({ mac, checkIn: firstFetch }, firstFetch ? "machine checked in (config fetched)" : "config fetched again");
    if (profile?.once && machine.next === "profile") this.markInstalled(machine);
    return { ok: true, source: generated !== undefined ? { text: generated } : { path: profile!.config! }, firstFetch };
  }

  private markInstalled(machine: Machine): void {
    this.store.setNext(machine.mac, "local");
    this.store.record(machine.mac, "boot-set", { next: "local", by: "once" });
    this.log.info({ mac: machine.mac }, "profile has once: true — next boots are from local disk");
  }

  // ---- TFTP -------------------------------------------------------------

  resolve(name: string, client: TftpClient): TftpResolution | Promise<TftpResolution> {
    const file = this.settings.bootloaders.files.get(name);
    if (file) return { ok: true, source: { kind: "file", path: file } };
    const base = name.slice(name.lastIndexOf("/") + 1);
    const perMac = /^grub\.cfg-01-(.+)$/.exec(base);
    if (perMac) {
      const mac = parseMac(perMac[1]!);
      if (!mac) return notFound(name);
      return this.grubConfig(mac).then((body) => (body === null ? notFound(name) : { ok: true, source: { kind: "buffer", data: Buffer.from(body) } }));
    }
    if (base === "grub.cfg") {
      // Generic GRUB config: chains to the per-MAC one over HTTP.
      const body = this.settings.templates.grubBootstrap.replace("{{hostport}}", new URL(this.settings.urls.base).host);
      return { ok: true, source: { kind: "buffer", data: Buffer.from(body) } };
    }
    this.log.debug({ name, client: client.address }, "TFTP request for a file we do not serve");
    return notFound(name);
  }

  completed(event: { name: string; client: TftpClient; bytes: number; blksize: number; windowsize: number }): void {
    void this.neighbour(event.client.address).then((mac) => {
      if (!mac || !this.store.get(mac)) return;
      this.store.record(mac, "tftp", { file: event.name, bytes: event.bytes, blksize: event.blksize, windowsize: event.windowsize });
    });
  }
}

function notFound(name: string): TftpResolution {
  return { ok: false, code: 1, message: `${name}: file not found` };
}

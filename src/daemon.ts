import { serve, type ServerType } from "@hono/node-server";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import { assetSettingsFrom } from "./assets/config.js";
import { Operations } from "./assets/operations.js";
import { maintenanceModeChecks, prefetchProfiles, resolveProfileCmdline, resolveProfileFiles, schematicLookup } from "./assets/profile.js";
import { AssetService } from "./assets/service.js";
import { Booter, type BootSettings } from "./boot/booter.js";
import { buildBootloaderMap } from "./boot/bootloaders.js";
import { grubImageFor } from "./boot/grub-image.js";
import { loadTemplates } from "./boot/templates.js";
import { UrlCache } from "./boot/url-cache.js";
import { BootUrls } from "./boot/urls.js";
import { loadConfigFile, packageRoot, type Config } from "./config/load.js";
import { DhcpServer } from "./dhcp/server.js";
import { createHttpApp } from "./http/app.js";
import { createCanonicalHttpServer, createCanonicalHttpsServer } from "./http/header-case.js";
import { Metrics } from "./metrics.js";
import { PortBindError } from "./net/errors.js";
import { interfaceHolding } from "./net/interfaces.js";
import { openDatabase, type Db } from "./store/db.js";
import { MachineStore } from "./store/machines.js";
import { TalosStore } from "./store/talos.js";
import { talosRoutes } from "./http/talos-routes.js";
import { assetRoutes } from "./http/assets-routes.js";
import { SchematicStore } from "./store/assets.js";
import { VmStore } from "./store/vms.js";
import { providerRoutes } from "./providers/api.js";
import { createProvider } from "./providers/index.js";
import type { ProviderKind, VmProvider } from "./providers/types.js";
import { TftpServer } from "./tftp/server.js";

/**
 * How long a boot request waits for Talos files still downloading before
 * answering 503 (the download goes on; iPXE's script retries).
 */
const BOOT_ASSET_WAIT_MS = 20_000;

/** An HTTP connection with no traffic for this long is closed. */
const IDLE_SOCKET_MS = 120_000;

export interface DaemonOptions {
  config: Config;
  /** The file the config came from; SIGHUP re-reads it. Absent for the embedded default. */
  configPath?: string;
  log: Logger;
  /** Directory of boot templates; the package's boot-templates/ by default. */
  templatesDir?: string;
}

/** Reads or creates the API token file; returns the token, never logs it. */
export function ensureApiToken(stateDir: string): { token: string; path: string; created: boolean } {
  const path = join(stateDir, "api-token");
  if (existsSync(path)) return { token: readFileSync(path, "utf8").trim(), path, created: false };
  const token = randomBytes(32).toString("base64url");
  writeFileSync(path, `${token}\n`, { mode: 0o600, flag: "wx" });
  return { token, path, created: true };
}

/**
 * The daemon: one store, one booter, and the servers that ask it. Start
 * binds everything or nothing; stop closes everything, idempotently.
 */
export class Daemon {
  readonly metrics = new Metrics();
  readonly store: MachineStore;
  readonly booter: Booter;
  readonly talos: TalosStore;
  private readonly schematics: SchematicStore;
  private readonly operations = new Operations();
  private assets: AssetService;
  private readonly vms: VmStore;
  /** Providers are built on first use (a Proxmox client connects lazily) and rebuilt after SIGHUP. */
  private readonly providers = new Map<ProviderKind, VmProvider>();
  private readonly db: Db;
  private readonly log: Logger;
  private config: Config;
  private tokens: string[];
  private settings: BootSettings;
  private readonly templatesDir: string;
  private dhcp?: DhcpServer;
  private tftp?: TftpServer;
  private readonly httpServers: ServerType[] = [];
  private stopped?: Promise<void>;
  private running = false;

  private constructor(
    private readonly opts: DaemonOptions,
    /** GRUB image built for this address and port (bootloaders.grubEfi: build); rebuilt only on restart. */
    private readonly grubImage?: string,
  ) {
    this.config = opts.config;
    this.log = opts.log;
    this.templatesDir = opts.templatesDir ?? join(packageRoot(), "boot-templates");
    this.db = openDatabase(this.config.stateDir);
    this.store = new MachineStore(this.db, this.config.timeline.maxEntries);
    this.tokens = this.resolveTokens(this.config);
    this.settings = this.buildSettings(this.config);
    this.talos = new TalosStore(this.db);
    this.schematics = new SchematicStore(this.db);
    this.vms = new VmStore(this.db);
    this.assets = new AssetService(assetSettingsFrom(this.config), this.log.child({ component: "assets" }));
    this.booter = new Booter(this.settings, this.store, this.log.child({ component: "boot" }), {
      generatedConfig: (mac) => this.talos.nodeByMac(mac)?.configYaml,
      talosAssets: {
        cmdline: async (profile, clientArch, configUrl) => (await resolveProfileCmdline(profile, { clientArch, configUrl }, this.assetDeps())).cmdline,
        files: (profile, clientArch) => resolveProfileFiles(profile, { clientArch, waitMs: BOOT_ASSET_WAIT_MS }, this.assetDeps()),
      },
    });
    this.syncMachines(this.config);
  }

  /** What the assets layer needs to resolve a Talos profile; read fresh, since SIGHUP can change it. */
  private assetDeps() {
    return { service: this.assets, lookup: schematicLookup(this.config.talos.schematics, this.schematics), log: this.log.child({ component: "assets" }) };
  }

  static async start(opts: DaemonOptions): Promise<Daemon> {
    // Built only when a profile boots GRUB (a profile added by SIGHUP needs a restart for it).
    const grub = usesGrub(opts.config) ? await grubImageFor(opts.config, opts.log.child({ component: "grub-image" })) : undefined;
    const d = new Daemon(opts, grub);
    try {
      await d.listen();
    } catch (err) {
      await d.stop();
      throw err;
    }
    return d;
  }

  private resolveTokens(cfg: Config): string[] {
    if (cfg.api.tokens.length > 0) return [...cfg.api.tokens];
    const t = ensureApiToken(cfg.stateDir);
    this.log.info({ path: t.path, created: t.created }, t.created ? "created an API token (read it from this file)" : "API token read from file");
    return [t.token];
  }

  private buildSettings(cfg: Config): BootSettings {
    const bootloaders = buildBootloaderMap(cfg.bootloaders, this.grubImage, usesGrub(cfg));
    for (const w of bootloaders.warnings) this.log.warn(w);
    return {
      profiles: cfg.profiles,
      unknownMachines: cfg.unknownMachines,
      bootloaders,
      urls: new BootUrls(cfg.server.address, cfg.http.port),
      templates: loadTemplates(this.templatesDir),
    };
  }

  private syncMachines(cfg: Config): void {
    const r = this.store.syncFromConfig(cfg.machines);
    if (r.added || r.removed) this.log.info(r, "machines from the config file synchronised");
  }

  private async listen(): Promise<void> {
    const cfg = this.config;
    const bootDeps = {
      booter: this.booter,
      urlCache: new UrlCache(join(cfg.stateDir, "cache", "urls"), this.log.child({ component: "url-cache" })),
      bootloaderFiles: () => this.settings.bootloaders.files,
      templates: () => this.settings.templates,
      log: this.log.child({ component: "http" }),
    };
    const apiDeps = {
      store: this.store,
      tokens: () => this.tokens,
      profiles: () => Object.keys(this.settings.profiles),
      extensions: [
        ["/talos", talosRoutes({ talos: this.talos, machines: this.store, log: this.log.child({ component: "talos-api" }) })],
        ["/providers", providerRoutes({ provider: (kind) => this.providerFor(kind), machines: this.store, profiles: () => Object.keys(this.settings.profiles) })],
        [
          "/",
          assetRoutes({
            service: this.assets,
            store: this.schematics,
            configSchematics: () => this.config.talos.schematics,
            operations: this.operations,
            log: this.log.child({ component: "assets-api" }),
          }),
        ],
      ] as const,
    };
    const ownApiListener = cfg.api.listen !== undefined;

    if (cfg.http.enabled) {
      const app = createHttpApp({ boot: bootDeps, api: ownApiListener ? undefined : apiDeps, metrics: this.metrics, log: this.log });
      await this.listenHttp(app.fetch, cfg.http.address, cfg.http.port, "http.port");
    }
    if (ownApiListener) {
      const [host, port] = splitListen(cfg.api.listen!);
      const app = createHttpApp({ api: apiDeps, metrics: this.metrics, log: this.log });
      const tls = cfg.api.tls ? { cert: readFileSync(cfg.api.tls.cert), key: readFileSync(cfg.api.tls.key) } : undefined;
      await this.listenHttp(app.fetch, host, port, "api.listen", tls);
    }
    if (cfg.tftp.enabled) {
      // Bound to server.address, not 0.0.0.0: transfers then answer from the
      // address the client asked (PXE ROMs drop DATA from any other).
      this.tftp = new TftpServer({ port: cfg.tftp.port, address: cfg.server.address, resolver: this.booter, log: this.log, metrics: this.metrics });
      await this.tftp.start();
    }
    if (cfg.dhcp.enabled) await this.startDhcp(cfg);
    this.running = true;
    for (const warning of maintenanceModeChecks(cfg.profiles, cfg.unknownMachines).warnings) this.log.warn(warning);
    // Talos profiles' files are fetched now, not on the first boot; failures only warn.
    void prefetchProfiles(cfg.profiles, this.assetDeps());
    this.log.info(
      { address: cfg.server.address, interface: cfg.server.interface ?? null, stateDir: cfg.stateDir, config: cfg.source },
      "talos-netboot running",
    );
  }

  private providerFor(kind: ProviderKind): VmProvider {
    let p = this.providers.get(kind);
    if (!p) {
      p = createProvider(kind, this.config.providers, {
        store: this.vms,
        stateDir: this.config.stateDir,
        log: this.log.child({ component: "providers" }),
        macTaken: (mac) => this.store.get(mac) !== undefined,
      });
      this.providers.set(kind, p);
    }
    return p;
  }

  private closeProviders(): Promise<unknown> {
    const all = [...this.providers.values()];
    this.providers.clear();
    return Promise.allSettled(all.map((p) => p.close()));
  }

  private async startDhcp(cfg: Config): Promise<void> {
    const explicit = cfg.server.interface;
    const implied = explicit ? undefined : interfaceHolding(cfg.server.address);
    const make = (device: string | undefined) =>
      new DhcpServer({
        address: cfg.server.address,
        interface: device,
        port: cfg.dhcp.port,
        pxePort: cfg.dhcp.pxePort,
        booter: this.booter,
        log: this.log.child({ component: "dhcp" }),
        metrics: this.metrics,
      });
    this.dhcp = make(explicit ?? implied);
    try {
      await this.dhcp.start();
      if (implied) this.log.info({ interface: implied }, "DHCP bound to the interface holding server.address (set server.interface to choose another)");
    } catch (err) {
      if (!implied || err instanceof PortBindError) throw err;
      // Device binding is our own choice here, not the operator's: run unbound rather than not at all.
      this.log.warn({ interface: implied, err: (err as Error).message }, "cannot bind DHCP to the interface holding server.address; answering on all interfaces");
      this.dhcp = make(undefined);
      await this.dhcp.start();
    }
  }

  private listenHttp(
    fetch: (req: Request, env?: unknown) => Response | Promise<Response>,
    hostname: string,
    port: number,
    configKey: string,
    tls?: { cert: Buffer; key: Buffer },
  ): Promise<void> {
    return new Promise((resolve, reject) => {
      // Canonical header names for GRUB (see header-case.ts); node-server's
      // types only know node:http's own createServer signature.
      const server = serve({
        fetch,
        port,
        hostname,
        ...(tls ? { createServer: createCanonicalHttpsServer, serverOptions: tls } : { createServer: createCanonicalHttpServer }),
      } as Parameters<typeof serve>[0]);
      const onError = (err: Error) => reject(PortBindError.from(err, "tcp", port, hostname, configKey));
      server.once("error", onError);
      server.once("listening", () => {
        server.off("error", onError);
        // A client that stops reading without closing would hold its file
        // descriptor forever (Node's default is no timeout).
        server.setTimeout(IDLE_SOCKET_MS);
        server.on("error", (err) => this.log.error({ err: err.message }, "HTTP server error"));
        this.httpServers.push(server);
        this.log.info({ address: hostname, port, tls: Boolean(tls) }, tls ? "HTTPS API listening" : "HTTP listening");
        resolve();
      });
    });
  }

  /** SIGHUP: re-read the file; apply profiles, machines, tokens, templates. Bad config: keep the old one. */
  reload(): void {
    if (!this.opts.configPath) {
      this.settings = this.buildSettings(this.config);
      this.booter.update(this.settings);
      this.log.info("reload: running on the embedded default; boot templates and bootloaders re-read");
      return;
    }
    let next: Config;
    try {
      next = loadConfigFile(this.opts.configPath);
    } catch (err) {
      this.log.error({ err: (err as Error).message }, "reload refused: the config file has problems; still running on the previous config");
      return;
    }
    const restartKeys: string[] = (["server", "dhcp", "tftp", "http", "stateDir"] as const).filter(
      (k) => JSON.stringify(next[k]) !== JSON.stringify(this.config[k]),
    );
    if (next.api.listen !== this.config.api.listen) restartKeys.push("api.listen");
    if (restartKeys.length) this.log.warn({ keys: restartKeys }, "reload: these settings change only on restart");
    const settings = this.buildSettings({ ...next, server: this.config.server, http: this.config.http });
    this.config = { ...next, server: this.config.server, dhcp: this.config.dhcp, tftp: this.config.tftp, http: this.config.http, stateDir: this.config.stateDir };
    this.tokens = this.resolveTokens(this.config);
    this.settings = settings;
    this.booter.update(settings);
    // A mirror URL may have changed; downloads under way in the old service finish on their own.
    this.assets = new AssetService(assetSettingsFrom(this.config), this.log.child({ component: "assets" }));
    void prefetchProfiles(this.config.profiles, this.assetDeps());
    // Provider settings may have changed: the next use builds them anew.
    void this.closeProviders();
    this.syncMachines(this.config);
    this.log.info({ profiles: Object.keys(settings.profiles).length, machines: next.machines.length }, "reloaded the config file");
  }

  stop(): Promise<void> {
    this.stopped ??= (async () => {
      await Promise.allSettled([
        this.closeProviders(),
        this.dhcp?.stop(),
        this.tftp?.stop(),
        ...this.httpServers.map(
          (s) =>
            new Promise<void>((resolve) => {
              s.close(() => resolve());
              // Kernel downloads can run for minutes: cut them, don't wait.
              (s as { closeAllConnections?: () => void }).closeAllConnections?.();
            }),
        ),
      ]);
      this.store.flush();
      this.db.close();
      // A start that failed half-way never ran: its caller reports why.
      if (this.running) this.log.info("talos-netboot stopped");
    })();
    return this.stopped;
  }
}

function usesGrub(cfg: Config): boolean {
  return Object.values(cfg.profiles).some((p) => p.bootloader === "grub");
}

function splitListen(listen: string): [string, number] {
  const i = listen.lastIndexOf(":");
  return [listen.slice(0, i).replace(/^\[|\]$/g, ""), Number(listen.slice(i + 1))];
}

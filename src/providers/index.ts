/**
 * Building the configured providers, for the daemon, the CLI and the
 * orchestrator.
 */
import { join } from "node:path";
import type { Mac } from "../boot/mac.js";
import type { Logger } from "../log.js";
import type { VmStore } from "../store/vms.js";
import type { ProvidersConfig, ProxmoxProviderConfig } from "./config.js";
import { ProviderError } from "./errors.js";
import { proxmoxProviderFromConfig, pveClientFromConfig } from "./proxmox/provider.js";
import { QemuProvider } from "./qemu/provider.js";
import type { ProviderKind, VmProvider } from "./types.js";

export interface ProviderDeps {
  store: VmStore;
  /** The daemon's state dir: local VMs default to `<stateDir>/qemu`. */
  stateDir: string;
  log: Logger;
  /** MACs registered as machines by hand: never allocated to a VM. */
  macTaken?: (mac: Mac) => boolean;
}

/** One provider of the kind asked for, or a ProviderError naming the missing config section. */
export function createProvider(kind: ProviderKind, cfg: ProvidersConfig, deps: ProviderDeps): VmProvider {
  if (kind === "proxmox") {
    if (!cfg.proxmox) throw new ProviderError("PROVIDER_NOT_CONFIGURED", "providers.proxmox is not configured", 400);
    return proxmoxProviderFromConfig(cfg.proxmox, { store: deps.store, log: deps.log.child({ provider: "proxmox" }), macTaken: deps.macTaken });
  }
  if (!cfg.qemu) throw new ProviderError("PROVIDER_NOT_CONFIGURED", "providers.qemu is not configured", 400);
  return new QemuProvider({
    config: cfg.qemu,
    dir: cfg.qemu.stateDir ?? join(deps.stateDir, "qemu"),
    store: deps.store,
    log: deps.log.child({ provider: "qemu" }),
    macTaken: deps.macTaken,
  });
}

/**
 * `talos-netboot check --probe`: `GET /version` proves the URL, the TLS
 * trust (fingerprint or CA) and the token. Resolves to PVE's version.
 */
export async function probeProxmox(cfg: ProxmoxProviderConfig, log?: Logger): Promise<string> {
  const client = pveClientFromConfig(cfg, log);
  try {
    return (await client.version()).version;
  } finally {
    await client.close();
  }
}

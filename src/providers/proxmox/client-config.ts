import { readFileSync, statSync } from "node:fs";
import type { Logger } from "../../log.js";
import { silentLogger } from "../../log.js";
import type { ProxmoxProviderConfig } from "../config.js";
import { ProviderError } from "../errors.js";
import { PveClient } from "./client.js";

/** A client for the `providers.proxmox` config: reads the token secret file (warning when others can read it) and the CA file. */
export function pveClientFromConfig(cfg: ProxmoxProviderConfig, log: Logger = silentLogger()): PveClient {
  let secret = cfg.tokenSecret;
  if (cfg.tokenSecretFile !== undefined) {
    const mode = statSync(cfg.tokenSecretFile).mode;
    if ((mode & 0o077) !== 0) log.warn({ file: cfg.tokenSecretFile }, "the Proxmox token secret file is readable by others: chmod 600 it");
    secret = readFileSync(cfg.tokenSecretFile, "utf8").trim();
  }
  if (!secret) throw new ProviderError("CONFIG", "providers.proxmox: the token secret is empty");
  const trust = cfg.caFile !== undefined ? { ca: readFileSync(cfg.caFile) } : { fingerprint: cfg.fingerprint! };
  return new PveClient({ url: cfg.url, tokenId: cfg.tokenId, tokenSecret: secret, trust, log });
}

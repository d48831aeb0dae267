import type { Logger } from "../../log.js";
import type { VmStore } from "../../store/vms.js";
import type { ProxmoxProviderConfig } from "../config.js";
import type { PveClient } from "./client.js";

/** What the provider's parts share: one client, one store, one config. */
export interface PveContext {
  cfg: ProxmoxProviderConfig;
  client: PveClient;
  store: VmStore;
  log: Logger;
  /** First task poll delay. */
  pollMs: number;
}

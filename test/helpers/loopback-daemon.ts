import { join } from "node:path";
import { parseConfigText } from "../../src/config/load.js";
import { Daemon } from "../../src/daemon.js";
import { silentLogger } from "../../src/log.js";
import { bootFiles, tempDir } from "./fixtures.js";
import { freeTcpPort } from "./ports.js";

export interface LoopbackDaemon {
  daemon: Daemon;
  /** `http://127.0.0.1:<port>` */
  base: string;
  files: ReturnType<typeof bootFiles>;
}

/**
 * The daemon in-process with only HTTP on (no DHCP or TFTP: no privileged
 * ports, no broadcasts), on a free loopback port, with its own state dir and
 * boot files. `yaml(files)` adds the test's own keys (profiles, machines, talos…).
 */
export async function startLoopbackDaemon(token: string, yaml: (files: ReturnType<typeof bootFiles>) => string): Promise<LoopbackDaemon> {
  const files = bootFiles();
  const port = await freeTcpPort();
  const text = `
server: { address: 127.0.0.1 }
dhcp: { enabled: false }
tftp: { enabled: false }
http: { port: ${port}, address: 127.0.0.1 }
stateDir: ${join(tempDir(), "state")}
bootloaders: { dir: ${files.dir}, grubEfi: null }
api: { tokens: ["${token}"] }
${yaml(files)}
`;
  const daemon = await Daemon.start({ config: parseConfigText(text, "test"), log: silentLogger() });
  return { daemon, base: `http://127.0.0.1:${port}`, files };
}

/**
 * Our daemon as the benchmarks run it: the built CLI as its own process
 * (test/helpers/daemon-process), on a config written here, logging at the
 * default level `info` like a production install.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { killNow, startDaemon, type DaemonProcess } from "../helpers/daemon-process.js";
import { onEmergency } from "./processes.js";

export interface BenchDaemonOptions {
  work: string;
  address: string;
  interface?: string;
  dhcp?: boolean;
  tftpPort?: number;
  httpPort?: number;
  bootloadersDir: string;
  /** The kernel of profile `bench`. */
  kernel: string;
  /** Registered machines, all on profile `bench`. */
  macs: string[];
  netns?: string;
}

export const BENCH_TOKEN = "bench-token-0123456789abcdef";

/** Writes the config (JSON is YAML) and starts the daemon; it is SIGKILLed by PID if the benchmark dies. */
export async function startBenchDaemon(o: BenchDaemonOptions): Promise<{ daemon: DaemonProcess; stop: () => Promise<void> }> {
  const config = {
    server: { address: o.address, ...(o.interface ? { interface: o.interface } : {}) },
    dhcp: { enabled: o.dhcp ?? false, port: 67, pxePort: 4011 },
    tftp: { enabled: o.tftpPort !== undefined, port: o.tftpPort ?? 69 },
    http: { enabled: o.httpPort !== undefined, port: o.httpPort ?? 8080, address: o.address },
    stateDir: join(o.work, "state"),
    log: { level: "info", format: "json" },
    bootloaders: { dir: o.bootloadersDir, grubEfi: null },
    api: { tokens: [BENCH_TOKEN] },
    profiles: { bench: { kernel: o.kernel, initrd: [], cmdline: "console=ttyS0" } },
    machines: o.macs.map((mac) => ({ mac, profile: "bench" })),
    unknownMachines: "ignore",
  };
  const configPath = join(o.work, "talos-netboot.yaml");
  writeFileSync(configPath, `${JSON.stringify(config, null, 1)}\n`);
  const daemon = await startDaemon({ configPath, ...(o.netns ? { netns: o.netns } : {}), readyTimeoutMs: 30_000 });
  const forget = onEmergency(() => killNow(daemon));
  return {
    daemon,
    stop: async () => {
      await daemon.stop(5_000);
      forget();
    },
  };
}

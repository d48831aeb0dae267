/**
 * A boot network in two namespaces, for booting real firmware in QEMU
 * against the daemon:
 *
 *   lab ns:  br0 192.168.77.1 (server.address, server.interface) ── daemon (ProxyDHCP, TFTP, HTTP)
 *            ├─ tap per VM ── QEMU (SeaBIOS + iPXE ROM, or OVMF)
 *            └─ vlab ══ veth ══ vsite 192.168.77.2, fd77:77::2   site ns: dnsmasq, the site DHCP server
 *
 * dnsmasq hands out addresses only (no PXE options, no boot file, no TFTP),
 * like a site's DHCP server that knows nothing of network boot; it also sends
 * IPv6 router advertisements for a ULA prefix so iPXE's IPv6
 * autoconfiguration finishes at once instead of timing out. Two DHCP servers
 * cannot both bind :67 in one namespace, hence the second one. Every address
 * exists only inside these namespaces. Every process is started by this
 * module, remembered by PID and killed by PID; teardown also runs from a
 * process "exit" handler, so namespaces go away even when a test fails.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, type WriteStream } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { z } from "zod";
import { killNow, startDaemon, type DaemonProcess } from "./daemon-process.js";
import { deleteNamespaces, ip, runIn, waitUntil } from "./netns.js";
import { requireRoot, requireTool, unmet } from "./tools.js";

export const LAB = {
  server: "192.168.77.1",
  site: "192.168.77.2",
  prefixLength: 24,
  dhcpRange: ["192.168.77.100", "192.168.77.199"],
  /** ULA prefix of the router advertisements. */
  ula: "fd77:77::",
  httpPort: 8080,
  bridge: "br0",
} as const;

export const FIRMWARE_FILES = {
  ovmfCode: { path: "/usr/share/OVMF/OVMF_CODE_4M.fd", pkg: "ovmf" },
  ovmfVars: { path: "/usr/share/OVMF/OVMF_VARS_4M.fd", pkg: "ovmf" },
  /** The iPXE option ROM QEMU loads by default for virtio-net (BIOS and EFI images in one file). */
  virtioRom: { path: "/usr/lib/ipxe/qemu/efi-virtio.rom", pkg: "ipxe-qemu" },
  ipxeEfi: { path: "/usr/lib/ipxe/ipxe.efi", pkg: "ipxe" },
  grubNetEfi: { path: "/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed", pkg: "grub-efi-amd64-signed" },
  busybox: { path: "/bin/busybox", pkg: "busybox-static" },
} as const;

/** Everything the firmware tests need; false (skip) or a throw under CI when something is missing. */
export function labPrerequisites(): boolean {
  const files = Object.values(FIRMWARE_FILES).every((f) => existsSync(f.path) || unmet(`${f.path} not found — apt-get install ${f.pkg}`));
  return (
    requireRoot() &&
    requireTool("ip", "iproute2") &&
    requireTool("qemu-system-x86_64", "qemu-system-x86") &&
    requireTool("dnsmasq", "dnsmasq-base") &&
    requireTool("ethtool", "ethtool") &&
    requireTool("curl", "curl") &&
    requireTool("apt-get", "apt") &&
    requireTool("dpkg", "dpkg") &&
    (existsSync("/dev/net/tun") || unmet("/dev/net/tun is missing: QEMU needs TUN/TAP")) &&
    files
  );
}

/** KVM fails on the machines this suite was written on ("emulation failure"): TCG unless asked. */
export function useKvm(): boolean {
  return process.env.TALOS_NETBOOT_KVM === "1";
}

/** ethtool in a namespace; throws with its message when it fails. */
async function ethtool(ns: string, args: string[]): Promise<void> {
  const r = await runIn(ns, "ethtool", args, 10_000);
  if (r.code !== 0) throw new Error(`ethtool ${args.join(" ")} in ${ns}: ${r.stderr}`);
}

// ---- the API, as seen from the lab --------------------------------------------------

const timelineEntry = z.object({ time: z.string(), step: z.string(), details: z.record(z.string(), z.unknown()) });
export type TimelineEntry = z.infer<typeof timelineEntry>;
const machineSchema = z.object({
  mac: z.string(),
  profile: z.string(),
  next: z.enum(["profile", "local"]),
  source: z.string(),
  timeline: z.array(timelineEntry),
});
export type MachineView = z.infer<typeof machineSchema>;
const unknownSchema = z.object({
  machines: z.array(z.object({ mac: z.string(), firstSeen: z.string(), lastSeen: z.string(), count: z.number(), lastFacts: z.record(z.string(), z.unknown()) })),
});
export type UnknownMachines = z.infer<typeof unknownSchema>["machines"];

// ---- virtual machines ------------------------------------------------------------

export type Firmware = "bios" | "uefi";

export interface VmOptions {
  /** Names the tap, the log files and the NVRAM copy; one word. */
  name: string;
  mac: string;
  firmware: Firmware;
  /** SMBIOS system UUID (arrives as DHCP option 97). */
  uuid?: string;
  memoryMb?: number;
  /** Hard limit: the VM is killed (SIGKILL, by PID) after this long. */
  timeoutMs?: number;
}

export interface Vm {
  readonly name: string;
  readonly pid: number;
  /** When QEMU was started: the machine's power-on. */
  readonly poweredOnAt: number;
  readonly serialPath: string;
  /** Serial console text so far. */
  serial(): string;
  /** SeaBIOS debug output (I/O port 0x402) so far; empty for OVMF. */
  debugcon(): string;
  /** Resolves when QEMU has exited; `killed` when the hard limit or stop() ended it. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; killed: boolean }>;
  /** Resolves true when QEMU exited within `ms`, false otherwise (the VM keeps running). */
  exitWithin(ms: number): Promise<boolean>;
  /** Kills QEMU by PID and waits for it. */
  stop(): Promise<void>;
  /** The last lines of the serial console, for assertion messages. */
  tail(lines?: number): string;
}

interface Tracked {
  what: string;
  child: ChildProcess;
}

export interface SiteDhcpOptions {
  /**
   * Make the site server name the boot host as next-server (siaddr), still
   * with no boot file and no PXE options. Default: dnsmasq's own behaviour,
   * siaddr = its own address.
   */
  nextServer?: string;
}

export class NetbootLab {
  readonly ns: { lab: string; site: string };
  readonly dir: string;
  daemon?: DaemonProcess;
  private site?: Tracked;
  private readonly vms = new Set<Tracked>();
  private readonly others = new Set<Tracked>();
  private readonly taps = new Set<string>();
  private readonly measurements: string[] = [];
  private readonly onExit = () => this.killAllNow();
  private torn = false;

  private constructor(tag: string) {
    this.ns = { lab: `${tag}-lab`, site: `${tag}-site` };
    this.dir = mkdtempSync(join(tmpdir(), `${tag}-`));
  }

  /** Builds the namespaces, bridge and veth. `tag` must be unique per process, e.g. `tnbf-${process.pid}`. */
  static async create(tag: string): Promise<NetbootLab> {
    const lab = new NetbootLab(tag);
    process.once("exit", lab.onExit);
    try {
      lab.deleteNamespaces();
      await lab.setUpNetwork();
    } catch (err) {
      await lab.teardown();
      throw err;
    }
    return lab;
  }

  private async setUpNetwork(): Promise<void> {
    const { lab, site } = this.ns;
    ip("netns", "add", lab);
    ip("netns", "add", site);
    ip("-n", lab, "link", "set", "lo", "up");
    ip("-n", site, "link", "set", "lo", "up");
    // No STP, no forwarding delay: ports forward the moment a VM opens its tap.
    // A fixed bridge MAC: it would otherwise follow the lowest port MAC as taps come and go.
    ip("-n", lab, "link", "add", LAB.bridge, "address", "02:77:00:00:00:01", "type", "bridge", "stp_state", "0", "forward_delay", "0", "mcast_snooping", "0");
    ip("-n", lab, "addr", "add", `${LAB.server}/${LAB.prefixLength}`, "dev", LAB.bridge);
    ip("-n", lab, "link", "add", "vlab", "type", "veth", "peer", "name", "vsite", "netns", site);
    ip("-n", lab, "link", "set", "vlab", "master", LAB.bridge);
    ip("-n", site, "addr", "add", `${LAB.site}/${LAB.prefixLength}`, "dev", "vsite");
    ip("-n", site, "addr", "add", `${LAB.ula}2/64`, "dev", "vsite", "nodad");
    ip("-n", lab, "link", "set", "vlab", "up");
    ip("-n", lab, "link", "set", LAB.bridge, "up");
    ip("-n", site, "link", "set", "vsite", "up");
    // Locally sent packets would otherwise leave with a partial checksum that
    // the emulated NIC hands to firmware as is; firmware drops them.
    await ethtool(lab, ["-K", LAB.bridge, "tx", "off"]);
    await ethtool(lab, ["-K", "vlab", "tx", "off"]);
    await ethtool(site, ["-K", "vsite", "tx", "off"]);
    await waitUntil("vlab carrier", () => (/LOWER_UP/.test(ip("-n", lab, "link", "show", "vlab")) ? true : undefined), 5_000);
  }

  private track(what: string, child: ChildProcess, set: Set<Tracked>): Tracked {
    if (child.pid === undefined) throw new Error(`could not start ${what}`);
    const t = { what, child };
    set.add(t);
    child.once("close", () => set.delete(t));
    return t;
  }

  // ---- site DHCP ----------------------------------------------------------------

  get siteDhcpLog(): string {
    return join(this.dir, "dnsmasq.log");
  }

  /** (Re)starts dnsmasq as the site DHCP server; resolves when it has bound its sockets. */
  async startSiteDhcp(opts: SiteDhcpOptions = {}): Promise<void> {
    await this.stopSiteDhcp();
    const log = this.siteDhcpLog;
    writeFileSync(log, "");
    const args = [
      "--keep-in-foreground",
      "--conf-file=/dev/null",
      "--port=0", // no DNS
      "--interface=vsite",
      "--bind-interfaces",
      `--dhcp-range=${LAB.dhcpRange[0]},${LAB.dhcpRange[1]},255.255.255.0,1h`,
      `--dhcp-range=${LAB.ula},ra-only,64`,
      "--enable-ra",
      "--dhcp-authoritative",
      `--dhcp-leasefile=${join(this.dir, "dnsmasq.leases")}`,
      `--pid-file=${join(this.dir, "dnsmasq.pid")}`,
      "--log-dhcp",
      `--log-facility=${log}`,
      "--user=root",
      "--group=root",
      ...(opts.nextServer ? [`--dhcp-boot=,,${opts.nextServer}`] : []),
    ];
    const child = spawn("ip", ["netns", "exec", this.ns.site, "dnsmasq", ...args], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    this.site = this.track("dnsmasq", child, this.others);
    await waitUntil(
      "dnsmasq to bind its DHCP socket",
      () => {
        if (child.exitCode !== null) throw new Error(`dnsmasq exited with ${child.exitCode}: ${stderr}`);
        return /sockets bound exclusively to interface vsite/.test(readFileSync(log, "utf8")) ? true : undefined;
      },
      10_000,
      () => `${stderr}\n${readFileSync(log, "utf8")}`,
    );
  }

  async stopSiteDhcp(): Promise<void> {
    const t = this.site;
    this.site = undefined;
    if (t) await stopChild(t.child, 3_000);
  }

  siteDhcpLogText(): string {
    return existsSync(this.siteDhcpLog) ? readFileSync(this.siteDhcpLog, "utf8") : "";
  }

  // ---- the daemon ----------------------------------------------------------------

  /** Writes the config into the lab directory and starts the daemon in the lab namespace. */
  async startDaemon(config: Record<string, unknown>): Promise<DaemonProcess> {
    if (this.daemon) throw new Error("the lab's daemon is already running");
    const path = join(this.dir, "talos-netboot.yaml");
    writeFileSync(path, stringify(config, { lineWidth: 0 }), { mode: 0o600 });
    this.daemon = await startDaemon({ configPath: path, netns: this.ns.lab });
    return this.daemon;
  }

  /** A daemon config for this lab: addresses, ports, state under the lab directory, debug JSON logs. */
  daemonConfig(over: { token: string; profiles: Record<string, unknown>; machines: unknown[]; unknownMachines?: string }): Record<string, unknown> {
    return {
      server: { address: LAB.server, interface: LAB.bridge },
      dhcp: { enabled: true, port: 67, pxePort: 4011 },
      tftp: { enabled: true, port: 69 },
      http: { enabled: true, port: LAB.httpPort, address: "0.0.0.0" },
      stateDir: join(this.dir, "state"),
      log: { level: "debug", format: "json" },
      bootloaders: { dir: "/usr/lib/ipxe", grubEfi: FIRMWARE_FILES.grubNetEfi.path },
      api: { tokens: [over.token] },
      profiles: over.profiles,
      machines: over.machines,
      unknownMachines: over.unknownMachines ?? "ignore",
    };
  }

  /** A control API call from inside the lab (curl in the lab namespace). */
  /** An API call from inside the lab (curl); `body` is sent as JSON. Slow calls (VM creation) get `timeoutSec`. */
  async api(token: string, method: string, path: string, body?: unknown, timeoutSec = 10): Promise<{ status: number; body: unknown; text: string }> {
    const url = `http://${LAB.server}:${LAB.httpPort}/api/v1${path}`;
    const args = ["-sS", "--max-time", String(timeoutSec), "-X", method, "-H", `X-API-Key: ${token}`, "-w", "\n%{http_code}"];
    if (body !== undefined) args.push("-H", "Content-Type: application/json", "--data-binary", JSON.stringify(body));
    const r = await runIn(this.ns.lab, "curl", [...args, url], (timeoutSec + 10) * 1000);
    if (r.code !== 0) throw new Error(`curl ${method} ${url} failed (exit ${r.code}): ${r.stderr}`);
    const stdout = r.stdout.toString("utf8");
    const cut = stdout.lastIndexOf("\n");
    const text = stdout.slice(0, cut);
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON: the text stays for the assertion message
    }
    return { status: Number(stdout.slice(cut + 1)) || 0, body: parsed, text };
  }

  /** GET /api/v1/machines/{mac}, validated; throws on any other status. */
  async machine(token: string, mac: string): Promise<MachineView> {
    const r = await this.api(token, "GET", `/machines/${mac}`);
    if (r.status !== 200) throw new Error(`GET /api/v1/machines/${mac}: ${r.status} ${r.text}`);
    return machineSchema.parse(r.body);
  }

  async unknownMachines(token: string): Promise<UnknownMachines> {
    const r = await this.api(token, "GET", "/unknown-machines");
    if (r.status !== 200) throw new Error(`GET /api/v1/unknown-machines: ${r.status} ${r.text}`);
    return unknownSchema.parse(r.body).machines;
  }

  // ---- packet capture ---------------------------------------------------------------

  /** tcpdump on the bridge (text, one line per packet) until teardown; returns a reader of what it printed. */
  capture(name: string, filter: string): () => string {
    const path = join(this.dir, `${name}.tcpdump.txt`);
    const out = createWriteStream(path);
    const child = spawn("ip", ["netns", "exec", this.ns.lab, "tcpdump", "-i", LAB.bridge, "-n", "-l", "--immediate-mode", filter], { stdio: ["ignore", "pipe", "ignore"] });
    child.stdout!.pipe(out);
    this.track(`tcpdump ${name}`, child, this.others);
    return () => (existsSync(path) ? readFileSync(path, "utf8") : "");
  }

  // ---- QEMU ----------------------------------------------------------------------

  private tapFor(name: string): string {
    const tap = `t-${name}`.slice(0, 15);
    if (!this.taps.has(tap)) {
      ip("-n", this.ns.lab, "tuntap", "add", "dev", tap, "mode", "tap");
      ip("-n", this.ns.lab, "link", "set", tap, "master", LAB.bridge);
      ip("-n", this.ns.lab, "link", "set", tap, "up");
      this.taps.add(tap);
    }
    return tap;
  }

  /** Powers a VM on: QEMU in the lab namespace, booting from its NIC only. */
  powerOn(opts: VmOptions): Vm {
    if (!/^[a-z0-9-]{1,12}$/.test(opts.name)) throw new Error(`VM name must be 1–12 of [a-z0-9-]: ${opts.name}`);
    const tap = this.tapFor(opts.name);
    const serialPath = join(this.dir, `${opts.name}-${Date.now()}.serial.log`);
    const debugPath = serialPath.replace(/\.serial\.log$/, ".debugcon.log");
    const args = [
      "-accel",
      useKvm() ? "kvm" : "tcg",
      ...(useKvm() ? ["-cpu", "host"] : []),
      "-m",
      String(opts.memoryMb ?? 512),
      "-nodefaults",
      "-display",
      "none",
      "-monitor",
      "none",
      // A reboot ends the run like a power-off: nothing boots twice by accident.
      "-no-reboot",
      "-chardev",
      "stdio,id=serial0,signal=off",
      "-serial",
      "chardev:serial0",
      "-netdev",
      `tap,id=net0,ifname=${tap},script=no,downscript=no`,
    ];
    if (opts.uuid) args.push("-smbios", `type=1,uuid=${opts.uuid}`);
    if (opts.firmware === "bios") {
      args.push(
        "-device",
        // QEMU's default ROM for virtio-net is ipxe-qemu's efi-virtio.rom. (Naming
        // that file in romfile= loads it without a boot entry: leave the default.)
        `virtio-net-pci,netdev=net0,mac=${opts.mac},bootindex=1`,
        // SeaBIOS's own progress ("Booting from ROM", "Booting from Hard Disk") on I/O port 0x402.
        "-chardev",
        `file,id=debugcon0,path=${debugPath}`,
        "-device",
        "isa-debugcon,iobase=0x402,chardev=debugcon0",
      );
    } else {
      // NVRAM persists across power cycles of the same VM, as on real hardware.
      const vars = join(this.dir, `${opts.name}.OVMF_VARS.fd`);
      if (!existsSync(vars)) copyFileSync(FIRMWARE_FILES.ovmfVars.path, vars);
      args.push(
        "-machine",
        "q35",
        "-drive",
        `if=pflash,format=raw,unit=0,readonly=on,file=${FIRMWARE_FILES.ovmfCode.path}`,
        "-drive",
        `if=pflash,format=raw,unit=1,file=${vars}`,
        // Empty romfile: OVMF's own PXE stack runs, not the iPXE in QEMU's ROM.
        "-device",
        `virtio-net-pci,netdev=net0,mac=${opts.mac},bootindex=1,romfile=`,
        "-device",
        "virtio-rng-pci",
      );
    }
    const poweredOnAt = Date.now();
    const child = spawn("ip", ["netns", "exec", this.ns.lab, "qemu-system-x86_64", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    this.track(`qemu ${opts.name}`, child, this.vms);
    const pid = child.pid!;
    const log: WriteStream = createWriteStream(serialPath);
    let serial = "";
    let stderr = "";
    child.stdout!.on("data", (d: Buffer) => {
      serial += d.toString("latin1");
      log.write(d);
    });
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    let killed = false;
    const kill = () => {
      if (child.exitCode === null && child.signalCode === null) {
        killed = true;
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
    };
    const limit = setTimeout(kill, opts.timeoutMs ?? 150_000);
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; killed: boolean }>((resolve) => {
      child.once("close", (code, signal) => {
        clearTimeout(limit);
        log.end();
        if (code !== 0 && !killed && stderr) serial += `\n[qemu stderr] ${stderr}`;
        resolve({ code, signal, killed });
      });
    });
    const readDebug = () => (existsSync(debugPath) ? readFileSync(debugPath, "latin1") : "");
    return {
      name: opts.name,
      pid,
      poweredOnAt,
      serialPath,
      serial: () => serial,
      debugcon: readDebug,
      exited,
      exitWithin: async (ms) => {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
        try {
          return await Promise.race([exited.then(() => true as const), timeout]);
        } finally {
          clearTimeout(timer);
        }
      },
      stop: async () => {
        kill();
        await exited;
      },
      tail: (lines = 30) => {
        const text = serial.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "").replace(/\r/g, "");
        return `--- serial of ${opts.name} (pid ${pid}, last ${lines} lines; full log ${serialPath}) ---\n${text.split("\n").filter((l) => l.trim()).slice(-lines).join("\n")}${stderr ? `\n--- qemu stderr ---\n${stderr}` : ""}`;
      },
    };
  }

  /** Records and prints a machine's power-on → config time (for the README; never asserted). */
  recordBootTime(label: string, poweredOnAt: number, configFetchedAt: string): void {
    const line = `${label}: power-on → config fetched in ${((Date.parse(configFetchedAt) - poweredOnAt) / 1000).toFixed(1)} s`;
    this.measurements.push(line);
    console.info(`[firmware] ${line}`);
  }

  // ---- teardown ---------------------------------------------------------------------

  private deleteNamespaces(): void {
    deleteNamespaces(Object.values(this.ns));
  }

  /** Synchronous: for the process "exit" handler, where nothing can be awaited. */
  killAllNow(): void {
    for (const t of [...this.vms, ...this.others]) {
      try {
        if (t.child.exitCode === null && t.child.signalCode === null) process.kill(t.child.pid!, "SIGKILL");
      } catch {
        // already gone
      }
    }
    killNow(this.daemon);
    this.deleteNamespaces();
  }

  /**
   * Stops everything this lab started (by PID), deletes the namespaces and,
   * unless TALOS_NETBOOT_KEEP=1 or `keepLogs`, the lab directory.
   */
  async teardown(opts: { keepLogs?: boolean } = {}): Promise<void> {
    if (this.torn) return;
    this.torn = true;
    if (this.measurements.length) console.info(`[firmware] measured under ${useKvm() ? "KVM" : "TCG"}:\n  ${this.measurements.join("\n  ")}`);
    await Promise.allSettled([...this.vms].map((t) => stopChild(t.child, 0)));
    await Promise.allSettled([this.daemon?.stop(5_000), ...[...this.others].map((t) => stopChild(t.child, 3_000))]);
    this.deleteNamespaces();
    process.off("exit", this.onExit);
    const keep = opts.keepLogs || process.env.TALOS_NETBOOT_KEEP === "1";
    if (keep && this.daemon) {
      writeFileSync(join(this.dir, "daemon.log"), this.daemon.logs.map((l) => (typeof l.raw === "string" ? l.raw : JSON.stringify(l))).join("\n"));
    }
    if (keep) console.warn(`[netboot-lab] logs kept in ${this.dir}`);
    else rmSync(this.dir, { recursive: true, force: true });
  }
}

/** SIGTERM (or SIGKILL when graceMs is 0) by PID, SIGKILL after graceMs; resolves when the process is gone. */
async function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const pid = child.pid;
  const gone = new Promise<void>((resolve) => child.once("close", () => resolve()));
  try {
    process.kill(pid, graceMs === 0 ? "SIGKILL" : "SIGTERM");
  } catch {
    return;
  }
  const timer = setTimeout(() => {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone meanwhile
    }
  }, graceMs);
  await gone;
  clearTimeout(timer);
}

// ---- reading a timeline --------------------------------------------------------------

/** Timeline entries at or after a moment (the daemon and the tests share the host clock). */
export function entriesSince(timeline: readonly TimelineEntry[], since: number): TimelineEntry[] {
  return timeline.filter((e) => Date.parse(e.time) >= since - 50);
}

/**
 * The entries of `timeline` matching `want` in order (other entries may sit
 * between them), or the index of the first step that could not be found.
 */
export function matchSteps(
  timeline: readonly TimelineEntry[],
  want: ReadonlyArray<{ step: string; details?: Record<string, unknown> }>,
): { ok: true; matched: TimelineEntry[] } | { ok: false; missing: number } {
  const matched: TimelineEntry[] = [];
  let from = 0;
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!;
    const at = timeline.findIndex(
      (e, k) => k >= from && e.step === w.step && Object.entries(w.details ?? {}).every(([key, v]) => JSON.stringify(e.details[key]) === JSON.stringify(v)),
    );
    if (at < 0) return { ok: false, missing: i };
    matched.push(timeline[at]!);
    from = at + 1;
  }
  return { ok: true, matched };
}

export function formatTimeline(timeline: readonly TimelineEntry[]): string {
  return timeline.map((e) => `  ${e.time} ${e.step} ${JSON.stringify(e.details)}`).join("\n");
}

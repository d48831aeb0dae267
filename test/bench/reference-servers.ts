/**
 * The servers we are measured against, each run as our own process (never the
 * system service) on its own config in a temporary directory, with the
 * settings Debian ships where they matter for speed.
 */
import { createConnection } from "node:net";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { RawPeer } from "../helpers/tftp-client.js";
import { encodeRequest } from "../../src/tftp/codec.js";
import { waitUntil } from "../helpers/netns.js";
import { startBackground, type Background } from "./processes.js";

const READY_MS = 10_000;

/** tftpd-hpa's listener on 127.0.0.1:port serving `dir` (--secure: names are relative to it). */
export async function startTftpdHpa(dir: string, port: number): Promise<Background> {
  const server = startBackground("tftpd-hpa", "/usr/sbin/in.tftpd", ["--foreground", "--listen", "--address", `127.0.0.1:${port}`, "--secure", dir]);
  return ready(server, "tftpd-hpa to answer a probe", () => tftpAnswers(port));
}

/** Waits (bounded) until `check` holds; a server that does not get there is stopped. */
async function ready(server: Background, what: string, check: () => boolean | Promise<boolean>): Promise<Background> {
  try {
    await waitUntil(what, async () => (await check()) || undefined, READY_MS, () => server.output());
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}

/** True when something on 127.0.0.1:port answers an RRQ (a missing file's ERROR will do). */
async function tftpAnswers(port: number): Promise<boolean> {
  const peer = await RawPeer.open();
  try {
    await peer.send(encodeRequest("rrq", "bench-readiness-probe", "octet", []), port);
    return (await peer.next(200)) !== undefined;
  } finally {
    await peer.close();
  }
}

/**
 * nginx with Debian's stock performance settings (worker_processes auto,
 * sendfile, tcp_nopush), access log off like ours, serving `root` on
 * 127.0.0.1:port. Every path it writes is under `workDir`.
 */
export async function startNginx(workDir: string, root: string, port: number): Promise<Background> {
  const conf = join(workDir, "nginx.conf");
  const temp = (name: string) => `${name}_temp_path ${join(workDir, `nginx-${name}`)};`;
  writeFileSync(
    conf,
    [
      "worker_processes auto;",
      `pid ${join(workDir, "nginx.pid")};`,
      `error_log ${join(workDir, "nginx-error.log")} warn;`,
      "events { worker_connections 1024; }",
      "http {",
      "  access_log off;",
      "  sendfile on;",
      "  tcp_nopush on;",
      "  default_type application/octet-stream;",
      `  ${["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map(temp).join(" ")}`,
      `  server { listen 127.0.0.1:${port}; root ${root}; }`,
      "}",
      "",
    ].join("\n"),
  );
  const server = startBackground("nginx", "nginx", ["-p", workDir, "-e", join(workDir, "nginx-error.log"), "-c", conf, "-g", "daemon off;"]);
  return ready(server, "nginx to accept connections", () => tcpAccepts(port));
}

export function tcpAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: "127.0.0.1", port });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/**
 * dnsmasq as a ProxyDHCP server only (DNS off, no leases handed out) on
 * `iface` in network namespace `netns`, offering iPXE to x64 UEFI (arch 7
 * and 9) and undionly.kpxe to BIOS, as the DESIGN's reference setup does.
 * It logs each answer, as it does by default; to a file, never the host's syslog.
 */
export async function startDnsmasqProxy(workDir: string, netns: string, iface: string, subnet: string): Promise<Background> {
  const conf = join(workDir, "dnsmasq.conf");
  writeFileSync(
    conf,
    [
      "port=0",
      "no-resolv",
      "no-hosts",
      `interface=${iface}`,
      "bind-interfaces",
      `dhcp-range=${subnet},proxy`,
      'pxe-service=BC_EFI,"talos",ipxe.efi',
      'pxe-service=X86-64_EFI,"talos",ipxe.efi',
      'pxe-service=x86PC,"talos",undionly.kpxe',
      `log-facility=${join(workDir, "dnsmasq.log")}`,
      "",
    ].join("\n"),
  );
  const server = startBackground(
    "dnsmasq",
    "dnsmasq",
    ["--no-daemon", `--conf-file=${conf}`, `--pid-file=${join(workDir, "dnsmasq.pid")}`, `--dhcp-leasefile=${join(workDir, "dnsmasq.leases")}`],
    { netns },
  );
  return ready(server, "dnsmasq to bind its DHCP socket", () => {
    if (server.exited()) throw new Error(`dnsmasq exited at start:\n${server.output()}`);
    return /DHCP, sockets bound/.test(server.output());
  });
}

/**
 * UDP sockets, optionally tied to one network interface. Node's dgram cannot
 * set SO_BINDTODEVICE, so a device-bound socket is created by the native addon
 * (native/netboot_net.c) and handed to dgram as an fd. Without a device, plain
 * dgram is used and the addon is not needed at all.
 */
import dgram from "node:dgram";
import { closeSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { packageRoot } from "../package-root.js";
import { PortBindError } from "./errors.js";

export interface UdpOptions {
  address: string;
  port: number;
  /** Interface name for SO_BINDTODEVICE: the socket then hears and sends only there. */
  device?: string;
  broadcast: boolean;
  /**
   * Off by default: on Linux, SO_REUSEADDR lets two UDP sockets share a port,
   * which would hide a second DHCP server behind a silent split of the traffic
   * instead of an EADDRINUSE the operator can act on.
   */
  reuseAddr?: boolean;
  /** Setting named in a bind error (e.g. `server.dhcp.port`). */
  configKey: string;
  /** Setting named when the device cannot be used. */
  deviceConfigKey?: string;
}

interface NativeNet {
  openUdpSocket(opts: { address: string; port: number; device?: string; broadcast: boolean; reuseAddr: boolean }): number;
}

const ADDON_PATH = join("build", "Release", "netboot_net.node");

let cached: NativeNet | Error | undefined;

/** The addon, or the reason it could not be loaded (kept, so the daemon can say why). */
export function loadNativeNet(): NativeNet | Error {
  if (cached) return cached;
  try {
    const root = packageRoot();
    const require = createRequire(import.meta.url);
    cached = require(join(root, ADDON_PATH)) as NativeNet;
  } catch (err) {
    cached = err instanceof Error ? err : new Error(String(err));
  }
  return cached;
}

export async function openUdp(opts: UdpOptions): Promise<dgram.Socket> {
  return opts.device === undefined ? openPlain(opts) : openOnDevice(opts, opts.device);
}

async function openPlain(opts: UdpOptions): Promise<dgram.Socket> {
  const socket = dgram.createSocket({ type: "udp4", reuseAddr: opts.reuseAddr ?? false });
  try {
    await bindSocket(socket, { address: opts.address, port: opts.port, exclusive: true });
  } catch (err) {
    socket.close();
    throw PortBindError.from(err, "udp", opts.port, opts.address, opts.configKey);
  }
  socket.setBroadcast(opts.broadcast);
  return socket;
}

async function openOnDevice(opts: UdpOptions, device: string): Promise<dgram.Socket> {
  const addon = loadNativeNet();
  const deviceKey = opts.deviceConfigKey ?? "server.interface";
  if (addon instanceof Error) {
    throw new Error(
      `${deviceKey} is set to "${device}", which needs the native addon ${ADDON_PATH} (SO_BINDTODEVICE); ` +
        `it could not be loaded: ${addon.message.split("\n")[0]}. Build it with \`npm rebuild\` in the talos-netboot ` +
        `directory (needs make, a C compiler and python3), or unset ${deviceKey}.`,
    );
  }
  let fd: number;
  try {
    fd = addon.openUdpSocket({
      address: opts.address,
      port: opts.port,
      device,
      broadcast: opts.broadcast,
      reuseAddr: opts.reuseAddr ?? false,
    });
  } catch (err) {
    if ((err as { syscall?: string }).syscall === "bind") {
      throw PortBindError.from(err, "udp", opts.port, `${opts.address} (interface ${device})`, opts.configKey);
    }
    throw new Error(`cannot use interface "${device}" (${deviceKey}): ${(err as Error).message}`, { cause: err });
  }
  const socket = dgram.createSocket({ type: "udp4" });
  try {
    await bindSocket(socket, { fd, exclusive: true });
  } catch (err) {
    // dgram did not take the fd over: it is still ours to close.
    closeSync(fd);
    throw err;
  }
  return socket;
}

function bindSocket(socket: dgram.Socket, options: dgram.BindOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    socket.once("error", onError);
    try {
      socket.bind(options, () => {
        socket.off("error", onError);
        resolve();
      });
    } catch (err) {
      socket.off("error", onError);
      reject(err);
    }
  });
}

/**
 * A port the daemon could not bind, with the one sentence an operator needs:
 * which port, why, and what to do about it.
 */
export class PortBindError extends Error {
  constructor(
    readonly protocol: "udp" | "tcp",
    readonly port: number,
    readonly address: string,
    readonly configKey: string,
    readonly code: string | undefined,
  ) {
    super(PortBindError.describe(protocol, port, address, configKey, code));
    this.name = "PortBindError";
  }

  static from(err: unknown, protocol: "udp" | "tcp", port: number, address: string, configKey: string): PortBindError {
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    return new PortBindError(protocol, port, address, configKey, code);
  }

  private static describe(protocol: string, port: number, address: string, key: string, code: string | undefined): string {
    const where = `${protocol.toUpperCase()} port ${port} on ${address}`;
    switch (code) {
      case "EACCES":
        return `cannot bind ${where}: permission denied — run as root, grant CAP_NET_BIND_SERVICE (the systemd unit does), or set ${key} to a port above 1023`;
      case "EADDRINUSE":
        return `cannot bind ${where}: another program is using it (dnsmasq, tftpd-hpa, a second talos-netboot?) — stop it or set ${key}`;
      case "EADDRNOTAVAIL":
        return `cannot bind ${where}: the address is not on this host — check server.address / the listen address`;
      default:
        return `cannot bind ${where}: ${code ?? "unknown error"} — check ${key}`;
    }
  }
}

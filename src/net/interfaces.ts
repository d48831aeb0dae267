import { networkInterfaces } from "node:os";

/**
 * The interface that holds `address`, if exactly one does. Without
 * server.interface, DHCP is bound to it: broadcast replies must leave by the
 * interface the clients are on, and a host's default route often leads
 * elsewhere (or does not exist on an isolated provisioning network).
 */
export function interfaceHolding(address: string, interfaces: ReturnType<typeof networkInterfaces> = networkInterfaces()): string | undefined {
  const names = Object.entries(interfaces)
    .filter(([, addrs]) => (addrs ?? []).some((a) => a.family === "IPv4" && a.address === address))
    .map(([name]) => name);
  return names.length === 1 ? names[0] : undefined;
}

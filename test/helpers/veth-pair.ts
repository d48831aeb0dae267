/**
 * Two network namespaces joined by one veth pair, the layout most netboot
 * tests need:
 *
 *   client ns (vcli <client>) ── veth ── server ns (vsrv <server>)
 *
 * The client gets a default route out of vcli so 255.255.255.255 has a way
 * out, which can only lead to the server namespace. Addresses exist only
 * inside the two namespaces.
 */
import { deleteNamespaces, ip, runIn, waitUntil } from "./netns.js";

export interface VethPair {
  srv: string;
  cli: string;
  srvIf: string;
  cliIf: string;
  server: string;
  client: string;
  /** Deletes both namespaces (and with them the veth pair); safe to call twice or after a failed setup. */
  remove(): void;
}

export interface VethPairOptions {
  /** Namespace name prefix; make it unique per test file and process (e.g. `tnbl-${process.pid}`). */
  tag: string;
  /** A /24 such as "192.0.2": the server is .1, the client .2. */
  subnet: string;
  /** MAC of the client's interface (the machine's MAC, as the server's neighbour table will see it). */
  clientMac?: string;
}

export async function createVethPair(o: VethPairOptions): Promise<VethPair> {
  const pair: VethPair = {
    srv: `${o.tag}-srv`,
    cli: `${o.tag}-cli`,
    srvIf: "vsrv",
    cliIf: "vcli",
    server: `${o.subnet}.1`,
    client: `${o.subnet}.2`,
    remove: () => deleteNamespaces([pair.srv, pair.cli]),
  };
  try {
    ip("netns", "add", pair.srv);
    ip("netns", "add", pair.cli);
    ip("-n", pair.srv, "link", "add", pair.srvIf, "type", "veth", "peer", "name", pair.cliIf, "netns", pair.cli);
    if (o.clientMac) ip("-n", pair.cli, "link", "set", pair.cliIf, "address", o.clientMac);
    ip("-n", pair.srv, "addr", "add", `${pair.server}/24`, "dev", pair.srvIf);
    ip("-n", pair.cli, "addr", "add", `${pair.client}/24`, "dev", pair.cliIf);
    for (const [ns, dev] of [
      [pair.srv, pair.srvIf],
      [pair.srv, "lo"],
      [pair.cli, pair.cliIf],
      [pair.cli, "lo"],
    ] as const) {
      ip("-n", ns, "link", "set", dev, "up");
    }
    ip("-n", pair.cli, "route", "add", "default", "dev", pair.cliIf);
    await waitUntil(`${pair.srvIf} carrier`, () => (/LOWER_UP/.test(ip("-n", pair.srv, "link", "show", pair.srvIf)) ? true : undefined), 5_000);
  } catch (err) {
    pair.remove();
    throw err;
  }
  return pair;
}

/** The namespace's UDP counters from /proc/net/snmp (they are per network namespace). */
export async function udpCounters(ns: string): Promise<Record<string, number>> {
  const text = (await runIn(ns, "cat", ["/proc/net/snmp"])).stdout.toString();
  const lines = text.split("\n").filter((l) => l.startsWith("Udp:"));
  const [names, values] = lines.map((l) => l.split(/\s+/).slice(1));
  if (!names || !values) throw new Error(`no Udp lines in /proc/net/snmp of ${ns}:\n${text}`);
  return Object.fromEntries(names.map((n, i) => [n, Number(values[i])]));
}

/**
 * Hostname, static addresses, nameservers and the API VIP: in
 * `machine.network` up to 1.11, in HostnameConfig / LinkAliasConfig /
 * LinkConfig / Layer2VIPConfig / ResolverConfig documents from 1.12.
 */
import { isIP } from "node:net";
import { compact, docOf, nonEmpty, type Context, type Doc, type Role } from "./context.js";
import { GenerateError } from "./errors.js";
import type { NodeNetwork } from "./options.js";

/** The alias a MAC-selected link gets when no interface name is given. */
export const DEFAULT_LINK_ALIAS = "net0";

function defaultRoute(gateway: string): string {
  return isIP(gateway) === 6 ? "::/0" : "0.0.0.0/0";
}

function normalMac(mac: string): string {
  return mac.toLowerCase().replaceAll("-", ":");
}

/** The VIP, for control planes only: workers never hold the API address. */
function vipFor(ctx: Context, role: Role): { ip: string; link?: string } | undefined {
  return role === "controlplane" ? ctx.options.vip : undefined;
}

function vipLinkMissing(): GenerateError {
  return new GenerateError("vip.link", "the VIP needs a link: set vip.link or a node network interface/macAddress");
}

function legacyDevice(n: NodeNetwork): Doc {
  const addresses = nonEmpty(n.addresses);
  return compact({
    interface: n.macAddress === undefined ? n.interface : undefined,
    deviceSelector: n.macAddress !== undefined ? { hardwareAddr: normalMac(n.macAddress) } : undefined,
    addresses,
    routes: n.gateway !== undefined ? [{ network: defaultRoute(n.gateway), gateway: n.gateway }] : undefined,
    dhcp: addresses === undefined ? true : undefined,
  });
}

/** `machine.network` for this contract and role, or undefined when the contract has none. */
export function legacyMachineNetwork(ctx: Context, role: Role): Doc | undefined {
  if (ctx.layout.network !== "machine.network") return ctx.layout.emptyMachineNetwork ? {} : undefined;
  const n = ctx.options.network;
  const vip = vipFor(ctx, role);
  const interfaces: Doc[] = [];
  if (n) interfaces.push(legacyDevice(n));
  if (vip) {
    const sameLink = n !== undefined && (vip.link === undefined || (n.macAddress === undefined && vip.link === n.interface));
    if (sameLink) {
      interfaces[0] = { ...interfaces[0], vip: { ip: vip.ip } };
    } else {
      if (vip.link === undefined) throw vipLinkMissing();
      interfaces.push({ interface: vip.link, dhcp: true, vip: { ip: vip.ip } });
    }
  }
  const network = compact({
    hostname: ctx.layout.hostname === "machine.network" ? ctx.options.hostname : undefined,
    interfaces: nonEmpty(interfaces),
    nameservers: nonEmpty(n?.nameservers),
  });
  return Object.keys(network).length > 0 || ctx.layout.emptyMachineNetwork ? network : undefined;
}

/** Nameservers as ResolverConfig entries (1.12+). */
export function resolverNameservers(ctx: Context): Doc[] | undefined {
  if (ctx.layout.network !== "documents") return undefined;
  return nonEmpty(ctx.options.network?.nameservers)?.map((address) => ({ address }));
}

/**
 * The network documents (1.12+), in the order the generator appends them:
 * HostnameConfig (always: a fixed hostname or `auto: stable`, never both),
 * then the link alias, link, VIP and — where no ResolverConfig exists yet —
 * a ResolverConfig with the nameservers.
 */
export function networkDocuments(ctx: Context, role: Role, resolverWritten: boolean): Doc[] {
  const docs: Doc[] = [];
  if (ctx.layout.hostname === "HostnameConfig") {
    const hostname = ctx.options.hostname;
    docs.push(docOf("HostnameConfig", hostname !== undefined ? { hostname } : { auto: "stable" }));
  }
  if (ctx.layout.network !== "documents") return docs;
  const n = ctx.options.network;
  const link = n ? (n.interface ?? DEFAULT_LINK_ALIAS) : undefined;
  if (n?.macAddress !== undefined) {
    docs.push(
      docOf("LinkAliasConfig", {
        name: link,
        selector: { match: `mac(link.permanent_addr) == ${JSON.stringify(normalMac(n.macAddress))}` },
      }),
    );
  }
  const addresses = nonEmpty(n?.addresses);
  if (n && addresses) {
    docs.push(
      docOf(
        "LinkConfig",
        compact({
          name: link,
          addresses: addresses.map((address) => ({ address })),
          routes: n.gateway !== undefined ? [{ gateway: n.gateway }] : undefined,
        }),
      ),
    );
  }
  const vip = vipFor(ctx, role);
  if (vip) {
    const vipLink = vip.link ?? link;
    if (vipLink === undefined) throw vipLinkMissing();
    docs.push(docOf("Layer2VIPConfig", { name: vip.ip, link: vipLink }));
  }
  const nameservers = resolverNameservers(ctx);
  if (nameservers && !resolverWritten) docs.push(docOf("ResolverConfig", { nameservers }));
  return docs;
}

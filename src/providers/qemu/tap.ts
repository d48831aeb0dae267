/**
 * Tap devices for local VMs (iproute2), optionally inside a network
 * namespace, joined to the operator's bridge. Needs CAP_NET_ADMIN.
 */
import { run } from "./process.js";

const ip = (netns: string | undefined, args: string[]): string[] => (netns ? ["-n", netns, ...args] : args);

export async function tapExists(name: string, netns: string | undefined): Promise<boolean> {
  return (await run("ip", ip(netns, ["link", "show", "dev", name]), 10_000)).code === 0;
}

export async function ensureTap(name: string, bridge: string | undefined, netns: string | undefined): Promise<void> {
  if (!(await tapExists(name, netns))) {
    const r = await run("ip", ip(netns, ["tuntap", "add", "dev", name, "mode", "tap"]), 10_000);
    if (r.code !== 0) throw new Error(`cannot create tap ${name}${netns ? ` in netns ${netns}` : ""}: ${r.stderr.trim()} (needs CAP_NET_ADMIN)`);
  }
  if (bridge) {
    const r = await run("ip", ip(netns, ["link", "set", "dev", name, "master", bridge]), 10_000);
    if (r.code !== 0) throw new Error(`cannot attach tap ${name} to bridge ${bridge}: ${r.stderr.trim()}`);
  }
  const up = await run("ip", ip(netns, ["link", "set", "dev", name, "up"]), 10_000);
  if (up.code !== 0) throw new Error(`cannot bring tap ${name} up: ${up.stderr.trim()}`);
}

export async function removeTap(name: string, netns: string | undefined): Promise<void> {
  if (await tapExists(name, netns)) await run("ip", ip(netns, ["link", "del", "dev", name]), 10_000);
}

import { readFile } from "node:fs/promises";
import { parseMac, type Mac } from "../boot/mac.js";

/**
 * The kernel's IPv4 neighbour table, parsed from /proc/net/arp. TFTP clients
 * are known to us only by IP address; after we have exchanged packets with
 * one, its MAC is in this table — which is how a TFTP transfer reaches the
 * right machine's timeline.
 */
export function parseArpTable(text: string): Map<string, Mac> {
  const out = new Map<string, Mac>();
  for (const line of text.split("\n").slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 4) continue;
    const [ip, , flags, hw] = cols as [string, string, string, string];
    // Flag 0x2 (ATF_COM) marks a completed entry; incomplete ones carry 00:00:…
    if ((parseInt(flags, 16) & 0x2) === 0) continue;
    const mac = parseMac(hw);
    if (mac) out.set(ip, mac);
  }
  return out;
}

export async function lookupNeighbour(ip: string, path = "/proc/net/arp"): Promise<Mac | undefined> {
  try {
    return parseArpTable(await readFile(path, "utf8")).get(ip);
  } catch {
    return undefined;
  }
}

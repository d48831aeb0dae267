/**
 * MACs for the VMs we create. They come from a locally administered range
 * (first octet has bit 0x02 set: no vendor owns it) and are unicast (bit 0x01
 * clear: PVE refuses multicast MACs), so they collide neither with real NICs
 * nor with Proxmox's own BC:24:11 prefix. The caller records the MAC before
 * the VM exists (src/store/vms.ts), so the machine can be registered with a
 * boot profile before it first powers on.
 */
import { randomBytes } from "node:crypto";
import { macFromBytes, parseMac, type Mac } from "../boot/mac.js";

/** "02:74:6e" — 't','n' after the locally-administered 02. */
export const DEFAULT_MAC_PREFIX = "02:74:6e";

/** Parses `02:74:6e` (1 to 5 octets); null unless locally administered and unicast. */
export function parseMacPrefix(text: string): Uint8Array | null {
  const parts = text.trim().toLowerCase().split(/[:-]/);
  if (parts.length < 1 || parts.length > 5 || !parts.every((p) => /^[0-9a-f]{2}$/.test(p))) return null;
  const bytes = Uint8Array.from(parts.map((p) => parseInt(p, 16)));
  return isLocalUnicast(bytes[0]!) ? bytes : null;
}

export function isLocalUnicast(firstOctet: number): boolean {
  return (firstOctet & 0x02) !== 0 && (firstOctet & 0x01) === 0;
}

export function isLocallyAdministeredMac(mac: Mac): boolean {
  return isLocalUnicast(parseInt(mac.slice(0, 2), 16));
}

export function macPrefixText(prefix: Uint8Array): string {
  return Array.from(prefix, (b) => b.toString(16).padStart(2, "0")).join(":");
}

export function macInRange(mac: Mac, prefix: Uint8Array): boolean {
  return mac.startsWith(`${macPrefixText(prefix)}:`);
}

/** A random MAC with the prefix; `random(n)` returns n random bytes (tests inject). */
export function randomMac(prefix: Uint8Array, random: (n: number) => Uint8Array = randomBytes): Mac {
  const tail = random(6 - prefix.length);
  const bytes = Uint8Array.from([...prefix, ...tail]);
  return macFromBytes(bytes);
}

export class MacExhaustedError extends Error {
  constructor(prefix: Uint8Array, tries: number) {
    super(`no free MAC found in ${macPrefixText(prefix)}:… after ${tries} tries: the range is (nearly) full; use a shorter prefix`);
    this.name = "MacExhaustedError";
  }
}

/**
 * A MAC in the range that `taken` does not know. Random rather than
 * sequential, so two appliances sharing a range rarely pick the same one;
 * bounded, so a full range is an error and not a hang.
 */
export function allocateMac(
  prefix: Uint8Array,
  taken: (mac: Mac) => boolean,
  random: (n: number) => Uint8Array = randomBytes,
  maxTries = 256,
): Mac {
  for (let i = 0; i < maxTries; i++) {
    const mac = randomMac(prefix, random);
    if (!taken(mac)) return mac;
  }
  throw new MacExhaustedError(prefix, maxTries);
}

/** Proxmox prints MACs upper-case; we send them that way and compare in our canonical form. */
export function pveMac(mac: Mac): string {
  return mac.toUpperCase();
}

export function sameMac(a: string, b: string): boolean {
  const pa = parseMac(a);
  const pb = parseMac(b);
  return pa !== null && pa === pb;
}

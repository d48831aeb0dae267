/** A MAC address in canonical form: lower-case hex pairs joined by ':'. */
export type Mac = string & { readonly __mac: unique symbol };

const MAC_RE = /^([0-9a-f]{2})[:-]?([0-9a-f]{2})[:-]?([0-9a-f]{2})[:-]?([0-9a-f]{2})[:-]?([0-9a-f]{2})[:-]?([0-9a-f]{2})$/i;

/** Parses `aa:bb:..`, `AA-BB-..` or `aabbcc..`; null when it is not a 48-bit MAC. */
export function parseMac(text: string): Mac | null {
  const m = MAC_RE.exec(text.trim());
  if (!m) return null;
  // A mix of separators ("aa:bb-cc...") is a typo, not a MAC.
  const seps = text.trim().replace(/[0-9a-f]/gi, "");
  if (seps.length !== 0 && !/^(:{5}|-{5})$/.test(seps)) return null;
  return m.slice(1).join(":").toLowerCase() as Mac;
}

export function macFromBytes(bytes: Uint8Array): Mac {
  if (bytes.length < 6) throw new Error("a MAC address needs 6 bytes");
  return Array.from(bytes.subarray(0, 6), (b) => b.toString(16).padStart(2, "0")).join(":") as Mac;
}

/** `aa-bb-cc-dd-ee-ff`: the form used in URLs and GRUB's `grub.cfg-01-…` names. */
export function macDashed(mac: Mac): string {
  return mac.replaceAll(":", "-");
}

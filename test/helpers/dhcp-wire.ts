/**
 * DHCP options read straight off the wire, independent of the codec under
 * test: the fuzzer's RFC checks and the netboot tests' packet rewriting both
 * walk options this way.
 */

/** Options start after the fixed BOOTP header and the magic cookie. */
export const DHCP_OPTIONS_AT = 240;

export interface OptionSpan {
  code: number;
  /** Offset of the length byte. */
  lengthAt: number;
  /** The value as far as the packet holds it. */
  value: Buffer;
  /** The value claims more bytes than the packet has left (or the length byte is missing). */
  overrun: boolean;
}

/** The options after the cookie in wire order; PAD skipped, stops at END or at the first overrun. */
export function* dhcpOptionSpans(b: Buffer): Generator<OptionSpan> {
  let i = DHCP_OPTIONS_AT;
  while (i < b.length) {
    const code = b[i]!;
    if (code === 0) {
      i++;
      continue;
    }
    if (code === 255) return;
    const len = b[i + 1];
    const end = i + 2 + (len ?? 0);
    yield { code, lengthAt: i + 1, value: b.subarray(i + 2, Math.min(end, b.length)), overrun: len === undefined || end > b.length };
    i = end;
  }
}

/** The well-formed options of a request, in wire order (copies, safe to keep). */
export function rawOptions(packet: Buffer): Array<[number, Buffer]> {
  const out: Array<[number, Buffer]> = [];
  for (const span of dhcpOptionSpans(packet)) {
    if (span.overrun) break;
    out.push([span.code, Buffer.from(span.value)]);
  }
  return out;
}

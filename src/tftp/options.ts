/**
 * Option negotiation for a read request: RFC 2347 (framework), 2348 (blksize),
 * 2349 (timeout, tsize), 7440 (windowsize). Pure: request options + file size
 * + server limits → what this transfer uses and what the OACK says.
 */
import type { TftpOption, TftpOptions } from "./codec.js";

export const DEFAULT_BLKSIZE = 512;
export const MIN_BLKSIZE = 8;
export const MAX_BLKSIZE = 65464;
export const MAX_WINDOWSIZE = 65535;

export interface NegotiationLimits {
  /** Largest blksize granted; clients asking more get this (RFC 2348 allows a smaller answer). */
  maxBlksize: number;
  /** Largest windowsize granted (RFC 7440 allows a smaller answer). */
  maxWindowsize: number;
}

export interface Negotiated {
  blksize: number;
  windowsize: number;
  /** Retransmission timeout the client asked for, in ms; undefined = server default. */
  timeoutMs: number | undefined;
  /** Options to acknowledge, in the client's order and spelling. Empty: no OACK, start with DATA 1. */
  oack: TftpOption[];
}

/**
 * Unacceptable values (non-numeric, out of range) make us ignore that option
 * rather than refuse the request with error 8: the client then gets plain
 * RFC 1350 behaviour, which every client handles.
 */
export function negotiate(requested: TftpOptions, fileSize: number, limits: NegotiationLimits): Negotiated {
  const result: Negotiated = { blksize: DEFAULT_BLKSIZE, windowsize: 1, timeoutMs: undefined, oack: [] };
  for (const [key, opt] of requested) {
    const n = parseDecimal(opt.value);
    switch (key) {
      case "blksize":
        if (n === undefined || n < MIN_BLKSIZE) break;
        result.blksize = Math.min(n, limits.maxBlksize, MAX_BLKSIZE);
        result.oack.push({ name: opt.name, value: String(result.blksize) });
        break;
      case "windowsize":
        if (n === undefined || n < 1) break;
        result.windowsize = Math.min(n, limits.maxWindowsize, MAX_WINDOWSIZE);
        result.oack.push({ name: opt.name, value: String(result.windowsize) });
        break;
      case "timeout":
        // RFC 2349: the server uses the value as asked or ignores it; no counter-offer.
        if (n === undefined || n < 1 || n > 255) break;
        result.timeoutMs = n * 1000;
        result.oack.push({ name: opt.name, value: String(n) });
        break;
      case "tsize":
        // On a read request the client sends 0 (or anything); the answer is the real size.
        result.oack.push({ name: opt.name, value: String(fileSize) });
        break;
      default:
        // Unknown options are not acknowledged (RFC 2347), e.g. multicast, rollover.
        break;
    }
  }
  return result;
}

/** Plain decimal digits only: `parseInt` would accept `12abc`, `0x10`, ` 8`. */
function parseDecimal(value: string): number | undefined {
  if (!/^[0-9]{1,10}$/.test(value)) return undefined;
  return Number(value);
}

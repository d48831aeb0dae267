import type { Mac } from "./mac.js";

/**
 * What the firmware told us about itself in a DHCP request. Built by the DHCP
 * layer from the packet; read by the boot decision. No sockets, no packets.
 */
export interface FirmwareFacts {
  mac: Mac;
  /** Option 93 client system architecture (IANA registry), when sent. */
  arch: number | undefined;
  /** Option 60 starts with HTTPClient (UEFI HTTP Boot) rather than PXEClient. */
  httpClient: boolean;
  /** Option 77 user class is `iPXE`: the client already runs iPXE. */
  ipxe: boolean;
  /** Option 97 client machine identifier (the 16 UUID bytes, type byte stripped), as sent. */
  uuid: Buffer | undefined;
  /** The request came to the PXE port 4011 (BINL) rather than 67. */
  pxePort: boolean;
  /** Relay agent address; 0.0.0.0 when not relayed. */
  giaddr: string;
}

export type FirmwareKind = "bios" | "uefi" | "uefi-http" | "ipxe";

/** The boot decision's answer to a DHCP request. */
export type DhcpAnswer =
  | {
      kind: "offer";
      firmware: FirmwareKind;
      /** A TFTP file name (relative, e.g. `undionly.kpxe`) or, for iPXE and HTTP clients, an http URL. */
      bootFile: string;
      /** PXE10 handover: option 43 sub-option 6 = 8 (BIOS PXE). */
      pxeDiscoveryControl: boolean;
      /** Vendor class to put in option 60: `PXEClient` or `HTTPClient`. */
      vendorClass: "PXEClient" | "HTTPClient";
    }
  | {
      kind: "ignore";
      /** Short machine-readable reason, also a metrics label: unknown-machine, unsupported-arch, not-pxe, ... */
      reason: string;
      /** Human sentence for logs and the machine timeline. */
      detail: string;
    };

/**
 * Asked by the DHCP server for every PXE/HTTP-boot request. The booter
 * records what it saw (timeline, unknown machines); the server only encodes
 * and sends what it is told.
 */
export interface DhcpBooter {
  answerDhcp(facts: FirmwareFacts): DhcpAnswer;
}

/** A file served by TFTP: a file on disk (opened by this path) or bytes rendered in memory. */
export type TftpSource = { kind: "file"; path: string } | { kind: "buffer"; data: Buffer };

export type TftpResolution =
  | { ok: true; source: TftpSource }
  | { ok: false; code: 1 | 2; message: string };

export interface TftpClient {
  address: string;
  port: number;
}

/**
 * Resolves a TFTP read request. The TFTP server has already refused names that
 * are not plain relative names; the resolver is a map lookup, never a path walk.
 */
export interface TftpResolver {
  resolve(name: string, client: TftpClient): TftpResolution | Promise<TftpResolution>;
  /** Called once per transfer that ended with the last ACK received. */
  completed?(event: { name: string; client: TftpClient; bytes: number; blksize: number; windowsize: number }): void;
}

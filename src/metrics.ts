import { Counter, Gauge, Registry } from "prom-client";

/**
 * The daemon's Prometheus metrics. One instance per daemon (not the global
 * registry) so tests can run several daemons in one process.
 */
export class Metrics {
  readonly registry = new Registry();

  /** DHCP packets received, by port (67/4011) and kind (discover, request, inform, other). */
  readonly dhcpPackets = new Counter({
    name: "talos_netboot_dhcp_packets_total",
    help: "DHCP packets received",
    labelNames: ["port", "kind"] as const,
    registers: [this.registry],
  });
  /** Packets that failed to decode; dropped. */
  readonly malformedPackets = new Counter({
    name: "talos_netboot_malformed_packets_total",
    help: "Packets dropped because they could not be decoded",
    labelNames: ["protocol"] as const,
    registers: [this.registry],
  });
  readonly dhcpReplies = new Counter({
    name: "talos_netboot_dhcp_replies_total",
    help: "ProxyDHCP replies sent, by message type and firmware kind",
    labelNames: ["type", "firmware"] as const,
    registers: [this.registry],
  });
  readonly dhcpIgnored = new Counter({
    name: "talos_netboot_dhcp_ignored_total",
    help: "DHCP requests not answered, by reason",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  readonly tftpTransfers = new Counter({
    name: "talos_netboot_tftp_transfers_total",
    help: "TFTP transfers by outcome (ok, error, timeout, aborted)",
    labelNames: ["outcome"] as const,
    registers: [this.registry],
  });
  readonly tftpActive = new Gauge({
    name: "talos_netboot_tftp_transfers_active",
    help: "TFTP transfers in progress",
    registers: [this.registry],
  });
  readonly tftpBytes = new Counter({
    name: "talos_netboot_tftp_bytes_total",
    help: "File bytes sent over TFTP (first transmissions only)",
    registers: [this.registry],
  });
  readonly tftpRetransmits = new Counter({
    name: "talos_netboot_tftp_retransmits_total",
    help: "TFTP data packets sent again after a timeout or a duplicate ACK",
    registers: [this.registry],
  });
  readonly httpRequests = new Counter({
    name: "talos_netboot_http_requests_total",
    help: "HTTP requests by route family and status code",
    labelNames: ["route", "status"] as const,
    registers: [this.registry],
  });
  readonly httpBytes = new Counter({
    name: "talos_netboot_http_bytes_total",
    help: "Body bytes sent over HTTP for boot files",
    labelNames: ["route"] as const,
    registers: [this.registry],
  });
  readonly errors = new Counter({
    name: "talos_netboot_errors_total",
    help: "Errors by component",
    labelNames: ["component"] as const,
    registers: [this.registry],
  });
}

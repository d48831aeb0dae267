/**
 * Runs a DhcpServer for the netboot tests, usually inside a network namespace:
 *   node dist/test/helpers/dhcp-server-fixture.js --address 192.0.2.1 [--interface vA] [--port 67] [--pxe-port 4011]
 * Prints one JSON line `{"ready":true,...}` on stdout once both sockets are
 * bound, logs to stderr, and stops cleanly on SIGTERM/SIGINT.
 *
 * Its booter mirrors the safe default of DESIGN §3: BIOS (arch 0) gets
 * undionly.kpxe the PXE10 way (option 43), everything else ipxe.efi.
 */
import { parseArgs } from "node:util";
import { pino } from "pino";
import type { DhcpAnswer, DhcpBooter, FirmwareFacts } from "../../src/boot/types.js";
import { DhcpServer } from "../../src/dhcp/server.js";
import { Metrics } from "../../src/metrics.js";

const { values } = parseArgs({
  options: {
    address: { type: "string" },
    interface: { type: "string" },
    port: { type: "string", default: "67" },
    "pxe-port": { type: "string", default: "4011" },
  },
});
if (!values.address) {
  process.stderr.write("usage: dhcp-server-fixture --address A [--interface IF] [--port 67] [--pxe-port 4011]\n");
  process.exit(2);
}

const booter: DhcpBooter = {
  answerDhcp(facts: FirmwareFacts): DhcpAnswer {
    if (facts.arch === 0) {
      return { kind: "offer", firmware: "bios", bootFile: "undionly.kpxe", pxeDiscoveryControl: true, vendorClass: "PXEClient" };
    }
    return { kind: "offer", firmware: "uefi", bootFile: "ipxe.efi", pxeDiscoveryControl: false, vendorClass: "PXEClient" };
  },
};

const log = pino({ level: "debug", base: { fixture: "dhcp", interface: values.interface } }, pino.destination({ fd: 2, sync: true }));
const server = new DhcpServer({
  address: values.address,
  interface: values.interface,
  port: Number(values.port),
  pxePort: Number(values["pxe-port"]),
  booter,
  log,
  metrics: new Metrics(),
});

try {
  await server.start();
} catch (err) {
  process.stderr.write(`dhcp-server-fixture: ${(err as Error).message}\n`);
  process.exit(1);
}
process.stdout.write(`${JSON.stringify({ ready: true, pid: process.pid, ...server.addresses() })}\n`);

const stop = () => {
  void server.stop().then(() => process.exit(0));
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);

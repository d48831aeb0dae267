/**
 * A stand-in DHCP client for the netboot tests: sends the given packets from
 * one UDP socket and prints every reply as JSON, then exits.
 *   node dist/test/helpers/dhcp-probe.js --packet HEX [--packet HEX…] [--bind 0.0.0.0] [--port 68]
 *        [--to 255.255.255.255:67] [--expect N] [--timeout 1500]
 * It waits `--timeout` ms (or until `--expect` replies arrived). Plain dgram on
 * purpose: the probe must not share the interface-binding code it tests, so the
 * client namespace gives it a default route for 255.255.255.255 instead.
 */
import dgram from "node:dgram";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    packet: { type: "string", multiple: true },
    bind: { type: "string", default: "0.0.0.0" },
    port: { type: "string", default: "68" },
    to: { type: "string", default: "255.255.255.255:67" },
    expect: { type: "string" },
    timeout: { type: "string", default: "1500" },
  },
});
const packets = (values.packet ?? []).map((hex) => Buffer.from(hex, "hex"));
const [toAddress, toPort] = values.to.split(":");
if (packets.length === 0 || !toAddress || !toPort) {
  process.stderr.write("usage: dhcp-probe --packet HEX [--packet HEX…] [--bind A] [--port P] [--to A:P] [--expect N] [--timeout MS]\n");
  process.exit(2);
}
const expected = values.expect === undefined ? Infinity : Number(values.expect);

const replies: { address: string; port: number; hex: string }[] = [];
const socket = dgram.createSocket({ type: "udp4" });
const finish = () => {
  clearTimeout(timer);
  process.stdout.write(`${JSON.stringify({ sent: packets.length, replies })}\n`);
  socket.close();
};
const timer = setTimeout(finish, Number(values.timeout));
socket.on("message", (msg, rinfo) => {
  replies.push({ address: rinfo.address, port: rinfo.port, hex: msg.toString("hex") });
  if (replies.length >= expected) finish();
});
socket.on("error", (err) => {
  process.stderr.write(`dhcp-probe: ${err.message}\n`);
  process.exit(1);
});
socket.bind({ address: values.bind, port: Number(values.port) }, () => {
  socket.setBroadcast(true);
  const sendNext = (i: number) => {
    if (i >= packets.length) return;
    socket.send(packets[i]!, Number(toPort), toAddress, (err) => {
      if (err) {
        process.stderr.write(`dhcp-probe: send: ${err.message}\n`);
        process.exit(1);
      }
      sendNext(i + 1);
    });
  };
  sendNext(0);
});

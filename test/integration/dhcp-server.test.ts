/**
 * DhcpServer over loopback, as any user: only the 4011 path (unicast replies)
 * is exercised, so nothing is ever broadcast. Port 67 and interface binding
 * are covered in test/netboot/dhcp-interface.test.ts.
 */
import dgram from "node:dgram";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { DhcpAnswer, FirmwareFacts } from "../../src/boot/types.js";
import { MessageType, Opt, decodeDhcp, encodeDhcp, msgType, type DhcpPacket } from "../../src/dhcp/codec.js";
import { DhcpServer } from "../../src/dhcp/server.js";
import { silentLogger } from "../../src/log.js";
import { Metrics } from "../../src/metrics.js";
import { PortBindError } from "../../src/net/errors.js";
import { openUdp } from "../../src/net/udp.js";
import { repoRoot } from "../helpers/reference.js";
import { unmet } from "../helpers/tools.js";

const LOOPBACK = "127.0.0.1";

function request(type: number, vendor = "PXEClient:Arch:00007:UNDI:003000"): Buffer {
  const p: DhcpPacket = {
    op: 1,
    htype: 1,
    hlen: 6,
    hops: 0,
    xid: 0x2468ace0,
    secs: 0,
    flags: 0,
    ciaddr: LOOPBACK,
    yiaddr: "0.0.0.0",
    siaddr: "0.0.0.0",
    giaddr: "0.0.0.0",
    chaddr: Buffer.from("525400123456" + "00".repeat(10), "hex"),
    sname: "",
    file: "",
    options: new Map([
      [Opt.MESSAGE_TYPE, Buffer.from([type])],
      [Opt.VENDOR_CLASS, Buffer.from(vendor)],
      [Opt.CLIENT_ARCH, Buffer.from([0, 7])],
    ]),
  };
  return encodeDhcp(p);
}

type Answer = (facts: FirmwareFacts) => DhcpAnswer;
const ipxeEfi: Answer = () => ({ kind: "offer", firmware: "uefi", bootFile: "ipxe.efi", pxeDiscoveryControl: false, vendorClass: "PXEClient" });

async function counter(c: { get(): Promise<{ values: { value: number; labels: Record<string, string | number> }[] }> }, labels: Record<string, string>) {
  const { values } = await c.get();
  return values.find((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want))?.value ?? 0;
}

describe("DhcpServer on loopback (4011 path)", () => {
  const servers: DhcpServer[] = [];
  const clients: dgram.Socket[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.stop()));
    for (const c of clients.splice(0)) c.close();
  });

  async function start(answer: Answer, pxePort = 0) {
    const metrics = new Metrics();
    const seen: FirmwareFacts[] = [];
    const server = new DhcpServer({
      address: LOOPBACK,
      port: 0,
      pxePort,
      booter: { answerDhcp: (f) => (seen.push(f), answer(f)) },
      log: silentLogger(),
      metrics,
    });
    servers.push(server);
    await server.start();
    return { server, metrics, seen, port: server.addresses().pxe.port };
  }

  /**
   * Sends each packet and collects replies: waits (bounded) for `replies` of
   * them, then a short grace for any extra that should not be there.
   */
  async function exchange(port: number, packets: Buffer[], replies = 0): Promise<{ packet: DhcpPacket; to: number }[]> {
    const client = dgram.createSocket("udp4");
    clients.push(client);
    await new Promise<void>((r) => client.bind(0, LOOPBACK, () => r()));
    const got: { packet: DhcpPacket; to: number }[] = [];
    client.on("message", (msg) => got.push({ packet: decodeDhcp(msg), to: client.address().port }));
    for (const p of packets) client.send(p, port, LOOPBACK);
    await eventually(() => got.length >= replies, `${replies} replies`);
    await new Promise((r) => setTimeout(r, 200));
    return got;
  }

  /** Polls until `ok()` (bounded): the server handles packets asynchronously. */
  async function eventually(ok: () => boolean | Promise<boolean>, what: string, ms = 5_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!(await ok())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it("ACKs a PXE REQUEST to the sender and counts it", async () => {
    const { metrics, seen, port } = await start(ipxeEfi);
    const replies = await exchange(port, [request(MessageType.REQUEST)], 1);
    expect(replies).toHaveLength(1);
    const reply = replies[0]!.packet;
    expect(msgType(reply)).toBe(MessageType.ACK);
    expect(reply.xid).toBe(0x2468ace0);
    expect(reply.siaddr).toBe(LOOPBACK);
    expect(reply.file).toBe("ipxe.efi");
    expect(seen).toEqual([expect.objectContaining({ mac: "52:54:00:12:34:56", arch: 7, pxePort: true, ipxe: false })]);
    expect(await counter(metrics.dhcpPackets, { port: String(port), kind: "request" })).toBe(1);
    expect(await counter(metrics.dhcpReplies, { type: "ack", firmware: "uefi" })).toBe(1);
  });

  it("drops malformed and unanswerable packets, counting each, and keeps serving", async () => {
    const { metrics, seen, port } = await start(ipxeEfi);
    const badCookie = request(MessageType.REQUEST);
    badCookie.writeUInt32BE(0, 236);
    const replies = await exchange(port, [
      Buffer.from("garbage"),
      badCookie,
      request(MessageType.REQUEST, "MSFT 5.0"),
      request(MessageType.DISCOVER),
      request(MessageType.REQUEST),
    ], 1);
    await eventually(async () => (await counter(metrics.dhcpPackets, { port: String(port), kind: "request" })) >= 2, "every packet handled");
    expect(replies.map((r) => msgType(r.packet))).toEqual([MessageType.ACK]);
    expect(seen).toHaveLength(1);
    expect(await counter(metrics.malformedPackets, { protocol: "dhcp" })).toBe(2);
    expect(await counter(metrics.dhcpIgnored, { reason: "not-pxe" })).toBe(1);
    expect(await counter(metrics.dhcpIgnored, { reason: "unsupported-message" })).toBe(1);
    expect(await counter(metrics.dhcpPackets, { port: String(port), kind: "request" })).toBe(2);
  });

  it("sends nothing when the booter says ignore, and counts its reason", async () => {
    const { metrics, port } = await start(() => ({ kind: "ignore", reason: "unknown-machine", detail: "not registered" }));
    const replies = await exchange(port, [request(MessageType.REQUEST)]);
    await eventually(async () => (await counter(metrics.dhcpIgnored, { reason: "unknown-machine" })) >= 1, "the ignore counted");
    expect(replies).toEqual([]);
    expect(await counter(metrics.dhcpIgnored, { reason: "unknown-machine" })).toBe(1);
  });

  it("survives a booter that throws", async () => {
    let calls = 0;
    const { metrics, port } = await start((f) => {
      if (++calls === 1) throw new Error("boom");
      return ipxeEfi(f);
    });
    const replies = await exchange(port, [request(MessageType.REQUEST), request(MessageType.REQUEST)], 1);
    await eventually(() => calls >= 2, "both packets handled");
    expect(replies).toHaveLength(1);
    expect(await counter(metrics.errors, { component: "dhcp" })).toBe(1);
  });

  it("reports a taken PXE port as a PortBindError naming the setting, and stop() is idempotent", async () => {
    const { server, port } = await start(ipxeEfi);
    const err = await start(ipxeEfi, port).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PortBindError);
    expect(err).toMatchObject({ code: "EADDRINUSE", port, configKey: "dhcp.pxePort" });
    await Promise.all([server.stop(), server.stop()]);
    await server.stop();
  });
});

const addonBuilt = existsSync(join(repoRoot(), "build", "Release", "netboot_net.node")) || unmet("native addon not built: run `npm rebuild`");

describe.skipIf(!addonBuilt)("openUdp with a device (native addon)", () => {
  it("binds to the loopback device and carries datagrams", async () => {
    const socket = await openUdp({ address: LOOPBACK, port: 0, device: "lo", broadcast: false, configKey: "test.port" });
    try {
      const got = new Promise<string>((resolve) => socket.once("message", (m) => resolve(m.toString())));
      const sender = dgram.createSocket("udp4");
      sender.send("ping", socket.address().port, LOOPBACK, () => sender.close());
      await expect(got).resolves.toBe("ping");
    } finally {
      socket.close();
    }
  });

  it("names a missing interface and the setting", async () => {
    await expect(openUdp({ address: LOOPBACK, port: 0, device: "nosuchif0", broadcast: false, configKey: "test.port" })).rejects.toThrow(
      /interface "nosuchif0" \(server\.interface\).*no such interface/,
    );
  });

  it("maps a taken port to PortBindError", async () => {
    const first = await openUdp({ address: LOOPBACK, port: 0, device: "lo", broadcast: false, configKey: "test.port" });
    try {
      const port = first.address().port;
      await expect(openUdp({ address: LOOPBACK, port, device: "lo", broadcast: false, configKey: "test.port" })).rejects.toMatchObject({
        name: "PortBindError",
        code: "EADDRINUSE",
        configKey: "test.port",
      });
    } finally {
      first.close();
    }
  });
});

/**
 * server.interface on a multi-homed host, with real sockets in network
 * namespaces:
 *
 *   client ns A (cA 192.0.2.2) ── veth ── (vA 192.0.2.1)
 *                                           server ns
 *   client ns B (cB 198.51.100.2) ─ veth ─ (vB 198.51.100.1)
 *
 * A ProxyDHCP fixture bound to vA must answer A's DISCOVERs and never B's,
 * even though it listens on 0.0.0.0:67. A second fixture bound to vB then
 * shows B's side works and that both coexist on port 67. Requests are the
 * firmware's own packets from the reference captures.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MessageType, Opt, decodeDhcp, msgType, type DhcpPacket } from "../../src/dhcp/codec.js";
import { captured, deleteNamespaces as deleteNs, ip, PROBE, probe as probeFrom, waitUntil, type ProbeOptions, type Reply } from "../helpers/netns.js";
import { haveReference, repoRoot } from "../helpers/reference.js";
import { requireRoot, requireTool } from "../helpers/tools.js";

const ready = requireRoot() && requireTool("ip", "iproute2") && haveReference("pcap");

const ROOT = repoRoot();
const FIXTURE = join(ROOT, "dist", "test", "helpers", "dhcp-server-fixture.js");
const ADDON = join(ROOT, "build", "Release", "netboot_net.node");

const TAG = `tnb-${process.pid}`;
const NS = { srv: `${TAG}-srv`, a: `${TAG}-a`, b: `${TAG}-b` };
interface Side {
  ns: string;
  serverIf: string;
  clientIf: string;
  server: string;
  client: string;
}
// Documentation ranges (RFC 5737): they exist only inside these namespaces.
const SIDE: Record<"a" | "b", Side> = {
  a: { ns: NS.a, serverIf: "vA", clientIf: "cA", server: "192.0.2.1", client: "192.0.2.2" },
  b: { ns: NS.b, serverIf: "vB", clientIf: "cB", server: "198.51.100.1", client: "198.51.100.2" },
};

const deleteNamespaces = () => deleteNs(Object.values(NS));
/** Sends packets from a client namespace (short default wait: every answer here is local). */
const probe = (side: Side, packets: Buffer[], opts: ProbeOptions = {}): Promise<Reply[]> => probeFrom(side.ns, packets, { timeoutMs: 1_500, ...opts });

async function setUpNetwork(): Promise<void> {
  for (const name of Object.values(NS)) ip("netns", "add", name);
  for (const side of Object.values(SIDE)) {
    ip("-n", NS.srv, "link", "add", side.serverIf, "type", "veth", "peer", "name", side.clientIf, "netns", side.ns);
    ip("-n", NS.srv, "addr", "add", `${side.server}/24`, "dev", side.serverIf);
    ip("-n", side.ns, "addr", "add", `${side.client}/24`, "dev", side.clientIf);
    ip("-n", NS.srv, "link", "set", side.serverIf, "up");
    ip("-n", side.ns, "link", "set", side.clientIf, "up");
    ip("-n", side.ns, "link", "set", "lo", "up");
    // Gives 255.255.255.255 a way out of the client namespace; it can only lead to the server namespace.
    ip("-n", side.ns, "route", "add", "default", "dev", side.clientIf);
  }
  ip("-n", NS.srv, "link", "set", "lo", "up");
  // Like most multi-homed hosts, the server has a default route, and it leads
  // out the other interface: an unbound socket would hear B's DISCOVERs and
  // would send every broadcast reply, A's too, out through vB.
  ip("-n", NS.srv, "route", "add", "default", "dev", SIDE.b.serverIf);
  for (const side of Object.values(SIDE)) {
    await waitUntil(`${side.serverIf} carrier`, () => (/LOWER_UP/.test(ip("-n", NS.srv, "link", "show", side.serverIf)) ? true : undefined), 5_000);
  }
}

interface Fixture {
  child: ChildProcess;
  stderr: () => string;
}

async function startFixture(side: Side): Promise<Fixture> {
  const child = spawn("ip", ["netns", "exec", NS.srv, process.execPath, FIXTURE, "--address", side.server, "--interface", side.serverIf], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const lines = createInterface({ input: child.stdout! });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`fixture on ${side.serverIf} not ready within 10 s:\n${stderr}`)), 10_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`fixture on ${side.serverIf} exited with ${code}:\n${stderr}`));
    });
    lines.on("line", (line) => {
      if (line.startsWith('{"ready":true')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return { child, stderr: () => stderr };
}

async function stopFixture(f: Fixture | undefined): Promise<void> {
  const { child } = f ?? {};
  if (!child?.pid || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 3_000);
  await exited;
  clearTimeout(timer);
}

function assertBuilt(): void {
  for (const f of [FIXTURE, PROBE]) {
    if (!existsSync(f)) throw new Error(`${f} is missing: run \`npm run build\` first (npm run test:netboot does)`);
  }
  // Running yesterday's build against today's sources would test the wrong code.
  const built = statSync(FIXTURE).mtimeMs;
  for (const src of ["src/dhcp/server.ts", "src/dhcp/proxy.ts", "src/dhcp/codec.ts", "src/net/udp.ts"]) {
    if (statSync(join(ROOT, src)).mtimeMs > built) throw new Error(`${src} is newer than ${FIXTURE}: run \`npm run build\``);
  }
  if (!existsSync(ADDON)) throw new Error(`${ADDON} is missing: \`npm ci\` or \`npm rebuild\` builds it (needs make, gcc, python3)`);
}

describe.skipIf(!ready)("ProxyDHCP bound to one interface of a multi-homed host", () => {
  let fixtureA: Fixture | undefined;
  let fixtureB: Fixture | undefined;
  let biosDiscover: Buffer;
  let uefiDiscover: Buffer;
  let uefiRequest4011: Buffer;
  let linuxDiscover: Buffer;
  const cleanupOnExit = () => {
    for (const f of [fixtureA, fixtureB]) if (f?.child.pid && f.child.exitCode === null) f.child.kill("SIGKILL");
    deleteNamespaces();
  };

  beforeAll(async () => {
    assertBuilt();
    biosDiscover = captured("bios-proxy.dhcp.pcap", (_, t) => t === "DISCOVER");
    uefiDiscover = captured("uefi-proxy.dhcp.pcap", (d, t) => t === "DISCOVER" && d.dstPort === 67);
    uefiRequest4011 = captured("uefi-proxy.dhcp.pcap", (d) => d.dstPort === 4011 && d.srcPort === 4011);
    linuxDiscover = captured("uefi-proxy.dhcp.pcap", (d, t) => t === "DISCOVER" && !d.payload.includes("PXEClient"));
    process.once("exit", cleanupOnExit);
    deleteNamespaces();
    await setUpNetwork();
    fixtureA = await startFixture(SIDE.a);
  });

  afterAll(async () => {
    await stopFixture(fixtureA);
    await stopFixture(fixtureB);
    deleteNamespaces();
    process.off("exit", cleanupOnExit);
  });

  function expectProxyReply(reply: Reply, request: Buffer, side: Side, type: number, bootFile: string): DhcpPacket {
    const req = decodeDhcp(request);
    const p = reply.packet;
    expect(reply.address).toBe(side.server);
    expect(p.op).toBe(2);
    expect(msgType(p)).toBe(type);
    expect(p.xid).toBe(req.xid);
    expect(p.chaddr).toEqual(req.chaddr);
    expect(p.flags).toBe(req.flags);
    expect(p.yiaddr).toBe("0.0.0.0");
    expect(p.siaddr).toBe(side.server);
    expect(p.file).toBe(bootFile);
    expect(p.options.get(Opt.BOOTFILE)?.toString()).toBe(bootFile);
    expect(p.options.get(Opt.SERVER_ID)).toEqual(Buffer.from(side.server.split(".").map(Number)));
    expect(p.options.get(Opt.VENDOR_CLASS)?.toString()).toBe("PXEClient");
    expect(p.options.get(Opt.CLIENT_UUID)).toEqual(req.options.get(Opt.CLIENT_UUID));
    for (const code of [Opt.SUBNET_MASK, Opt.ROUTER, Opt.DNS, Opt.LEASE_TIME]) expect(p.options.has(code), `option ${code}`).toBe(false);
    return p;
  }

  it("answers a UEFI DISCOVER broadcast on the bound interface", async () => {
    const replies = await probe(SIDE.a, [uefiDiscover], { expect: 1 });
    expect(replies).toHaveLength(1);
    expect(replies[0]!.port).toBe(67);
    const p = expectProxyReply(replies[0]!, uefiDiscover, SIDE.a, MessageType.OFFER, "ipxe.efi");
    expect(p.options.has(Opt.VENDOR_SPECIFIC)).toBe(false);
  });

  it("never answers the same DISCOVER arriving on the other interface", async () => {
    const replies = await probe(SIDE.b, [uefiDiscover, biosDiscover], { timeoutMs: 2_000 });
    expect(replies).toEqual([]);
  });

  it("answers a BIOS DISCOVER the PXE10 way, with option 43 discovery control", async () => {
    const replies = await probe(SIDE.a, [biosDiscover], { expect: 1 });
    expect(replies).toHaveLength(1);
    const p = expectProxyReply(replies[0]!, biosDiscover, SIDE.a, MessageType.OFFER, "undionly.kpxe");
    expect(p.options.get(Opt.VENDOR_SPECIFIC)).toEqual(Buffer.from([6, 1, 8, 255]));
  });

  it("ACKs the firmware's boot server REQUEST on 4011, unicast back to its address and port", async () => {
    const request = Buffer.from(uefiRequest4011);
    // The captured client had another address; give it this network's.
    request.set(SIDE.a.client.split(".").map(Number), 12);
    const replies = await probe(SIDE.a, [request], { bind: SIDE.a.client, port: 4011, to: `${SIDE.a.server}:4011`, expect: 1 });
    expect(replies).toHaveLength(1);
    expect(replies[0]!.port).toBe(4011);
    const p = expectProxyReply(replies[0]!, request, SIDE.a, MessageType.ACK, "ipxe.efi");
    expect(p.ciaddr).toBe(SIDE.a.client);
    expect(p.options.has(Opt.VENDOR_SPECIFIC)).toBe(false);
  });

  it("drops garbage and non-PXE DHCP, and keeps answering", async () => {
    const garbage = Buffer.from("this is not a DHCP packet, not even close");
    const badCookie = Buffer.from(uefiDiscover);
    badCookie.writeUInt32BE(0xdeadbeef, 236);
    const replies = await probe(SIDE.a, [garbage, badCookie, linuxDiscover, uefiDiscover], { timeoutMs: 2_000 });
    expect(replies.map((r) => r.packet.xid)).toEqual([decodeDhcp(uefiDiscover).xid]);
  });

  it("lets a second server bind the other interface on the same port, each answering only its own side", async () => {
    fixtureB = await startFixture(SIDE.b);
    const [fromB, fromA] = await Promise.all([
      probe(SIDE.b, [uefiDiscover], { timeoutMs: 2_000 }),
      probe(SIDE.a, [uefiDiscover], { timeoutMs: 2_000 }),
    ]);
    expect(fromB).toHaveLength(1);
    expectProxyReply(fromB[0]!, uefiDiscover, SIDE.b, MessageType.OFFER, "ipxe.efi");
    expect(fromA).toHaveLength(1);
    expectProxyReply(fromA[0]!, uefiDiscover, SIDE.a, MessageType.OFFER, "ipxe.efi");
  });

  it("refuses an interface that does not exist, naming it", async () => {
    const missing = { ...SIDE.a, serverIf: "nosuchif0" };
    await expect(startFixture(missing)).rejects.toThrow(/nosuchif0.*no such interface/s);
  });
});

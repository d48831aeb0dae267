/**
 * The real daemon process (`node dist/src/cli.js serve --config …`) in a
 * network namespace, driven from a second namespace the way a machine and an
 * operator would:
 *
 *   client ns (vcli 192.168.77.2, MAC = machine M1; relay agent 192.168.78.1 on lo)
 *        │ veth
 *   server ns (vsrv 192.168.77.1 — server.address, server.interface; route to 192.168.78.0/24 via .2)
 *
 * Requests are the firmware's own packets from ../shared/reference/pcap,
 * rewritten only where the test needs another MAC, address or option set.
 * Replies are checked field by field against DESIGN §3. The addresses exist
 * only inside these namespaces; nothing leaves them.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MessageType, Opt, decodeDhcp, msgType, vendorSubOptions, type DhcpPacket } from "../../src/dhcp/codec.js";
import { CLI, assertFreshBuild, killNow, spawnDaemon, startDaemon, type DaemonProcess, type Exit } from "../helpers/daemon-process.js";
import { haveReference, repoRoot } from "../helpers/reference.js";
import { createVethPair } from "../helpers/veth-pair.js";
import { captured, deleteNamespaces, ip, ipBytes, probe as probeFrom, rewrite, run, runIn, waitUntil, type ProbeOptions, type Ran, type Reply } from "../helpers/netns.js";
import { requireRoot, requireTool, unmet } from "../helpers/tools.js";

const IPXE_DIR = "/usr/lib/ipxe";
const ready =
  requireRoot() &&
  requireTool("ip", "iproute2") &&
  requireTool("curl", "curl") &&
  haveReference("pcap") &&
  (existsSync(join(IPXE_DIR, "ipxe.efi")) || unmet(`${IPXE_DIR}/ipxe.efi not found — apt-get install ipxe`));


const TAG = `tnbd-${process.pid}`;
const NS = { srv: `${TAG}-srv`, cli: `${TAG}-cli` };
const SRV_IF = "vsrv";
const SERVER = "192.168.77.1";
const CLIENT = "192.168.77.2";
/** A DHCP relay's address on another subnet, reached through the client namespace. */
const RELAY = "192.168.78.1";
const HTTP_PORT = 8080;
const BASE = `http://${SERVER}:${HTTP_PORT}`;

/** The client veth's own MAC: registered over the API, and what the server's ARP table maps CLIENT to (TFTP timeline). */
const M1 = "52:54:00:77:00:02";
/** A machine from the config file. */
const M2 = "52:54:00:77:00:20";
/** Never registered. */
const M3 = "52:54:00:77:00:30";
/** Added to the config file by a SIGHUP reload. */
const M4 = "52:54:00:77:00:40";
/** Registered over the API before a restart. */
const M5 = "52:54:00:77:00:50";
const dashed = (mac: string) => mac.replaceAll(":", "-");

const TOKEN = randomBytes(16).toString("hex");
const TOKEN2 = randomBytes(16).toString("hex");

// ---- namespaces -------------------------------------------------------------

/** Runs a command in the client namespace; never throws on a non-zero exit. */
const inClient = (cmd: string, args: string[], timeoutMs?: number): Promise<Ran> => runIn(NS.cli, cmd, args, timeoutMs);
/** Sends packets with dhcp-probe from the client namespace. */
const probe = (packets: Buffer[], opts?: ProbeOptions): Promise<Reply[]> => probeFrom(NS.cli, packets, opts);

function deleteNs(): void {
  deleteNamespaces(Object.values(NS));
}

async function setUpNetwork(): Promise<void> {
  // Namespaces NS.srv / NS.cli, veth vsrv (SERVER) ↔ vcli (CLIENT, MAC M1), the client's default route.
  await createVethPair({ tag: TAG, subnet: "192.168.77", clientMac: M1 });
  // The relay agent's own address; on lo, since kernels without the dummy module are common in CI.
  ip("-n", NS.cli, "addr", "add", `${RELAY}/32`, "dev", "lo");
  // The relay's subnet is behind the client namespace, as behind a router.
  ip("-n", NS.srv, "route", "add", "192.168.78.0/24", "via", CLIENT, "dev", SRV_IF);
}

// ---- commands in the client namespace ------------------------------------------

let work = "";
let curlSeq = 0;

interface HttpResult {
  status: number;
  body: Buffer;
  text: string;
}

/** An HTTP request with curl from the client namespace. */
async function http(method: string, url: string, opts: { token?: string; json?: unknown } = {}): Promise<HttpResult> {
  const out = join(work, `curl-${++curlSeq}.out`);
  const args = ["-sS", "--max-time", "10", "-o", out, "-w", "%{http_code}", "-X", method];
  if (opts.token) args.push("-H", `X-API-Key: ${opts.token}`);
  if (opts.json !== undefined) args.push("-H", "Content-Type: application/json", "--data-binary", JSON.stringify(opts.json));
  args.push(url);
  const r = await inClient("curl", args);
  const body = existsSync(out) ? readFileSync(out) : Buffer.alloc(0);
  rmSync(out, { force: true });
  return { status: Number(r.stdout.toString()) || 0, body, text: body.toString("utf8") };
}

async function api(method: string, path: string, json?: unknown, token = TOKEN): Promise<{ status: number; body: any }> {
  const r = await http(method, `${BASE}/api/v1${path}`, { token, json });
  let body: unknown = r.text;
  try {
    body = JSON.parse(r.text);
  } catch {
    // not JSON: keep the text for the assertion message
  }
  return { status: r.status, body };
}

/** A counter's value from /metrics (0 when the labelled series does not exist yet). */
async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const r = await http("GET", `${BASE}/metrics`);
  expect(r.status, `GET /metrics\n${r.text}`).toBe(200);
  for (const line of r.text.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s+(\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1]!, x[2]!]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return 0;
}

// ---- DHCP ---------------------------------------------------------------------

let daemon: DaemonProcess;
const log = (what: string) => `${what}\n${daemon.tail()}`;

/** Every rule of DESIGN §3 for one ProxyDHCP reply. */
function expectProxyReply(reply: Reply, requestBytes: Buffer, want: { type: number; file: string; discoveryControl: boolean }): void {
  const req = decodeDhcp(requestBytes);
  const p = reply.packet;
  const ctx = log(`reply ${JSON.stringify({ from: `${reply.address}:${reply.port}`, hex: reply.raw.toString("hex") })}`);
  expect(reply.address, ctx).toBe(SERVER);
  expect(p.op, ctx).toBe(2);
  expect(msgType(p), ctx).toBe(want.type);
  expect(p.xid, ctx).toBe(req.xid);
  expect(p.chaddr.toString("hex"), ctx).toBe(req.chaddr.toString("hex"));
  expect(p.flags, ctx).toBe(req.flags);
  expect(p.giaddr, ctx).toBe(req.giaddr);
  expect(p.yiaddr, ctx).toBe("0.0.0.0");
  expect(p.siaddr, ctx).toBe(SERVER);
  for (const code of [Opt.SUBNET_MASK, Opt.ROUTER, Opt.DNS, Opt.LEASE_TIME, Opt.OVERLOAD]) {
    expect(p.options.has(code), `option ${code} must not be sent\n${ctx}`).toBe(false);
  }
  expect(p.options.get(Opt.SERVER_ID)?.toString("hex"), ctx).toBe(ipBytes(SERVER).toString("hex"));
  expect(p.options.get(Opt.VENDOR_CLASS)?.toString("latin1"), ctx).toBe("PXEClient");
  const uuid = req.options.get(Opt.CLIENT_UUID);
  expect(uuid, "the captured request carries option 97").toBeDefined();
  expect(p.options.get(Opt.CLIENT_UUID)?.toString("hex"), ctx).toBe(uuid!.toString("hex"));
  // `file`: the name, then a NUL inside the 128-byte field.
  expect(p.file, ctx).toBe(want.file);
  expect(reply.raw[108 + want.file.length], `file field NUL-terminated\n${ctx}`).toBe(0);
  expect(p.options.get(Opt.BOOTFILE)?.toString("latin1").replace(/\0$/, ""), ctx).toBe(want.file);
  if (want.discoveryControl) {
    const sub = vendorSubOptions(p);
    expect(sub, `option 43 as PXE sub-options\n${ctx}`).toBeDefined();
    expect(sub!.get(6)?.toString("hex"), `option 43 sub-option 6 (discovery control)\n${ctx}`).toBe("08");
  } else {
    expect(p.options.has(Opt.VENDOR_SPECIFIC), `no option 43\n${ctx}`).toBe(false);
  }
}

// ---- files and config -----------------------------------------------------------

let files: { kernel: string; initrd: string; config: string };
let configPath = "";
let stateDir = "";

interface ConfigOpts {
  machines?: Array<{ mac: string; hostname: string }>;
  tokens?: string[];
  stateDir?: string;
  httpPort?: number;
  tftpEnabled?: boolean;
}

function configYaml(o: ConfigOpts = {}): string {
  const machines = o.machines ?? [{ mac: M2, hostname: "node-2" }];
  return [
    `server: { address: ${SERVER}, interface: ${SRV_IF} }`,
    `dhcp: { enabled: true, port: 67, pxePort: 4011 }`,
    `tftp: { enabled: ${o.tftpEnabled ?? true}, port: 69 }`,
    `http: { enabled: true, port: ${o.httpPort ?? HTTP_PORT}, address: 0.0.0.0 }`,
    `stateDir: ${o.stateDir ?? stateDir}`,
    `log: { level: debug, format: json }`,
    `bootloaders: { dir: ${IPXE_DIR}, grubEfi: null }`,
    `api: { tokens: [${(o.tokens ?? [TOKEN]).map((t) => JSON.stringify(t)).join(", ")}] }`,
    `profiles:`,
    `  talos:`,
    `    kernel: ${files.kernel}`,
    `    initrd: [${files.initrd}]`,
    `    cmdline: "console=ttyS0 talos.platform=metal"`,
    `    config: ${files.config}`,
    machines.length ? `machines:` : `machines: []`,
    ...machines.map((m) => `  - { mac: "${m.mac}", profile: talos, hostname: ${m.hostname} }`),
    `unknownMachines: ignore`,
    ``,
  ].join("\n");
}

async function timelineSteps(mac: string): Promise<string[]> {
  const r = await api("GET", `/machines/${mac}`);
  expect(r.status, log(`GET /machines/${mac}: ${JSON.stringify(r.body)}`)).toBe(200);
  return (r.body.timeline as Array<{ step: string }>).map((e) => e.step);
}

/** Resolves with the exit, or rejects after `ms` (the process is then left for afterAll to kill). */
async function exitWithin(d: DaemonProcess, ms: number): Promise<Exit> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`daemon pid ${d.pid} still running after ${ms} ms\n${d.tail()}`)), ms);
  });
  try {
    return await Promise.race([d.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const runCli = (args: string[]): Promise<Ran> => run(process.execPath, [CLI, ...args]);

describe.skipIf(!ready)("the daemon process in a network namespace", () => {
  const others: DaemonProcess[] = [];
  let uefiDiscover: Buffer;
  let uefiRequest4011: Buffer;
  let biosIpxeDiscover: Buffer;

  const cleanupOnExit = () => {
    killNow(daemon);
    for (const d of others) killNow(d);
    deleteNs();
  };

  beforeAll(async () => {
    assertFreshBuild();
    uefiDiscover = captured("uefi-proxy.dhcp.pcap", (d, t) => t === "DISCOVER" && d.dstPort === 67 && d.payload.includes("PXEClient") && !d.payload.includes("iPXE"));
    uefiRequest4011 = captured("uefi-proxy.dhcp.pcap", (d) => d.dstPort === 4011 && d.srcPort === 4011);
    biosIpxeDiscover = captured("bios-proxy.dhcp.pcap", (_, t) => t === "DISCOVER");

    work = mkdtempSync(join(tmpdir(), `${TAG}-`));
    stateDir = join(work, "state");
    const boot = join(work, "boot");
    mkdirSync(boot);
    files = { kernel: join(boot, "vmlinuz"), initrd: join(boot, "initramfs.xz"), config: join(boot, "worker.yaml") };
    writeFileSync(files.kernel, randomBytes(96 * 1024 + 17));
    writeFileSync(files.initrd, randomBytes(256 * 1024 + 5));
    writeFileSync(files.config, `version: v1alpha1\nmachine:\n  type: worker\n  token: ${randomBytes(8).toString("hex")}\n`);
    configPath = join(work, "talos-netboot.yaml");
    writeFileSync(configPath, configYaml());

    process.once("exit", cleanupOnExit);
    deleteNs();
    await setUpNetwork();
    daemon = await startDaemon({ configPath, netns: NS.srv });
  });

  afterAll(async () => {
    await Promise.allSettled([daemon?.stop(5_000), ...others.map((d) => d.stop(5_000))]);
    deleteNs();
    process.off("exit", cleanupOnExit);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  describe("a UEFI machine registered over the API boots end to end", () => {
    it("registers the machine with PUT /api/v1/machines/{mac} from the client network", async () => {
      expect((await api("GET", "/machines", undefined, "not-the-token-0123456789")).status).toBe(401);
      const r = await api("PUT", `/machines/${M1.toUpperCase()}`, { profile: "talos", hostname: "node-1" });
      expect(r.status, log(JSON.stringify(r.body))).toBe(200);
      expect(r.body).toMatchObject({ mac: M1, profile: "talos", hostname: "node-1", source: "api", next: "profile", timeline: [] });
    });

    it("answers the firmware's DISCOVER (arch 7) with ipxe.efi, every field as DESIGN §3 says", async () => {
      const request = rewrite(uefiDiscover, { mac: M1 });
      expect(decodeDhcp(request).options.get(Opt.CLIENT_ARCH)?.readUInt16BE(0), "captured DISCOVER has option 93 = 7").toBe(7);
      // No --expect: wait the whole window, so a second reply would show.
      const replies = await probe([request], { timeoutMs: 2_000 });
      expect(replies, log("exactly one ProxyDHCP reply")).toHaveLength(1);
      expect(replies[0]!.port).toBe(67);
      expectProxyReply(replies[0]!, request, { type: MessageType.OFFER, file: "ipxe.efi", discoveryControl: false });
    });

    it("ACKs the firmware's boot server REQUEST on 4011, unicast back to the client", async () => {
      const request = rewrite(uefiRequest4011, { mac: M1, ciaddr: CLIENT });
      expect(msgType(decodeDhcp(request))).toBe(MessageType.REQUEST);
      const replies = await probe([request], { bind: CLIENT, port: 4011, to: `${SERVER}:4011`, timeoutMs: 2_000 });
      expect(replies, log("exactly one 4011 reply")).toHaveLength(1);
      expect(replies[0]!.port).toBe(4011);
      expectProxyReply(replies[0]!, request, { type: MessageType.ACK, file: "ipxe.efi", discoveryControl: false });
      expect(replies[0]!.packet.ciaddr).toBe(CLIENT);
    });

    it("serves ipxe.efi over TFTP and puts the transfer on the machine's timeline; refuses ../etc/passwd with error 2", async () => {
      const out = join(work, "ipxe.efi");
      const got = await inClient("curl", ["-sS", "--max-time", "20", "-o", out, `tftp://${SERVER}/ipxe.efi`]);
      expect(got.code, log(`curl tftp ipxe.efi: ${got.stderr}`)).toBe(0);
      const want = readFileSync(realpathSync(join(IPXE_DIR, "ipxe.efi")));
      expect(readFileSync(out).equals(want), "TFTP bytes equal Debian's ipxe.efi").toBe(true);

      // The daemon knows the client only by IP; its ARP table maps that to M1.
      const entry = await waitUntil(
        "a tftp entry on M1's timeline",
        async () => (await api("GET", `/machines/${M1}`)).body.timeline?.find((e: { step: string }) => e.step === "tftp"),
        5_000,
        () => daemon.tail(),
      );
      expect(entry.details).toMatchObject({ file: "ipxe.efi", bytes: want.length });

      const mark = daemon.mark();
      const traversal = await inClient("curl", ["-sS", "--max-time", "10", "--path-as-is", "-o", join(work, "passwd"), `tftp://${SERVER}/../etc/passwd`]);
      // curl exits 69 (CURLE_TFTP_PERM) for TFTP error 2 and 68 for error 1.
      expect(traversal.code, log(`curl tftp ../etc/passwd: ${traversal.stderr}`)).toBe(69);
      const refused = await daemon.waitForLog("the refusal of ../etc/passwd", (l) => l.msg === "tftp request refused" && l.name === "../etc/passwd", {
        since: mark,
      });
      expect(refused.code).toBe(2);
      expect(existsSync(join(work, "passwd")) && readFileSync(join(work, "passwd")).length > 0).toBe(false);

      const missing = await inClient("curl", ["-sS", "--max-time", "10", "-o", join(work, "nothing"), `tftp://${SERVER}/no-such-file.efi`]);
      expect(missing.code, log(`curl tftp no-such-file.efi: ${missing.stderr}`)).toBe(68);
    });

    it("serves the iPXE script, kernel, initrd and config over HTTP; a wrong config token is a 404", async () => {
      const r = await http("GET", `${BASE}/boot/${dashed(M1)}/boot.ipxe`);
      expect(r.status, log(r.text)).toBe(200);
      const script = r.text;
      expect(script.startsWith("#!ipxe\n"), script).toBe(true);
      expect(script).toContain("node-1");

      const command = (verb: string) => script.split("\n").find((l) => l.startsWith(`${verb} `))?.split(" || ")[0]?.split(" ");
      const kernel = command("kernel");
      const initrd = command("initrd");
      expect(kernel, script).toBeDefined();
      expect(initrd, script).toBeDefined();
      const kernelUrl = kernel![1]!;
      const initrdUrl = initrd![1]!;
      const args = kernel!.slice(2);
      expect(kernelUrl).toBe(`${BASE}/boot/${dashed(M1)}/kernel`);
      expect(initrdUrl).toBe(`${BASE}/boot/${dashed(M1)}/initrd-0`);
      expect(args).toEqual(expect.arrayContaining(["initrd=initrd-0", "console=ttyS0", "talos.platform=metal"]));
      const configArg = args.find((a) => a.startsWith("talos.config="));
      expect(configArg, script).toBeDefined();
      const configUrl = configArg!.slice("talos.config=".length);
      expect(configUrl.startsWith(`${BASE}/boot/${dashed(M1)}/config/`), configUrl).toBe(true);

      for (const [url, file] of [
        [kernelUrl, files.kernel],
        [initrdUrl, files.initrd],
        [configUrl, files.config],
      ] as const) {
        const got = await http("GET", url);
        expect(got.status, log(`GET ${url}`)).toBe(200);
        expect(got.body.equals(readFileSync(file)), `body of ${url} equals ${file}`).toBe(true);
      }

      const token = configUrl.slice(configUrl.lastIndexOf("/") + 1);
      const wrongSameLength = `${configUrl.slice(0, -token.length)}${token.startsWith("A") ? "B" : "A"}${token.slice(1)}`;
      for (const url of [wrongSameLength, `${configUrl.slice(0, -token.length)}${randomBytes(24).toString("base64url")}`, `${configUrl}x`]) {
        const denied = await http("GET", url);
        expect(denied.status, log(`GET ${url}`)).toBe(404);
        expect(denied.text).not.toContain("machine:");
      }
    });

    it("shows every step on the machine's timeline, in order", async () => {
      const r = await api("GET", `/machines/${M1}`);
      expect(r.status).toBe(200);
      const timeline = r.body.timeline as Array<{ time: string; step: string; details: Record<string, unknown> }>;
      expect(
        timeline.map((e) => e.step),
        log(JSON.stringify(timeline, null, 1)),
      ).toEqual(["dhcp-offer", "dhcp-4011", "tftp", "script", "kernel", "initrd", "config", "config-denied", "config-denied", "config-denied"]);
      expect(timeline[0]!.details).toMatchObject({ arch: 7, firmware: "uefi", bootFile: "ipxe.efi" });
      expect(timeline[1]!.details).toMatchObject({ arch: 7, firmware: "uefi", bootFile: "ipxe.efi" });
      expect(timeline[4]!.details).toMatchObject({ bytes: readFileSync(files.kernel).length });
      expect(timeline[5]!.details).toMatchObject({ index: 0, bytes: readFileSync(files.initrd).length });
      expect(timeline[6]!.details).toMatchObject({ checkIn: true });
      expect(r.body.lastSeen).toBe(timeline.at(-1)!.time);
    });
  });

  describe("BIOS clients", () => {
    it("gives the captured BIOS iPXE DISCOVER (arch 0, option 77 iPXE) its script URL, no option 43", async () => {
      const request = rewrite(biosIpxeDiscover, { mac: M2 });
      const req = decodeDhcp(request);
      expect(req.options.get(Opt.CLIENT_ARCH)?.readUInt16BE(0)).toBe(0);
      expect(req.options.get(Opt.USER_CLASS)?.toString()).toBe("iPXE");
      expect(req.options.get(Opt.CLIENT_ID)?.toString("hex"), "option 61 rewritten too").toBe(`01${M2.replaceAll(":", "")}`);
      const replies = await probe([request], { expect: 1 });
      expect(replies, log("one reply")).toHaveLength(1);
      expectProxyReply(replies[0]!, request, { type: MessageType.OFFER, file: `${BASE}/boot/${dashed(M2)}/boot.ipxe`, discoveryControl: false });
    });

    it("gives a BIOS PXE ROM (the same DISCOVER without option 77) undionly.kpxe with option 43 sub-option 6 = 8", async () => {
      const request = rewrite(biosIpxeDiscover, { mac: M2, drop: [Opt.USER_CLASS, 175] });
      expect(decodeDhcp(request).options.has(Opt.USER_CLASS)).toBe(false);
      const replies = await probe([request], { expect: 1 });
      expect(replies, log("one reply")).toHaveLength(1);
      expectProxyReply(replies[0]!, request, { type: MessageType.OFFER, file: "undionly.kpxe", discoveryControl: true });
      const steps = await timelineSteps(M2);
      expect(steps, log("M2's timeline")).toEqual(["dhcp-offer", "dhcp-offer"]);
    });
  });

  describe("requests it does not answer", () => {
    it("stays silent for an unknown MAC (unknownMachines: ignore) and lists it under /api/v1/unknown-machines", async () => {
      const before = await metric("talos_netboot_dhcp_ignored_total", { reason: "unknown-machine" });
      const replies = await probe([rewrite(uefiDiscover, { mac: M3 })], { timeoutMs: 2_000 });
      expect(replies, log("no reply for an unknown machine")).toEqual([]);
      // Heard and ignored, not lost on the way:
      expect(await metric("talos_netboot_dhcp_ignored_total", { reason: "unknown-machine" })).toBe(before + 1);
      const unknown = await api("GET", "/unknown-machines");
      expect(unknown.status).toBe(200);
      const entry = (unknown.body.machines as Array<{ mac: string }>).find((m) => m.mac === M3);
      expect(entry, log(JSON.stringify(unknown.body))).toMatchObject({ mac: M3, count: 1, lastFacts: { arch: 7, ipxe: false, httpClient: false } });
      expect((await api("GET", `/machines/${M3}`)).status).toBe(404);
    });

    it("stays silent for a registered machine's DISCOVER without option 60 (not PXE)", async () => {
      const before = await metric("talos_netboot_dhcp_ignored_total", { reason: "not-pxe" });
      const stepsBefore = await timelineSteps(M1);
      const replies = await probe([rewrite(uefiDiscover, { mac: M1, drop: [Opt.VENDOR_CLASS] })], { timeoutMs: 2_000 });
      expect(replies, log("no reply without option 60")).toEqual([]);
      expect(await metric("talos_netboot_dhcp_ignored_total", { reason: "not-pxe" })).toBe(before + 1);
      expect(await timelineSteps(M1)).toEqual(stepsBefore);
    });

    it("drops malformed packets, counts them, stays up and keeps answering", async () => {
      const before = await metric("talos_netboot_malformed_packets_total", { protocol: "dhcp" });
      const short = randomBytes(64);
      const long = randomBytes(548);
      long[0] = 1; // BOOTREQUEST, so only the cookie makes it malformed
      long[2] = 6;
      long.writeUInt32BE(0x01020304, 236);
      const replies = await probe([short, long], { timeoutMs: 2_000 });
      expect(replies, log("no reply to garbage")).toEqual([]);
      expect(await metric("talos_netboot_malformed_packets_total", { protocol: "dhcp" }), log("malformed counter")).toBe(before + 2);
      expect(daemon.exit(), log("daemon still running")).toBeUndefined();
      expect((await http("GET", `${BASE}/healthz`)).status).toBe(200);
      const request = rewrite(uefiDiscover, { mac: M1 });
      const after = await probe([request], { expect: 1 });
      expect(after, log("still answering")).toHaveLength(1);
      expectProxyReply(after[0]!, request, { type: MessageType.OFFER, file: "ipxe.efi", discoveryControl: false });
    });
  });

  it("sends the reply to a relayed DISCOVER to the relay agent, giaddr:67", async () => {
    const request = rewrite(uefiDiscover, { mac: M2, giaddr: RELAY, hops: 1 });
    const replies = await probe([request], { bind: RELAY, port: 67, to: `${SERVER}:67`, expect: 1 });
    expect(replies, log("one reply at the relay")).toHaveLength(1);
    expect(replies[0]!.port).toBe(67);
    expect(replies[0]!.packet.giaddr).toBe(RELAY);
    expectProxyReply(replies[0]!, request, { type: MessageType.OFFER, file: "ipxe.efi", discoveryControl: false });
    const timeline = (await api("GET", `/machines/${M2}`)).body.timeline as Array<{ step: string; details: Record<string, unknown> }>;
    expect(timeline.at(-1)).toMatchObject({ step: "dhcp-offer", details: { relay: RELAY, bootFile: "ipxe.efi" } });
  });

  describe("process behaviour", () => {
    it("SIGHUP re-reads the config file: changed hostname, added machine, added token — without cutting transfers", async () => {
      // Slow downloads in flight across the reload: HTTP (initrd) and TFTP (ipxe.efi).
      const httpOut = join(work, "slow-initrd");
      const tftpOut = join(work, "slow-ipxe.efi");
      const slowHttp = inClient("curl", ["-sS", "--max-time", "60", "--limit-rate", "64K", "-o", httpOut, `${BASE}/boot/${dashed(M2)}/initrd-0`], 70_000);
      const slowTftp = inClient("curl", ["-sS", "--max-time", "60", "--limit-rate", "256K", "-o", tftpOut, `tftp://${SERVER}/ipxe.efi`], 70_000);
      await waitUntil("both downloads under way", () => (existsSync(httpOut) && existsSync(tftpOut) ? true : undefined), 10_000);
      writeFileSync(
        configPath,
        configYaml({
          machines: [
            { mac: M2, hostname: "node-2b" },
            { mac: M4, hostname: "node-4" },
          ],
          tokens: [TOKEN, TOKEN2],
        }),
      );
      const mark = daemon.mark();
      daemon.signal("SIGHUP");
      await daemon.waitForLog("\"reloaded the config file\"", (l) => l.msg === "reloaded the config file", { since: mark });
      expect(daemon.exit()).toBeUndefined();

      expect((await api("GET", `/machines/${M2}`)).body).toMatchObject({ mac: M2, hostname: "node-2b", source: "config" });
      expect((await api("GET", `/machines/${M4}`, undefined, TOKEN2)).body).toMatchObject({ mac: M4, hostname: "node-4", source: "config", profile: "talos" });
      // M2's timeline survived the reload.
      expect(await timelineSteps(M2)).toContain("dhcp-offer");
      const s = await http("GET", `${BASE}/boot/${dashed(M4)}/boot.ipxe`);
      expect(s.status, log(s.text)).toBe(200);
      expect(s.text).toContain("node-4");

      const [h, t] = await Promise.all([slowHttp, slowTftp]);
      expect(h.code, `HTTP download across SIGHUP: ${h.stderr}`).toBe(0);
      expect(t.code, `TFTP download across SIGHUP: ${t.stderr}`).toBe(0);
      expect(readFileSync(httpOut).equals(readFileSync(files.initrd)), "initrd bytes after SIGHUP").toBe(true);
      expect(readFileSync(tftpOut).equals(readFileSync(realpathSync(`${IPXE_DIR}/ipxe.efi`))), "ipxe.efi bytes after SIGHUP").toBe(true);
    });

    it("SIGHUP with an invalid file logs the problems and keeps serving the previous config", async () => {
      const good = readFileSync(configPath, "utf8");
      const machinesBefore = (await api("GET", "/machines")).body.machines as Array<{ mac: string; hostname: string | null; timeline: unknown[] }>;
      expect(machinesBefore.some((m) => m.mac === M2), log("M2 from the config file")).toBe(true);
      try {
        writeFileSync(
          configPath,
          good
            .replace(`kernel: ${files.kernel}`, "kernel: vmlinuz-relative")
            .replace(`mac: "${M2}"`, `mac: "not-a-mac"`)
            .replace(/api: \{ tokens: \[[^\]]*\] \}/, `api: { tokens: ["${randomBytes(16).toString("hex")}"] }`),
        );
        const mark = daemon.mark();
        daemon.signal("SIGHUP");
        const line = await daemon.waitForLog("the reload refusal", (l) => typeof l.msg === "string" && l.msg.startsWith("reload refused"), { since: mark });
        expect(line.level, log("logged as an error")).toBe(50);
        expect(String(line.err)).toContain("profiles.talos.kernel");
        expect(String(line.err)).toContain("machines[0].mac");
        expect(daemon.logs.slice(mark).some((l) => l.msg === "reloaded the config file")).toBe(false);
        expect(daemon.exit(), log("still running")).toBeUndefined();

        // Same machines, same token, same profile as before the SIGHUP.
        const after = await api("GET", "/machines");
        expect(after.status, log("the old API token still works")).toBe(200);
        const strip = (ms: Array<{ timeline: unknown[] }>) => ms.map((m) => ({ ...m, timeline: undefined, lastSeen: undefined }));
        expect(strip(after.body.machines)).toEqual(strip(machinesBefore));
        const request = rewrite(uefiDiscover, { mac: M2 });
        const replies = await probe([request], { expect: 1 });
        expect(replies, log("M2 still answered")).toHaveLength(1);
        expectProxyReply(replies[0]!, request, { type: MessageType.OFFER, file: "ipxe.efi", discoveryControl: false });
        const k = await http("GET", `${BASE}/boot/${dashed(M2)}/kernel`);
        expect(k.status, log(`GET kernel of ${M2}`)).toBe(200);
        expect(k.body.equals(readFileSync(files.kernel))).toBe(true);
      } finally {
        writeFileSync(configPath, good);
      }
    });

    it("refuses to start on ports already in use: exit 2 and one line naming the port and the remedy", async () => {
      const cases = [
        { name: "http", opts: {}, port: /\bTCP port 8080\b/, key: "http.port" },
        { name: "tftp", opts: { httpPort: 8081 }, port: /\bUDP port 69\b/, key: "tftp.port" },
        { name: "dhcp", opts: { httpPort: 8082, tftpEnabled: false }, port: /\bUDP port 67\b/, key: "dhcp.port" },
      ];
      for (const c of cases) {
        const path = join(work, `second-${c.name}.yaml`);
        writeFileSync(path, configYaml({ ...c.opts, stateDir: join(work, `state-${c.name}`), machines: [] }));
        const second = spawnDaemon({ configPath: path, netns: NS.srv });
        others.push(second);
        const exit = await exitWithin(second, 15_000);
        const ctx = `${c.name}: ${second.tail()}`;
        expect(exit.code, ctx).toBe(2);
        const errors = second.logs.filter((l) => (l.level ?? 0) >= 50);
        expect(errors, ctx).toHaveLength(1);
        const msg = String(errors[0]!.msg);
        expect(msg.includes("\n"), ctx).toBe(false);
        expect(msg, ctx).toMatch(c.port);
        expect(msg, ctx).toContain("another program is using it");
        expect(msg, ctx).toContain(`set ${c.key}`);
        expect(second.logs.some((l) => l.msg === "talos-netboot running"), ctx).toBe(false);
      }
      // The first daemon is untouched.
      expect(daemon.exit(), log("first daemon still running")).toBeUndefined();
      expect((await http("GET", `${BASE}/healthz`)).status).toBe(200);
      const request = rewrite(uefiDiscover, { mac: M1 });
      expect(await probe([request], { expect: 1 }), log("first daemon still answers DHCP")).toHaveLength(1);
    });

    it("check --config: exit 1 listing every problem with its key path; exit 0 on a good file", async () => {
      const good = await runCli(["check", "--config", configPath]);
      expect(good.code, good.stderr).toBe(0);
      expect(good.stdout.toString()).toContain(`${configPath}: OK`);

      const schemaBad = join(work, "bad-schema.yaml");
      writeFileSync(
        schemaBad,
        configYaml()
          .replace(`address: ${SERVER}`, "address: 192.168.77.300")
          .replace(`port: ${HTTP_PORT},`, "port: 70000,")
          .replace(`kernel: ${files.kernel}`, "kernel: vmlinuz")
          .replace(`mac: "${M2}"`, `mac: "52:54:00:zz:00:20"`),
      );
      const bad = await runCli(["check", "--config", schemaBad]);
      expect(bad.code, bad.stderr).toBe(1);
      for (const key of ["server.address", "http.port", "profiles.talos.kernel", "machines[0].mac"]) {
        expect(bad.stderr, `problem list names ${key}`).toMatch(new RegExp(`^\\s+- ${key.replace(/[.[\]]/g, "\\$&")}: `, "m"));
      }
      expect(bad.stderr).toContain("4 problems");

      const semanticBad = join(work, "bad-semantic.yaml");
      writeFileSync(
        semanticBad,
        configYaml()
          .replace(`initrd: [${files.initrd}]`, `initrd: [${join(work, "no-such-initrd")}]`)
          .replace("profile: talos, hostname: node-2", "profile: nosuch, hostname: node-2")
          .replace("unknownMachines: ignore", "unknownMachines: nosuch"),
      );
      const bad2 = await runCli(["check", "--config", semanticBad]);
      expect(bad2.code, bad2.stderr).toBe(1);
      for (const key of ["machines[0].profile", "unknownMachines", "profiles.talos.initrd[0]"]) {
        expect(bad2.stderr, `problem list names ${key}`).toMatch(new RegExp(`^\\s+- ${key.replace(/[.[\]]/g, "\\$&")}: `, "m"));
      }
    });

    it("SIGTERM stops cleanly (exit 0, logged), and a restart on the same stateDir keeps machines, timelines and config tokens", async () => {
      const put = await api("PUT", `/machines/${M5}`, { profile: "talos", hostname: "node-5" });
      expect(put.status, log(JSON.stringify(put.body))).toBe(200);
      const request = rewrite(uefiDiscover, { mac: M5 });
      expect(await probe([request], { expect: 1 }), log("M5 answered")).toHaveLength(1);
      const configUrlOf = (s: string) => /talos\.config=(\S+)/.exec(s)?.[1];
      const scriptBefore = await http("GET", `${BASE}/boot/${dashed(M5)}/boot.ipxe`);
      const configUrl = configUrlOf(scriptBefore.text);
      expect(configUrl, log(scriptBefore.text)).toBeDefined();
      const before = (await api("GET", `/machines/${M5}`)).body;
      expect(before.timeline.map((e: { step: string }) => e.step)).toEqual(["dhcp-offer", "script"]);

      const old = daemon;
      old.signal("SIGTERM");
      const exit = await exitWithin(old, 15_000);
      expect(exit, old.tail()).toEqual({ code: 0, signal: null });
      expect(old.logs.some((l) => l.msg === "stopping" && l.signal === "SIGTERM"), old.tail()).toBe(true);
      expect(old.logs.at(-1)?.msg, old.tail()).toBe("talos-netboot stopped");

      daemon = await startDaemon({ configPath, netns: NS.srv });
      const after = await api("GET", `/machines/${M5}`);
      expect(after.status, log(JSON.stringify(after.body))).toBe(200);
      expect(after.body).toEqual(before);
      expect((await api("GET", `/machines/${M2}`)).body).toMatchObject({ source: "config" });

      const scriptAfter = await http("GET", `${BASE}/boot/${dashed(M5)}/boot.ipxe`);
      expect(configUrlOf(scriptAfter.text), "the config token survives a restart").toBe(configUrl);
      const cfg = await http("GET", configUrl!);
      expect(cfg.status, log(configUrl!)).toBe(200);
      expect(cfg.body.equals(readFileSync(files.config))).toBe(true);
      // The restarted daemon answers DHCP too.
      const again = await probe([request], { expect: 1 });
      expect(again, log("restarted daemon answers")).toHaveLength(1);
      expectProxyReply(again[0]!, request, { type: MessageType.OFFER, file: "ipxe.efi", discoveryControl: false });
    });
  });
});

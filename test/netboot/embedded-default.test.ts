/**
 * The promise for a fresh boot host: `talos-netboot serve` with no
 * config at all, as root, on a host with one interface up.
 *
 *   client ns (vcli 192.168.79.2, MAC = the machine)  ── veth ──  server ns (vsrv 192.168.79.1)
 *
 * The daemon runs in the server namespace and in a private mount namespace
 * whose /var/lib is a fresh tmpfs, so the embedded default's state dir
 * (/var/lib/talos-netboot) is its own and the host's is never touched. The
 * test drops a kernel, initramfs and config into <stateDir>/boot/ there, as an
 * operator would, registers the machine through the API, and boots it with
 * the firmware's own packets.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MessageType, Opt, msgType } from "../../src/dhcp/codec.js";
import { assertFreshBuild, killNow, startDaemon, type DaemonProcess } from "../helpers/daemon-process.js";
import { captured, ipBytes, probe, rewrite, runIn } from "../helpers/netns.js";
import { createVethPair, type VethPair } from "../helpers/veth-pair.js";
import { haveReference } from "../helpers/reference.js";
import { requireRoot, requireTool } from "../helpers/tools.js";

const ready = requireRoot() && requireTool("ip", "iproute2") && requireTool("curl", "curl") && requireTool("unshare", "util-linux") && haveReference("pcap");

const TAG = `tnbe-${process.pid}`;
let pair: VethPair | undefined;
/** The namespaces createVethPair makes from TAG. */
const NS = { srv: `${TAG}-srv`, cli: `${TAG}-cli` };
const SERVER = "192.168.79.1";
const MAC = "52:54:00:79:00:02";
const BASE = `http://${SERVER}:8080`;
const STATE = "/var/lib/talos-netboot";

describe.skipIf(!ready)("the embedded default (no --config) on a host with one interface", () => {
  let daemon: DaemonProcess | undefined;
  let work = "";
  const files = { kernel: randomBytes(40_000), initrd: randomBytes(90_000), config: "version: v1alpha1\n# embedded-default test\n" };
  const onExit = () => killNow(daemon);

  const curl = async (args: string[]) => {
    const out = join(work, `curl-${randomBytes(4).toString("hex")}`);
    const r = await runIn(NS.cli, "curl", ["-sS", "--max-time", "10", "-o", out, "-w", "%{http_code}", ...args]);
    let body = Buffer.alloc(0);
    try {
      body = readFileSync(out);
    } catch {
      // no body
    }
    rmSync(out, { force: true });
    return { status: Number(r.stdout.toString()), body };
  };

  beforeAll(async () => {
    assertFreshBuild();
    process.once("exit", onExit);
    work = mkdtempSync(join(tmpdir(), "tnbe-"));
    writeFileSync(join(work, "vmlinuz"), files.kernel);
    writeFileSync(join(work, "initramfs.xz"), files.initrd);
    writeFileSync(join(work, "config.yaml"), files.config);
    pair = await createVethPair({ tag: TAG, subnet: "192.168.79", clientMac: MAC });
    // A private /var/lib for the daemon, with the boot files an operator would drop in.
    const setup = `mount -t tmpfs tmpfs /var/lib && mkdir -p ${STATE}/boot && cp ${work}/vmlinuz ${work}/initramfs.xz ${work}/config.yaml ${STATE}/boot/ && exec "$0" "$@"`;
    daemon = await startDaemon({ netns: NS.srv, wrapper: ["unshare", "--mount", "--propagation", "private", "sh", "-c", setup] });
  }, 60_000);

  afterAll(async () => {
    await daemon?.stop(5_000);
    process.off("exit", onExit);
    pair?.remove();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("picks the one interface's address and creates an owner-only API token in its state dir", () => {
    const started = daemon!.logs.find((l) => l.msg === "no --config: running on the embedded default");
    expect(started, daemon!.tail()).toMatchObject({ address: SERVER, stateDir: STATE });
    expect(daemon!.logs.find((l) => l.msg?.startsWith("created an API token")), daemon!.tail()).toMatchObject({ path: `${STATE}/api-token` });
    // The token is in the daemon's own mount namespace; /proc/<pid>/root reaches it.
    const tokenPath = `/proc/${daemon!.pid}/root${STATE}/api-token`;
    const token = readFileSync(tokenPath, "utf8").trim();
    expect(token.length).toBeGreaterThanOrEqual(32);
    expect(JSON.stringify(daemon!.logs)).not.toContain(token);
  });

  it("accepts a machine over the API, answers its UEFI DISCOVER, and serves its script, kernel, initrd and config", async () => {
    const token = readFileSync(`/proc/${daemon!.pid}/root${STATE}/api-token`, "utf8").trim();
    const put = await curl(["-X", "PUT", "-H", `X-API-Key: ${token}`, "-H", "Content-Type: application/json", "--data-binary", JSON.stringify({ profile: "default", hostname: "node-1" }), `${BASE}/api/v1/machines/${MAC}`]);
    expect(put.status, put.body.toString()).toBe(200);

    const discover = rewrite(
      captured("uefi-proxy.dhcp.pcap", (d, type) => type === "DISCOVER" && d.dstPort === 67),
      { mac: MAC },
    );
    const replies = await probe(NS.cli, [discover], { expect: 1, timeoutMs: 3_000 });
    expect(replies, daemon!.tail()).toHaveLength(1);
    const offer = replies[0]!.packet;
    expect(msgType(offer)).toBe(MessageType.OFFER);
    expect(offer.yiaddr).toBe("0.0.0.0");
    expect(offer.siaddr).toBe(SERVER);
    expect(offer.file).toBe("ipxe.efi");
    expect(offer.options.get(Opt.SERVER_ID)?.equals(ipBytes(SERVER))).toBe(true);
    expect(offer.options.get(Opt.VENDOR_CLASS)?.toString()).toBe("PXEClient");
    for (const forbidden of [1, 3, 6, 51, 43]) expect(offer.options.has(forbidden), `option ${forbidden}`).toBe(false);

    const script = await curl([`${BASE}/boot/${MAC.replaceAll(":", "-")}/boot.ipxe`]);
    expect(script.status).toBe(200);
    const text = script.body.toString();
    expect(text).toContain("talos.platform=metal");
    const configUrl = /talos\.config=(\S+)/.exec(text)?.[1];
    expect(configUrl, text).toMatch(new RegExp(`^${BASE}/boot/52-54-00-79-00-02/config/`));
    expect((await curl([`${BASE}/boot/${MAC.replaceAll(":", "-")}/kernel`])).body.equals(files.kernel)).toBe(true);
    expect((await curl([`${BASE}/boot/${MAC.replaceAll(":", "-")}/initrd-0`])).body.equals(files.initrd)).toBe(true);
    const config = await curl([configUrl!]);
    expect(config.status).toBe(200);
    expect(config.body.toString()).toBe(files.config);
    expect((await curl([`${configUrl!.slice(0, -4)}AAAA`])).status).toBe(404);
  });
});

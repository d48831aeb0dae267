/**
 * A profile in its Talos form (`talos: {version, arch}`) boots files from the
 * asset cache, fetched from a mirror (a fake one on loopback): the script
 * carries the version's PXE kernel arguments and the machine's talos.config,
 * kernel and initramfs are the mirror's bytes (verified against its
 * sha256sum.txt), Range and ETag work on them, and the first boot waits for
 * the download the daemon started itself.
 */
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Daemon } from "../../src/daemon.js";
import { FakeTalosMirror } from "../helpers/fake-talos-mirror.js";
import { startLoopbackDaemon } from "../helpers/loopback-daemon.js";

const TOKEN = "talos-profile-token-0123";
const MAC = "52-54-00-bb-00-01";
const VERSION = "1.14.7";
let daemon: Daemon;
let base = "";
const mirror = new FakeTalosMirror();

beforeAll(async () => {
  await mirror.start();
  ({ daemon, base } = await startLoopbackDaemon(
    TOKEN,
    (files) => `
talos: { releasesUrl: "${mirror.releasesUrl}", factoryUrl: "${mirror.factoryUrl}" }
profiles:
  talos-114: { talos: { version: "${VERSION}", arch: amd64, extraArgs: ["console=ttyS0"] }, config: ${files.config} }
machines:
  - { mac: "${MAC}", profile: talos-114, hostname: node-1 }`,
  ));
}, 30_000);
afterAll(async () => {
  await daemon?.stop();
  await mirror.stop();
});

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

describe("a Talos profile boots from the asset cache", () => {
  it("renders the version's PXE command line with the machine's talos.config", async () => {
    const script = await (await fetch(`${base}/boot/${MAC}/boot.ipxe`)).text();
    const kernelLine = script.split("\n").find((l) => l.startsWith("kernel "))!.split(" || ")[0]!;
    expect(kernelLine).toContain("talos.platform=metal");
    expect(kernelLine).toContain("proc_mem.force_override=never");
    expect(kernelLine).not.toContain("init_on_alloc=1");
    expect(kernelLine).toContain("console=ttyS0");
    expect(kernelLine).toMatch(new RegExp(`talos\\.config=${base}/boot/${MAC}/config/[A-Za-z0-9_-]+`));
    expect(kernelLine.match(/talos\.config=/g)).toHaveLength(1);
    expect(script.match(/^initrd /gm)).toHaveLength(1);
  });

  it("serves the mirror's kernel and initramfs, verified, with Range and ETag", async () => {
    const kernel = Buffer.from(await (await fetch(`${base}/boot/${MAC}/kernel`)).arrayBuffer());
    expect(sha(kernel)).toBe(sha(mirror.bytes("release", VERSION, "vmlinuz-amd64")));
    const initrd = await fetch(`${base}/boot/${MAC}/initrd-0`);
    const body = Buffer.from(await initrd.arrayBuffer());
    expect(sha(body)).toBe(sha(mirror.bytes("release", VERSION, "initramfs-amd64.xz")));
    const etag = initrd.headers.get("etag")!;
    expect((await fetch(`${base}/boot/${MAC}/initrd-0`, { headers: { "If-None-Match": etag } })).status).toBe(304);
    const part = await fetch(`${base}/boot/${MAC}/initrd-0`, { headers: { Range: "bytes=100-199" } });
    expect(part.status).toBe(206);
    expect(Buffer.from(await part.arrayBuffer()).equals(body.subarray(100, 200))).toBe(true);
    expect((await fetch(`${base}/boot/${MAC}/initrd-1`)).status).toBe(404);
    // One download per file, however many requests (prefetch + boot share it).
    expect(mirror.count(/vmlinuz-amd64$/)).toBe(1);
  });
});

/**
 * Path traversal against the daemon's TFTP and HTTP, byte-exact requests on
 * loopback. The layout around bootloaders.dir:
 *
 *   base/secret.txt                      sibling of the served dir      (secret)
 *   base/outside/secret.txt, grub.cfg    reached only through symlinks  (secret)
 *   base/outside/target.efi              target of an in-dir file symlink (served by design)
 *   base/ipxe/ipxe.efi                   served
 *   base/ipxe/linked.efi -> ../outside/target.efi   served: resolved once at start (DESIGN §3, Debian's ipxe.efi)
 *   base/ipxe/escape -> ../outside       a directory symlink: nothing under it is served
 *   base/ipxe/sub/secret.txt             a subdirectory: nothing under it is served (secret)
 *   base/ipxe/dangling -> ../missing
 *   added after start: late.efi, late-link.efi -> ../secret.txt, and linked.efi re-pointed at ../secret.txt
 *
 * Every traversal attempt (`..`, absolute paths, encoded and double-encoded
 * dots, backslashes, NUL bytes, symlink escapes) is refused, and no answer —
 * TFTP or HTTP, refused or served — carries a byte of any secret.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfigText } from "../../src/config/load.js";
import { Daemon } from "../../src/daemon.js";
import { silentLogger } from "../../src/log.js";
import { encodeError, type TftpPacket } from "../../src/tftp/codec.js";
import { bootFiles, tempDir } from "../helpers/fixtures.js";
import { freeTcpPort, freeUdpPort } from "../helpers/ports.js";
import { rawGet } from "../helpers/raw-http.js";
import { RawPeer, tftpGet } from "../helpers/tftp-client.js";

const MAC = "52-54-00-12-34-56";
const marker = (what: string) => `SECRET-${what}-${randomBytes(12).toString("hex")}`;
const SECRETS = { sibling: marker("sibling"), sub: marker("sub"), outside: marker("outside"), grub: marker("grub") };
const TARGET = randomBytes(3000);
const IPXE = randomBytes(5000);

let daemon: Daemon | undefined;
/** Created at load: the hostile names below include its absolute path. */
const base = tempDir("tnb-traversal-");
let httpPort = 0;
let tftpPort = 0;
/** Every byte any answer carried, checked for secrets once more at the end. */
const seen: Buffer[] = [];

function expectNoSecret(bytes: Buffer, what: string): void {
  seen.push(bytes);
  const text = bytes.toString("latin1");
  for (const [name, secret] of Object.entries(SECRETS)) expect(text.includes(secret), `${what} leaked the ${name} secret`).toBe(false);
}

beforeAll(async () => {
  const dir = join(base, "ipxe");
  const outside = join(base, "outside");
  mkdirSync(join(dir, "sub"), { recursive: true });
  mkdirSync(outside);
  writeFileSync(join(base, "secret.txt"), SECRETS.sibling);
  writeFileSync(join(dir, "sub", "secret.txt"), SECRETS.sub);
  writeFileSync(join(outside, "secret.txt"), SECRETS.outside);
  writeFileSync(join(outside, "grub.cfg"), SECRETS.grub);
  writeFileSync(join(outside, "target.efi"), TARGET);
  writeFileSync(join(dir, "ipxe.efi"), IPXE);
  writeFileSync(join(base, "grubnetx64.efi"), randomBytes(100));
  symlinkSync("../outside/target.efi", join(dir, "linked.efi"));
  symlinkSync("../outside", join(dir, "escape"));
  symlinkSync("../missing", join(dir, "dangling"));

  const files = bootFiles();
  httpPort = await freeTcpPort();
  tftpPort = await freeUdpPort();
  mkdirSync(join(base, "state"));
  const config = parseConfigText(
    `
server: { address: 127.0.0.1 }
dhcp: { enabled: false }
tftp: { enabled: true, port: ${tftpPort} }
http: { port: ${httpPort}, address: 127.0.0.1 }
stateDir: ${join(base, "state")}
bootloaders: { dir: ${dir}, grubEfi: ${join(base, "grubnetx64.efi")} }
api: { tokens: ["traversal-token-0123456789"] }
profiles:
  rescue: { kernel: ${files.kernel}, initrd: [${files.initrd}], config: ${files.config}, bootloader: grub }
machines:
  - { mac: "${MAC}", profile: rescue }
`,
    "traversal.yaml",
  );
  daemon = await Daemon.start({ config, log: silentLogger() });

  // The map is fixed at start: what appears or changes in the directory afterwards is not served.
  writeFileSync(join(dir, "late.efi"), SECRETS.sibling);
  symlinkSync("../secret.txt", join(dir, "late-link.efi"));
  unlinkSync(join(dir, "linked.efi"));
  symlinkSync("../secret.txt", join(dir, "linked.efi"));
});

afterAll(async () => {
  await daemon?.stop();
  rmSync(base, { recursive: true, force: true });
});

/** Names that must never be served, as raw filename bytes (the wire allows any byte but NUL). */
function hostileNames(): Array<[string, Buffer]> {
  const abs = join(base, "secret.txt");
  const names: Array<string | [string, Buffer]> = [
    "../secret.txt",
    "/../secret.txt",
    "../../../../../../etc/passwd",
    "sub/../../secret.txt",
    "ipxe.efi/../../secret.txt",
    "./../secret.txt",
    abs,
    `/${abs}`,
    "/etc/passwd",
    "//etc/passwd",
    "%2e%2e/secret.txt",
    "%2E%2E%2Fsecret.txt",
    "..%2fsecret.txt",
    "%252e%252e%252fsecret.txt",
    "%25%32%65%25%32%65/secret.txt",
    "..%5csecret.txt",
    "..\\secret.txt",
    "\\..\\secret.txt",
    "sub\\secret.txt",
    "secret.txt%00ipxe.efi",
    "sub/secret.txt",
    "sub",
    "escape",
    "escape/secret.txt",
    "escape/target.efi",
    "outside/secret.txt",
    "secret.txt",
    "dangling",
    "late.efi",
    "late-link.efi",
    "．．/secret.txt",
    "sub/\u0001secret.txt",
    ["overlong UTF-8 dots", Buffer.from([0xc0, 0xae, 0xc0, 0xae, 0x2f, ...Buffer.from("secret.txt")])],
    ["latin1 byte", Buffer.from([0x2e, 0x2e, 0xff, 0x2f, ...Buffer.from("secret.txt")])],
  ];
  return names.map((n) => (typeof n === "string" ? [n, Buffer.from(n, "utf8")] : n));
}

function rrq(name: Buffer, mode = "octet"): Buffer {
  return Buffer.concat([Buffer.from([0, 1]), name, Buffer.from([0]), Buffer.from(mode), Buffer.from([0])]);
}

/** Sends one request from a fresh port and returns what the server sent back within `waitMs` (stopping at the first ERROR). */
async function tftpAttempt(packet: Buffer, waitMs = 1_500): Promise<TftpPacket[]> {
  const peer = await RawPeer.open();
  const got: TftpPacket[] = [];
  try {
    await peer.send(packet, tftpPort);
    for (;;) {
      const r = await peer.next(got.length === 0 ? waitMs : 300);
      if (!r) break;
      got.push(r.packet);
      if (r.packet.op === "error") expectNoSecret(Buffer.from(r.packet.message, "latin1"), `TFTP error for ${JSON.stringify(packet.toString("latin1"))}`);
      if (r.packet.op === "data") expectNoSecret(r.packet.data, `TFTP ${JSON.stringify(packet.toString("latin1"))}`);
      if (r.packet.op === "error") break;
      // A transfer started: end it at once, the test only needed its first block.
      await peer.send(encodeError(0, "test done"), r.from.port);
      break;
    }
  } finally {
    await peer.close();
  }
  return got;
}

describe("TFTP: request names never reach a file outside the fixed map", () => {
  it("serves the map: a regular file, and an in-dir symlink resolved once at start (not re-read when it changes)", async () => {
    const ipxe = await tftpGet({ port: tftpPort, name: "ipxe.efi", deadlineMs: 10_000 });
    expect(ipxe.data?.equals(IPXE), JSON.stringify(ipxe.error)).toBe(true);
    const linked = await tftpGet({ port: tftpPort, name: "linked.efi", deadlineMs: 10_000 });
    expect(linked.data?.equals(TARGET), JSON.stringify(linked.error)).toBe(true);
    expectNoSecret(linked.data!, "TFTP linked.efi");
  });

  it.each(hostileNames().map(([label, bytes]) => [label, bytes] as const))("refuses %j with an ERROR and no data", async (_label, name) => {
    const got = await tftpAttempt(rrq(name));
    expect(got.some((p) => p.op === "data" || p.op === "oack"), JSON.stringify(got)).toBe(false);
    // Invalid UTF-8 is not a TFTP request at all: dropped as malformed, no answer. Everything else gets error 1 or 2.
    const validUtf8 = Buffer.from(name.toString("utf8"), "utf8").equals(name);
    if (validUtf8) {
      expect(got, "one ERROR").toHaveLength(1);
      expect([1, 2], JSON.stringify(got)).toContain(got[0]!.op === "error" ? got[0]!.code : -1);
    } else {
      expect(got).toEqual([]);
    }
  });

  it("a NUL inside the name ends it on the wire: what follows is read as the mode and refused", async () => {
    for (const name of ["ipxe.efi\0../secret.txt", "../secret.txt\0ipxe.efi"]) {
      const got = await tftpAttempt(rrq(Buffer.from(name)));
      expect(got.some((p) => p.op === "data" || p.op === "oack"), `${JSON.stringify(name)}: ${JSON.stringify(got)}`).toBe(false);
    }
  });

  it("a grub.cfg request under any directory gets the generated config, never a file of that name", async () => {
    for (const name of ["escape/grub.cfg", "sub/grub.cfg", "grub.cfg", `escape/grub.cfg-01-${MAC}`]) {
      const r = await tftpGet({ port: tftpPort, name, deadlineMs: 10_000 });
      expect(r.error, name).toBeUndefined();
      expectNoSecret(r.data!, `TFTP ${name}`);
      expect(r.data!.toString(), name).toMatch(/127\.0\.0\.1|linux|configfile|source/);
    }
    // With `..` the guard refuses before any lookup.
    const up = await tftpAttempt(rrq(Buffer.from("../outside/grub.cfg")));
    expect(up.map((p) => p.op)).toEqual(["error"]);
  });
});

describe("HTTP: boot paths never reach a file outside the fixed map", () => {
  const abs = () => join(base, "secret.txt");
  const targets = (): Array<string | Buffer> => [
    "/bootloaders/../secret.txt",
    "/bootloaders/../../../../etc/passwd",
    "/bootloaders/..%2fsecret.txt",
    "/bootloaders/..%2Fsecret.txt",
    "/bootloaders/%2e%2e%2fsecret.txt",
    "/bootloaders/%2e%2e/secret.txt",
    "/bootloaders/%252e%252e%252fsecret.txt",
    "/bootloaders/%25%32%65%25%32%65%25%32%66secret.txt",
    "/bootloaders/..%5csecret.txt",
    "/bootloaders/..\\secret.txt",
    "/bootloaders\\..\\secret.txt",
    "/bootloaders/sub/secret.txt",
    "/bootloaders/sub%2fsecret.txt",
    "/bootloaders/escape/secret.txt",
    "/bootloaders/escape%2fsecret.txt",
    "/bootloaders/escape%2fgrub.cfg",
    "/bootloaders/escape",
    "/bootloaders/sub",
    "/bootloaders/dangling",
    `/bootloaders/${encodeURIComponent(abs())}`,
    `/bootloaders/${abs()}`,
    `/bootloaders//${abs()}`,
    "/bootloaders/secret.txt%00.efi",
    "/bootloaders/ipxe.efi%00../secret.txt",
    Buffer.from("/bootloaders/ipxe.efi\0../secret.txt", "latin1"),
    "/bootloaders/late.efi",
    "/bootloaders/late-link.efi",
    "/../../secret.txt",
    "/%2e%2e/%2e%2e/secret.txt",
    `/%2e%2e${abs()}`,
    `/boot/${MAC}/kernel/../../../secret.txt`,
    `/boot/${MAC}/../../secret.txt`,
    `/boot/..%2f..%2fsecret.txt/kernel`,
    `/boot/%2e%2e/kernel`,
    `/boot/%252e%252e/kernel`,
    `/boot/%252e%252e%25/kernel`,
    `/boot/${MAC}/config/..%2f..%2f..%2fsecret.txt`,
    `/boot/${MAC}/config/%2e%2e`,
    `/boot/${MAC}/initrd-0%2f..%2f..%2fsecret.txt`,
    `/boot/${MAC}/grub.cfg%2f..%2f..%2fsecret.txt`,
    `/boot/${MAC}/..%5c..%5csecret.txt`,
  ];

  it("serves the map over HTTP too, with the in-dir symlink resolved at start", async () => {
    const ipxe = await rawGet(httpPort, "/bootloaders/ipxe.efi");
    expect(ipxe.status).toBe(200);
    expect(ipxe.body.equals(IPXE)).toBe(true);
    const linked = await rawGet(httpPort, "/bootloaders/linked.efi");
    expect(linked.status).toBe(200);
    expect(linked.body.equals(TARGET)).toBe(true);
    expectNoSecret(linked.raw, "HTTP linked.efi");
  });

  it.each(targets().map((t) => [typeof t === "string" ? t : t.toString("latin1"), t] as const))("refuses %j (400 or 404), no secret in the answer", async (_label, target) => {
    const r = await rawGet(httpPort, target);
    expectNoSecret(r.raw, `HTTP ${JSON.stringify(_label)}`);
    expect(r.timedOut, "answered").toBe(false);
    expect([400, 404], `status ${r.status}\n${r.raw.toString("latin1").slice(0, 300)}`).toContain(r.status);
  });

  it("counted no internal error while refusing", async () => {
    const errors = (await daemon!.metrics.errors.get()).values.reduce((n, v) => n + v.value, 0);
    expect(errors).toBe(0);
  });
});

describe("all answers together", () => {
  it("carried no byte of any secret", () => {
    const all = Buffer.concat(seen).toString("latin1");
    expect(seen.length).toBeGreaterThan(50);
    for (const secret of Object.values(SECRETS)) expect(all.includes(secret)).toBe(false);
    // And the files really were there to be leaked.
    expect(readFileSync(join(base, "secret.txt"), "utf8")).toBe(SECRETS.sibling);
  });
});

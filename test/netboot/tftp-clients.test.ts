/**
 * Real TFTP clients nobody here wrote (tftp-hpa, curl, atftp) against our
 * server on 127.0.0.1, in-process. Unicast loopback needs no namespace.
 *
 * The resolver here is deliberately naive (root + name, a path walk): if the
 * server's name guard let `..` through, these clients would read the secret
 * file beside the root. The daemon's real resolver is a map lookup.
 */
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TftpResolution } from "../../src/boot/types.js";
import { silentLogger } from "../../src/log.js";
import { Metrics } from "../../src/metrics.js";
import { TftpServer } from "../../src/tftp/server.js";
import { requireTool } from "../helpers/tools.js";

const HOST = "127.0.0.1";
// LCM of 512 and 1468: an exact multiple of both block sizes used below, so the last block is empty.
const EXACT = 187_904;

interface Run {
  code: number | string;
  stdout: string;
  stderr: string;
}

/** Async on purpose: the server runs in this process and must keep serving while the client runs. */
function run(cmd: string, args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, timeout: 60_000, killSignal: "SIGKILL" }, (err, stdout, stderr) => {
      const code = err ? ((err as NodeJS.ErrnoException).code ?? "failed") : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

let base: string;
let root: string;
let out: string;
let secret: string;
let server: TftpServer;
let metrics: Metrics;
let port: string;
const files = new Map<string, Buffer>();
let outCounter = 0;

function sha256(b: Buffer): string {
  return createHash("sha256").update(b).digest("hex");
}

function fresh(): string {
  return join(out, `download-${++outCounter}`);
}

function expectSameFile(path: string, name: string): void {
  const want = files.get(name)!;
  expect(existsSync(path), `${path} was not written`).toBe(true);
  const got = readFileSync(path);
  expect({ size: got.length, sha256: sha256(got) }).toEqual({ size: want.length, sha256: sha256(want) });
}

/** Not the secret, whatever the client wrote. */
function expectNoSecret(path: string): void {
  if (existsSync(path)) expect(readFileSync(path).toString("latin1")).not.toContain(secret);
}

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), "tftp-clients-"));
  root = join(base, "root");
  out = join(base, "out");
  await mkdir(join(root, "grub"), { recursive: true });
  await mkdir(out);
  secret = `secret-${randomBytes(8).toString("hex")}`;
  await writeFile(join(base, "secret.txt"), secret);
  const put = async (name: string, data: Buffer) => {
    files.set(name, data);
    await writeFile(join(root, name), data);
  };
  await put("ipxe.efi", randomBytes(1_100_003));
  await put("exact.bin", randomBytes(EXACT));
  await put("empty.bin", Buffer.alloc(0));
  await put("grub/grub.cfg", Buffer.from("set timeout=1\nmenuentry talos {\n  linux /vmlinuz\n}\n"));

  metrics = new Metrics();
  server = new TftpServer({
    port: 0,
    address: HOST,
    log: silentLogger(),
    metrics,
    resolver: {
      resolve: (name): TftpResolution => ({ ok: true, source: { kind: "file", path: join(root, name) } }),
    },
  });
  await server.start();
  port = String(server.listeningPort);
});

afterAll(async () => {
  await server?.stop();
  if (base) await rm(base, { recursive: true, force: true });
});

const servedNames = ["ipxe.efi", "exact.bin", "empty.bin", "grub/grub.cfg"];

describe.skipIf(!requireTool("tftp", "tftp-hpa"))("tftp-hpa client", () => {
  const get = (name: string, local: string, mode = "binary") => run("tftp", ["-m", mode, HOST, port, "-c", "get", name, local], out);

  it.each(servedNames)("downloads %s byte-identical", async (name) => {
    const local = fresh();
    const r = await get(name, local);
    expect(r.stdout + r.stderr).not.toMatch(/Error code|Transfer timed out/);
    expectSameFile(local, name);
  });

  it("netascii mode returns Unix text unchanged (served byte for byte)", async () => {
    const local = fresh();
    const r = await get("grub/grub.cfg", local, "netascii");
    expect(r.stdout + r.stderr).not.toMatch(/Error code/);
    expectSameFile(local, "grub/grub.cfg");
  });

  it("is refused traversal with error 2", async () => {
    for (const name of ["../secret.txt", "grub/../../secret.txt", "..\\secret.txt", "%2e%2e/secret.txt"]) {
      const local = fresh();
      const r = await get(name, local);
      expect(r.stdout, name).toMatch(/Error code 2: access violation/);
      expectNoSecret(local);
    }
  });

  it("an absolute path to a real file outside the root is only a name under the root: not found", async () => {
    const local = fresh();
    const r = await get(join(base, "secret.txt"), local);
    expect(r.stdout).toMatch(/Error code 1: file not found/);
    expectNoSecret(local);
  });

  it("cannot upload (WRQ → error 2)", async () => {
    const upload = join(out, "upload.txt");
    await writeFile(upload, "should not arrive");
    const r = await run("tftp", ["-m", "binary", HOST, port, "-c", "put", upload, "uploaded.txt"], out);
    expect(r.stdout).toMatch(/Error code 2: read-only server/);
    expect(existsSync(join(root, "uploaded.txt"))).toBe(false);
  });
});

describe.skipIf(!requireTool("curl", "curl"))("curl", () => {
  // curl asks tsize and timeout too, so these go through the OACK path.
  const get = (urlPath: string, local: string, extra: string[] = []) =>
    run("curl", ["-sS", "--max-time", "50", "-o", local, ...extra, `tftp://${HOST}:${port}/${urlPath}`], out);

  // Not empty.bin: curl refuses an OACK carrying tsize 0 ("invalid tsize value in OACK
  // packet", CURLE_TFTP_ILLEGAL), though 0 is that file's true size (RFC 2349).
  it.each(servedNames.filter((n) => n !== "empty.bin"))("downloads %s with --tftp-blksize 1468, byte-identical", async (name) => {
    const local = fresh();
    const r = await get(name, local, ["--tftp-blksize", "1468"]);
    expect(r.code, r.stderr).toBe(0);
    expectSameFile(local, name);
  });

  it("downloads an empty file without options (plain RFC 1350)", async () => {
    const local = fresh();
    const r = await get("empty.bin", local, ["--tftp-no-options"]);
    expect(r.code, r.stderr).toBe(0);
    expectSameFile(local, "empty.bin");
  });

  it("downloads with the default block size", async () => {
    const local = fresh();
    const r = await get("ipxe.efi", local);
    expect(r.code, r.stderr).toBe(0);
    expectSameFile(local, "ipxe.efi");
  });

  it("is refused traversal (curl exit 69: TFTP access violation)", async () => {
    for (const [urlPath, extra] of [
      ["../secret.txt", ["--path-as-is"]],
      ["%2e%2e/secret.txt", []],
      ["grub/%2e%2e/%2e%2e/secret.txt", []],
    ] as const) {
      const local = fresh();
      const r = await get(urlPath, local, [...extra]);
      expect(r.code, `${urlPath}: ${r.stderr}`).toBe(69);
      expectNoSecret(local);
    }
  });

  it("gets exit 68 (TFTP not found) for a missing file", async () => {
    const r = await get("no-such-file.efi", fresh());
    expect(r.code).toBe(68);
  });
});

describe.skipIf(!requireTool("atftp", "atftp"))("atftp", () => {
  const get = (name: string, local: string, options: string[]) =>
    run("atftp", ["-g", "-r", name, "-l", local, ...options.flatMap((o) => ["--option", o]), HOST, port], out);

  it.each(servedNames)("downloads %s with blksize 1468 and windowsize 8, byte-identical", async (name) => {
    const local = fresh();
    const r = await get(name, local, ["blksize 1468", "windowsize 8", "tsize"]);
    expect(r.code, r.stderr).toBe(0);
    expectSameFile(local, name);
  });

  it("downloads with windowsize 4 at blksize 512 (EDK2-like window, many windows)", async () => {
    const local = fresh();
    const r = await get("ipxe.efi", local, ["windowsize 4"]);
    expect(r.code, r.stderr).toBe(0);
    expectSameFile(local, "ipxe.efi");
  });

  it("is refused traversal with the server's access violation", async () => {
    for (const name of ["../secret.txt", "grub/../../secret.txt", "/../secret.txt"]) {
      const local = fresh();
      const r = await get(name, local, []);
      expect(r.code, name).not.toBe(0);
      expect(r.stderr, name).toMatch(/access violation/);
      expectNoSecret(local);
    }
  });
});

describe("server state after the clients", () => {
  it("has no transfer left and counted no malformed packet", async () => {
    // Clients have exited. A client that vanished without an ERROR leaves a transfer that
    // ends by timeout: (retries + 1) × 1 s with the defaults, well inside this bound.
    for (let i = 0; i < 500 && server.activeTransfers > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(server.activeTransfers).toBe(0);
    const malformed = (await metrics.malformedPackets.get()).values.find((v) => v.labels.protocol === "tftp")?.value ?? 0;
    expect(malformed).toBe(0);
  });
});

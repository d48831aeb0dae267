/**
 * The control API against hostile requests, on loopback: missing, wrong and
 * near-miss tokens (401 on every path under /api/v1), malformed JSON,
 * oversized bodies — declared, chunked, and never finished — and invalid MACs
 * (400). After every refused request the machines, their timelines and the
 * unknown-machine list are exactly what they were before.
 */
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfigText } from "../../src/config/load.js";
import { Daemon } from "../../src/daemon.js";
import { MAX_API_BODY } from "../../src/http/api-routes.js";
import { silentLogger } from "../../src/log.js";
import { bootFiles, tempDir } from "../helpers/fixtures.js";
import { freeTcpPort } from "../helpers/ports.js";
import { rawHttp, type RawResponse } from "../helpers/raw-http.js";

const TOKEN = "hostile-test-token-0123456789abcdef";
/** From the config file. */
const M_CONFIG = "52:54:00:aa:00:01";
/** Registered over the API in beforeAll. */
const M_API = "52:54:00:aa:00:02";
/** Never registered: refused writes must not create it. */
const M_NEW = "52:54:00:aa:00:03";
const MIB = 1024 * 1024;

let daemon: Daemon | undefined;
let base = "";
let port = 0;

const asBody = (b: string | Buffer): string | ArrayBuffer => (typeof b === "string" ? b : (b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer));
const url = (path: string) => `http://127.0.0.1:${port}/api/v1${path}`;
const auth = { "X-API-Key": TOKEN };

/** Everything a refused request could have changed, read with a valid token. */
async function snapshot(): Promise<unknown> {
  const machines = await (await fetch(url("/machines"), { headers: auth })).json();
  const unknown = await (await fetch(url("/unknown-machines"), { headers: auth })).json();
  return { machines, unknown };
}

/** Runs `refused` and checks that it left the state exactly as it was. */
async function unchangedBy(what: string, refused: () => Promise<void>): Promise<void> {
  const before = await snapshot();
  await refused();
  expect(await snapshot(), `${what} changed the state`).toEqual(before);
}

async function expectError(res: Response | RawResponse, status: number, code: string, what: string): Promise<void> {
  const text = res instanceof Response ? await res.text() : res.body.toString("utf8");
  expect(res.status, `${what}: ${text.slice(0, 300)}`).toBe(status);
  const body = JSON.parse(text) as Record<string, unknown>;
  expect(body, what).toMatchObject({ error: code, status });
  expect(typeof body.message, what).toBe("string");
  expect(text, `${what}: the answer must never carry the token`).not.toContain(TOKEN);
}

beforeAll(async () => {
  base = tempDir("tnb-api-hostile-");
  const files = bootFiles();
  port = await freeTcpPort();
  mkdirSync(join(base, "state"));
  const config = parseConfigText(
    `
server: { address: 127.0.0.1 }
dhcp: { enabled: false }
tftp: { enabled: false }
http: { port: ${port}, address: 127.0.0.1 }
stateDir: ${join(base, "state")}
bootloaders: { dir: ${files.dir}, grubEfi: null }
api: { tokens: ["${TOKEN}"] }
profiles:
  rescue: { kernel: ${files.kernel}, initrd: [${files.initrd}], config: ${files.config} }
  other: { kernel: ${files.kernel} }
machines:
  - { mac: "${M_CONFIG}", profile: rescue, hostname: node-1 }
`,
    "api-hostile.yaml",
  );
  daemon = await Daemon.start({ config, log: silentLogger() });
  const put = await fetch(url(`/machines/${M_API}`), { method: "PUT", headers: auth, body: JSON.stringify({ profile: "rescue", hostname: "node-2" }) });
  expect(put.status).toBe(200);
  // A timeline entry and an unknown machine, so a refused request has something to disturb.
  expect((await fetch(url(`/machines/${M_API}/boot`), { method: "POST", headers: auth, body: JSON.stringify({ next: "profile" }) })).status).toBe(200);
  expect((await fetch(`http://127.0.0.1:${port}/boot/52-54-00-aa-00-99/boot.ipxe`)).status).toBe(404);
});

afterAll(async () => {
  await daemon?.stop();
  if (base) rmSync(base, { recursive: true, force: true });
});

describe("tokens: every path under /api/v1 answers 401 without the right one", () => {
  const requests: Array<[string, string, unknown?]> = [
    ["GET", "/machines"],
    ["GET", `/machines/${M_API}`],
    ["PUT", `/machines/${M_NEW}`, { profile: "rescue" }],
    ["PUT", `/machines/${M_API}`, { profile: "other" }],
    ["DELETE", `/machines/${M_API}`],
    ["POST", `/machines/${M_API}/boot`, { next: "local" }],
    ["GET", "/unknown-machines"],
    ["GET", "/no-such-route"],
    ["PATCH", `/machines/${M_API}`, { profile: "other" }],
    ["POST", "/talos/configs/generate", {}],
    ["GET", "/assets"],
    ["POST", "/schematics", {}],
    ["DELETE", "/"],
  ];
  const wrong = TOKEN.replace(/.$/, (c) => (c === "f" ? "e" : "f"));
  const credentials: Array<[string, Record<string, string>, string?]> = [
    ["no credentials", {}],
    ["a wrong token of the same length", { "X-API-Key": wrong }],
    ["the token minus its last character", { "X-API-Key": TOKEN.slice(0, -1) }],
    ["the token plus a character", { "X-API-Key": `${TOKEN}x` }],
    ["the token upper-cased", { "X-API-Key": TOKEN.toUpperCase() }],
    ["an empty X-API-Key", { "X-API-Key": "" }],
    ["Bearer with a wrong token", { Authorization: `Bearer ${wrong}` }],
    ["Bearer with nothing", { Authorization: "Bearer" }],
    ["the token under Basic", { Authorization: `Basic ${Buffer.from(`admin:${TOKEN}`).toString("base64")}` }],
    ["the token without a scheme", { Authorization: TOKEN }],
    ["the token in a cookie", { Cookie: `token=${TOKEN}; api_key=${TOKEN}` }],
    ["the token in the query string", {}, `?token=${TOKEN}&api_key=${TOKEN}&X-API-Key=${TOKEN}`],
    ["the token in another header", { "X-Api-Token": TOKEN, "X-Auth-Token": TOKEN }],
  ];

  it.each(credentials)("%s: 401 on every route, nothing changed", async (what, headers, query = "") => {
    await unchangedBy(what, async () => {
      for (const [method, path, body] of requests) {
        const res = await fetch(url(path) + query, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
        await expectError(res, 401, "UNAUTHORIZED", `${what}: ${method} ${path}`);
      }
    });
  });

  it("the right token works (the routes above are real)", async () => {
    expect((await fetch(url(`/machines/${M_API}`), { headers: auth })).status).toBe(200);
    expect((await fetch(url(`/machines/${M_API}`), { headers: { Authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
  });
});

describe("malformed JSON: 400, nothing changed", () => {
  const notJson: Array<[string, string | Buffer]> = [
    ["an unterminated object", "{not json"],
    ["an empty body", ""],
    ["a lone brace", "{"],
    ["a trailing comma", '{"profile": "rescue",}'],
    ["single quotes", "{'profile': 'rescue'}"],
    ["trailing garbage", '{"profile": "rescue"} trailing'],
    ["two documents", '{"profile": "rescue"}{"profile": "other"}'],
    ["a NUL byte", '{"profile": "rescue"}\u0000'],
    ["NaN", '{"profile": NaN}'],
  ];
  const wrongShape: Array<[string, string | Buffer]> = [
    // Decoded with U+FFFD replacing the bad bytes: valid JSON with a key nobody asked for.
    ["invalid UTF-8", Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])],
    ["null", "null"],
    ["an array", '[{"profile": "rescue"}]'],
    ["a string", '"rescue"'],
    ["a number", "42"],
    ["an empty object", "{}"],
    ["a number as profile", '{"profile": 5}'],
    ["an unknown key", '{"profile": "rescue", "admin": true}'],
    ["a __proto__ key", '{"profile": "rescue", "__proto__": {"polluted": true}}'],
    ["a constructor key", '{"profile": "rescue", "constructor": {"prototype": {"polluted": true}}}'],
    ["deep nesting", `${"[".repeat(20_000)}${"]".repeat(20_000)}`],
    ["an unknown profile", '{"profile": "no-such-profile"}'],
    ["a profile with a path", '{"profile": "../rescue"}'],
    ["a bad hostname", '{"profile": "rescue", "hostname": "Not_A_Host"}'],
    ["a bootfile with a path", '{"profile": "rescue", "bootfile": "../../etc/passwd"}'],
  ];
  const targets: Array<[string, string]> = [
    ["PUT", `/machines/${M_NEW}`],
    ["PUT", `/machines/${M_API}`],
    ["POST", `/machines/${M_API}/boot`],
  ];

  it.each(notJson)("%s → 400 INVALID_JSON on every JSON route", async (what, body) => {
    await unchangedBy(what, async () => {
      for (const [method, path] of targets) {
        await expectError(await fetch(url(path), { method, headers: { ...auth, "Content-Type": "application/json" }, body: asBody(body) }), 400, "INVALID_JSON", `${what}: ${method} ${path}`);
      }
    });
  });

  it.each(wrongShape)("%s → 400 on every JSON route", async (what, body) => {
    await unchangedBy(what, async () => {
      for (const [method, path] of targets) {
        const res = await fetch(url(path), { method, headers: { ...auth, "Content-Type": "application/json" }, body: asBody(body) });
        const text = await res.text();
        expect(res.status, `${what}: ${method} ${path}: ${text}`).toBe(400);
        expect(JSON.parse(text), what).toMatchObject({ status: 400 });
      }
    });
    expect(({} as Record<string, unknown>).polluted, "Object.prototype untouched").toBeUndefined();
  });
});

describe(`oversized bodies (the limit is ${MAX_API_BODY} bytes): 400, nothing changed`, () => {
  /** Valid JSON for PUT of exactly `size` bytes (whitespace padding). */
  const paddedPut = (size: number) => {
    const json = JSON.stringify({ profile: "other" });
    return `${json}${" ".repeat(size - json.length)}`;
  };

  it("a body of exactly the limit is accepted (the boundary is where it says)", async () => {
    const res = await fetch(url(`/machines/${M_NEW}`), { method: "PUT", headers: auth, body: paddedPut(MAX_API_BODY) });
    expect(res.status, await res.text()).toBe(200);
    expect((await fetch(url(`/machines/${M_NEW}`), { method: "DELETE", headers: auth })).status).toBe(204);
  });

  it("one byte over, and 2 MiB, with Content-Length → 400 BODY_TOO_LARGE", async () => {
    for (const size of [MAX_API_BODY + 1, 2 * MIB]) {
      await unchangedBy(`${size} bytes`, async () => {
        await expectError(await fetch(url(`/machines/${M_NEW}`), { method: "PUT", headers: auth, body: paddedPut(size) }), 400, "BODY_TOO_LARGE", `${size} bytes`);
        await expectError(await fetch(url(`/machines/${M_API}/boot`), { method: "POST", headers: auth, body: `{"next":"local"}${" ".repeat(size - 16)}` }), 400, "BODY_TOO_LARGE", `${size} bytes`);
      });
    }
  });

  const head = (path: string, extra: string) =>
    `PUT /api/v1${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: ${TOKEN}\r\nContent-Type: application/json\r\nConnection: close\r\n${extra}\r\n`;

  it("2 MiB declared in Content-Length but never sent → 400 at once", async () => {
    await unchangedBy("a declared 2 MiB body", async () => {
      const r = await rawHttp(port, [head(`/machines/${M_NEW}`, `Content-Length: ${2 * MIB}\r\n`)], { headOnly: true, timeoutMs: 10_000 });
      expect(r.timedOut, "answered before the body came").toBe(false);
      expect(r.status).toBe(400);
    });
  });

  it("2 MiB chunked, without Content-Length → 400 BODY_TOO_LARGE", async () => {
    await unchangedBy("a chunked 2 MiB body", async () => {
      const json = Buffer.from(paddedPut(2 * MIB));
      const parts: Array<string | Buffer> = [head(`/machines/${M_NEW}`, "Transfer-Encoding: chunked\r\n")];
      for (let off = 0; off < json.length; off += 64 * 1024) {
        const chunk = json.subarray(off, off + 64 * 1024);
        parts.push(`${chunk.length.toString(16)}\r\n`, chunk, "\r\n");
      }
      parts.push("0\r\n\r\n");
      const r = await rawHttp(port, parts, { timeoutMs: 20_000 });
      expect(r.timedOut).toBe(false);
      await expectError(r, 400, "BODY_TOO_LARGE", "chunked 2 MiB");
    });
  });

  it("a chunked body that passes the limit is refused without waiting for (or buffering) the rest", async () => {
    await unchangedBy("an endless chunked body", async () => {
      // 1 MiB + 64 KiB sent, then the client stalls as if gigabytes were still coming.
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const start = '{"profile":"rescue"';
      const parts: Array<string | Buffer> = [head(`/machines/${M_NEW}`, "Transfer-Encoding: chunked\r\n"), `${start.length.toString(16)}\r\n${start}\r\n`];
      for (let i = 0; i < 17; i++) parts.push(`${chunk.length.toString(16)}\r\n`, chunk, "\r\n");
      const r = await rawHttp(port, parts, { headOnly: true, timeoutMs: 10_000 });
      expect(r.timedOut, "the server must answer once the body is over the limit, not wait for its end").toBe(false);
      // The application's own refusal, not the HTTP parser's.
      await expectError(r, 400, "BODY_TOO_LARGE", "an endless chunked body");
    });
  });
});

describe("invalid MACs: 400 INVALID_MAC on every MAC route, nothing changed", () => {
  const macs = [
    "zz-bb-cc-dd-ee-01",
    "52:54:00:aa:00",
    "52:54:00:aa:00:02:03",
    "52:54:00:aa:00:0g",
    "52-54:00-aa:00-02",
    "5254.00aa.0002",
    "52%3A54%3A00%3Aaa%3A00",
    "%00",
    "%252e%252e",
    "%25zz",
    "%E2%80%8B52:54:00:aa:00:02",
    "%EF%BC%95%EF%BC%92:54:00:aa:00:02",
    "a".repeat(4096),
  ];
  it.each(macs)("%s", async (mac) => {
    await unchangedBy(mac, async () => {
      const calls: Array<[string, string, unknown?]> = [
        ["GET", `/machines/${mac}`],
        ["PUT", `/machines/${mac}`, { profile: "rescue" }],
        ["DELETE", `/machines/${mac}`],
        ["POST", `/machines/${mac}/boot`, { next: "local" }],
      ];
      for (const [method, path, body] of calls) {
        // Byte-exact: fetch() would fold `..` and `%2e%2e` into another path before sending.
        const json = body === undefined ? "" : JSON.stringify(body);
        const head = `${method} /api/v1${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: ${TOKEN}\r\nContent-Length: ${json.length}\r\nConnection: close\r\n\r\n`;
        const res = await rawHttp(port, [head, json]);
        await expectError(res, 400, "INVALID_MAC", `${method} ${path.slice(0, 80)}`);
      }
    });
  });
});

describe("after all of it", () => {
  it("the API still works and counted no internal error", async () => {
    const put = await fetch(url(`/machines/${M_NEW}`), { method: "PUT", headers: auth, body: JSON.stringify({ profile: "other" }) });
    expect(put.status).toBe(200);
    expect((await fetch(url(`/machines/${M_NEW}`), { method: "DELETE", headers: auth })).status).toBe(204);
    const list = (await (await fetch(url("/machines"), { headers: auth })).json()) as { machines: Array<{ mac: string; source: string; next: string }> };
    expect(list.machines.map((m) => [m.mac, m.source, m.next])).toEqual([
      [M_CONFIG, "config", "profile"],
      [M_API, "api", "profile"],
    ]);
    const errors = (await daemon!.metrics.errors.get()).values.reduce((n, v) => n + v.value, 0);
    expect(errors, "internal errors counted").toBe(0);
  });
});

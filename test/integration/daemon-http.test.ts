import { createHash } from "node:crypto";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseConfigText } from "../../src/config/load.js";
import { Daemon } from "../../src/daemon.js";
import { silentLogger } from "../../src/log.js";
import { bootFiles, tempDir } from "../helpers/fixtures.js";
import { freeTcpPort } from "../helpers/ports.js";

const TOKEN = "test-token-0123456789";
const M = "52:54:00:12:34:56";
const MD = "52-54-00-12-34-56";

let daemon: Daemon | undefined;
let base = "";
let stateDir = "";
let configPath = "";
let files: ReturnType<typeof bootFiles>;

function configText(port: number, extra = ""): string {
  return `
server: { address: 127.0.0.1 }
dhcp: { enabled: false }
tftp: { enabled: false }
http: { port: ${port}, address: 127.0.0.1 }
stateDir: ${stateDir}
bootloaders: { dir: ${files.dir}, grubEfi: null }
api: { tokens: ["${TOKEN}"] }
profiles:
  rescue: { kernel: ${files.kernel}, initrd: [${files.initrd}], cmdline: "console=ttyS0", config: ${files.config} }
  other: { kernel: ${files.kernel} }
machines:
  - { mac: "${M}", profile: rescue, hostname: node-1 }
${extra}`;
}

async function start(extra = ""): Promise<void> {
  const port = await freeTcpPort();
  base = `http://127.0.0.1:${port}`;
  writeFileSync(configPath, configText(port, extra));
  const config = parseConfigText(readFileSync(configPath, "utf8"), configPath);
  daemon = await Daemon.start({ config, configPath, log: silentLogger() });
}

const api = (path: string, init: RequestInit = {}) =>
  fetch(`${base}/api/v1${path}`, { ...init, headers: { "X-API-Key": TOKEN, "Content-Type": "application/json", ...(init.headers ?? {}) } });

beforeEach(async () => {
  files = bootFiles();
  stateDir = join(tempDir(), "state");
  configPath = join(tempDir(), "talos-netboot.yaml");
  await start();
});
afterEach(async () => {
  await daemon?.stop();
  daemon = undefined;
});

describe("control API", () => {
  it("needs a token on every route, by X-API-Key or Bearer", async () => {
    for (const path of ["/machines", `/machines/${M}`, "/unknown-machines"]) {
      const res = await fetch(`${base}/api/v1${path}`);
      expect(res.status).toBe(401);
      const body = await res.json();
      expect(body).toMatchObject({ error: "UNAUTHORIZED", status: 401, path: `/api/v1${path}`, details: {} });
      expect(Date.parse(body.timestamp)).not.toBeNaN();
    }
    expect((await fetch(`${base}/api/v1/machines`, { headers: { "X-API-Key": "wrong-token-0123456789" } })).status).toBe(401);
    expect((await fetch(`${base}/api/v1/machines`, { headers: { Authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
  });

  it("registers, lists, shows, re-boots and deletes machines; MACs with : or - in any case", async () => {
    const put = await api("/machines/AA-BB-CC-DD-EE-01", { method: "PUT", body: JSON.stringify({ profile: "rescue", hostname: "n2", bootfile: "snponly.efi" }) });
    expect(put.status).toBe(200);
    expect(await put.json()).toEqual({
      mac: "aa:bb:cc:dd:ee:01",
      profile: "rescue",
      hostname: "n2",
      bootfile: "snponly.efi",
      source: "api",
      next: "profile",
      lastSeen: null,
      timeline: [],
    });
    const list = (await (await api("/machines")).json()) as { machines: Array<{ mac: string; source: string }> };
    expect(list.machines.map((m) => [m.mac, m.source])).toEqual([
      [M, "config"],
      ["aa:bb:cc:dd:ee:01", "api"],
    ]);
    expect(await (await api("/machines/aa:BB:cc:dd:ee:01")).json()).toMatchObject({ hostname: "n2" });
    const boot = await api("/machines/aa-bb-cc-dd-ee-01/boot", { method: "POST", body: JSON.stringify({ next: "local" }) });
    expect(await boot.json()).toMatchObject({ next: "local", timeline: [{ step: "boot-set", details: { next: "local", by: "api" } }] });
    expect((await api("/machines/aa-bb-cc-dd-ee-01", { method: "DELETE" })).status).toBe(204);
    expect((await api("/machines/aa-bb-cc-dd-ee-01")).status).toBe(404);
  });

  it("refuses to change or delete config-file machines (409)", async () => {
    const del = await api(`/machines/${MD}`, { method: "DELETE" });
    expect(del.status).toBe(409);
    expect(await del.json()).toMatchObject({ error: "CONFIG_MACHINE", status: 409 });
    expect((await api(`/machines/${MD}`, { method: "PUT", body: JSON.stringify({ profile: "other" }) })).status).toBe(409);
    // Runtime state of a config machine may change.
    expect((await api(`/machines/${MD}/boot`, { method: "POST", body: JSON.stringify({ next: "local" }) })).status).toBe(200);
  });

  it("answers bad input with 400 and our error shape", async () => {
    const cases: Array<[string, RequestInit, string]> = [
      ["/machines/aa-bb-cc-dd-ee-01", { method: "PUT", body: "{not json" }, "INVALID_JSON"],
      ["/machines/aa-bb-cc-dd-ee-01", { method: "PUT", body: JSON.stringify({ profile: "nope" }) }, "UNKNOWN_PROFILE"],
      ["/machines/aa-bb-cc-dd-ee-01", { method: "PUT", body: JSON.stringify({ profile: "rescue", hostname: "Not_A_Host" }) }, "VALIDATION_FAILED"],
      ["/machines/aa-bb-cc-dd-ee-01", { method: "PUT", body: JSON.stringify({ profile: "rescue", surprise: 1 }) }, "VALIDATION_FAILED"],
      ["/machines/zz-bb-cc-dd-ee-01", { method: "PUT", body: JSON.stringify({ profile: "rescue" }) }, "INVALID_MAC"],
      ["/machines/aa-bb-cc-dd-ee-01", { method: "PUT", body: JSON.stringify({ profile: "rescue", hostname: "x".repeat(70 * 1024) }) }, "BODY_TOO_LARGE"],
      [`/machines/${MD}/boot`, { method: "POST", body: JSON.stringify({ next: "sideways" }) }, "VALIDATION_FAILED"],
    ];
    for (const [path, init, code] of cases) {
      const res = await api(path, init);
      expect(res.status, `${path} ${code}`).toBe(400);
      const body = await res.json();
      expect(body).toMatchObject({ error: code, status: 400 });
      expect(typeof body.message).toBe("string");
    }
    expect((await api("/machines")).status).toBe(200);
    expect((await api("/machines/aa-bb-cc-dd-ee-01")).status).toBe(404);
  });

  it("echoes X-Correlation-ID", async () => {
    const res = await api("/machines", { headers: { "X-Correlation-ID": "req-42" } });
    expect(res.headers.get("x-correlation-id")).toBe("req-42");
    const unauth = await fetch(`${base}/api/v1/machines`, { headers: { "X-Correlation-ID": "req-43" } });
    expect(unauth.headers.get("x-correlation-id")).toBe("req-43");
  });

  it("keeps API machines across a restart", async () => {
    await api("/machines/aa-bb-cc-dd-ee-02", { method: "PUT", body: JSON.stringify({ profile: "other" }) });
    await daemon!.stop();
    await start();
    expect(await (await api("/machines/aa-bb-cc-dd-ee-02")).json()).toMatchObject({ profile: "other", source: "api" });
  });

  it("creates an owner-only API token file when no token is configured, and accepts it", async () => {
    await daemon!.stop();
    const port = await freeTcpPort();
    base = `http://127.0.0.1:${port}`;
    const config = parseConfigText(configText(port).replace(`api: { tokens: ["${TOKEN}"] }`, ""), "t");
    daemon = await Daemon.start({ config, log: silentLogger() });
    const path = join(stateDir, "api-token");
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const token = readFileSync(path, "utf8").trim();
    expect(token.length).toBeGreaterThanOrEqual(32);
    expect((await fetch(`${base}/api/v1/machines`, { headers: { "X-API-Key": token } })).status).toBe(200);
    expect((await fetch(`${base}/api/v1/machines`, { headers: { "X-API-Key": TOKEN } })).status).toBe(401);
  });
});

describe("boot path over HTTP", () => {
  it("serves script, kernel, initrd and config to the machine, and records each on its timeline", async () => {
    const script = await (await fetch(`${base}/boot/${MD}/boot.ipxe`)).text();
    const configUrl = /talos\.config=(\S+)/.exec(script)![1]!;
    expect(configUrl).toMatch(new RegExp(`^${base}/boot/${MD}/config/[A-Za-z0-9_-]{32}$`));
    const kernel = await fetch(`${base}/boot/${MD}/kernel`);
    expect(kernel.headers.get("content-length")).toBe(String(statSync(files.kernel).size));
    expect(Buffer.from(await kernel.arrayBuffer()).equals(readFileSync(files.kernel))).toBe(true);
    const initrd = Buffer.from(await (await fetch(`${base}/boot/${MD}/initrd-0`)).arrayBuffer());
    expect(createHash("sha256").update(initrd).digest("hex")).toBe(createHash("sha256").update(readFileSync(files.initrd)).digest("hex"));
    const cfg = await fetch(configUrl);
    expect(cfg.status).toBe(200);
    expect(cfg.headers.get("cache-control")).toBe("no-store");
    expect(await cfg.text()).toBe(readFileSync(files.config, "utf8"));
    expect((await fetch(configUrl)).status).toBe(200);

    const tl = ((await (await api(`/machines/${MD}`)).json()) as { timeline: Array<{ step: string; details: Record<string, unknown> }> }).timeline;
    // Body-complete callbacks land as the response ends: poll briefly (bounded).
    expect(tl.map((e) => e.step)).toEqual(expect.arrayContaining(["script", "config"]));
    let steps: string[] = [];
    for (let i = 0; i < 250; i++) {
      const t = ((await (await api(`/machines/${MD}`)).json()) as { timeline: Array<{ step: string; details: Record<string, unknown> }> }).timeline;
      steps = t.map((e) => e.step);
      if (steps.includes("kernel") && steps.includes("initrd")) {
        expect(t.find((e) => e.step === "initrd")!.details).toMatchObject({ bytes: 150_000 });
        expect(t.filter((e) => e.step === "config").map((e) => e.details.checkIn)).toEqual([true, false]);
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(steps).toEqual(["script", "kernel", "initrd", "config", "config"]);
  });

  it("answers 404 to a config URL with a wrong or missing token, and logs it on the timeline", async () => {
    expect((await fetch(`${base}/boot/${MD}/config/wrong-token`)).status).toBe(404);
    expect((await fetch(`${base}/boot/${MD}/config/`)).status).toBe(404);
    expect((await fetch(`${base}/boot/aa-bb-cc-dd-ee-99/config/anything`)).status).toBe(404);
    const tl = ((await (await api(`/machines/${MD}`)).json()) as { timeline: Array<{ step: string }> }).timeline;
    expect(tl.map((e) => e.step)).toEqual(["config-denied"]);
  });

  it("rotates the config URL when the machine is re-provisioned", async () => {
    const first = /talos\.config=(\S+)/.exec(await (await fetch(`${base}/boot/${MD}/boot.ipxe`)).text())![1]!;
    await api(`/machines/${MD}/boot`, { method: "POST", body: JSON.stringify({ next: "profile" }) });
    const second = /talos\.config=(\S+)/.exec(await (await fetch(`${base}/boot/${MD}/boot.ipxe`)).text())![1]!;
    expect(second).not.toBe(first);
    expect((await fetch(first)).status).toBe(404);
    expect((await fetch(second)).status).toBe(200);
  });

  it("tells a machine whose next boot is local to exit, and records local-boot", async () => {
    await api(`/machines/${MD}/boot`, { method: "POST", body: JSON.stringify({ next: "local" }) });
    const script = await (await fetch(`${base}/boot/${MD}/boot.ipxe`)).text();
    expect(script).toMatch(/^exit$/m);
    expect(script).not.toMatch(/^kernel/m);
    const tl = ((await (await api(`/machines/${MD}`)).json()) as { timeline: Array<{ step: string }> }).timeline;
    expect(tl.at(-1)!.step).toBe("local-boot");
  });

  it("gives unknown MACs nothing and records them", async () => {
    expect((await fetch(`${base}/boot/aa-bb-cc-dd-ee-77/boot.ipxe`)).status).toBe(404);
    const unknown = (await (await api("/unknown-machines")).json()) as { machines: Array<{ mac: string }> };
    expect(unknown.machines.map((m) => m.mac)).toEqual(["aa:bb:cc:dd:ee:77"]);
  });

  it("serves boot binaries with application/efi, and the generic chain script", async () => {
    writeFileSync(join(files.dir, "ipxe.efi"), "MZ-fake-efi");
    await daemon!.stop();
    await start();
    const efi = await fetch(`${base}/bootloaders/ipxe.efi`);
    expect(efi.headers.get("content-type")).toBe("application/efi");
    expect(efi.headers.get("content-length")).toBe("11");
    expect((await fetch(`${base}/bootloaders/..%2Fvmlinuz`)).status).toBe(404);
    expect(await (await fetch(`${base}/boot.ipxe`)).text()).toContain(`chain ${base}/boot/\${net0/mac:hexhyp}/boot.ipxe`);
  });

  it("exposes /healthz without a token and Prometheus metrics", async () => {
    expect(await (await fetch(`${base}/healthz`)).json()).toEqual({ status: "ok" });
    await fetch(`${base}/boot/${MD}/boot.ipxe`);
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).toMatch(/talos_netboot_http_requests_total\{route="script",status="200"\} 1/);
    expect(text).toMatch(/# TYPE talos_netboot_malformed_packets_total counter/);
  });
});

describe("reload", () => {
  it("applies a changed file and keeps the old config when the new one is invalid", async () => {
    const port = Number(new URL(base).port);
    writeFileSync(configPath, configText(port).replace("hostname: node-1", "hostname: renamed"));
    daemon!.reload();
    expect(await (await api(`/machines/${MD}`)).json()).toMatchObject({ hostname: "renamed" });
    writeFileSync(configPath, "profiles: [this is not a mapping\n");
    daemon!.reload();
    expect(await (await api(`/machines/${MD}`)).json()).toMatchObject({ hostname: "renamed" });
    writeFileSync(configPath, configText(port).replace(/machines:\n.*\n/, "machines: []\n"));
    daemon!.reload();
    expect((await api(`/machines/${MD}`)).status).toBe(404);
  });
});

describe("header names on the wire", () => {
  it("are canonical (Content-Length), as GRUB's HTTP client requires", async () => {
    const { request } = await import("node:http");
    const raw = await new Promise<string[]>((resolve, reject) => {
      const req = request(`${base}/boot/${MD}/grub.cfg`, (res) => {
        res.resume();
        res.on("end", () => resolve(res.rawHeaders));
      });
      req.on("error", reject);
      req.end();
    });
    const names = raw.filter((_, i) => i % 2 === 0);
    expect(names).toContain("Content-Length");
    expect(names).toContain("Content-Type");
    expect(names.some((n) => /^[a-z]/.test(n)), names.join(", ")).toBe(false);
  });
});

/**
 * `talos-netboot vm …` (runVmCommand, the code behind the commander
 * commands) and `/api/v1/providers/…` against the fake PVE server, with the
 * provider built from a config the way the daemon builds it: token secret
 * from a 0600 file, TLS trusted through the CA file.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Hono } from "hono";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiRoutes } from "../../src/http/api-routes.js";
import { silentLogger } from "../../src/log.js";
import { providerRoutes } from "../../src/providers/api.js";
import { runVmCommand, errorLine, type VmCliConfig, type VmCommandOptions } from "../../src/providers/cli.js";
import { providersSchema } from "../../src/providers/config.js";
import { createProvider, probeProxmox } from "../../src/providers/index.js";
import type { ProviderKind, VmProvider } from "../../src/providers/types.js";
import { ALL_FAMILIES, openDatabase } from "../../src/store/db.js";
import { MachineStore } from "../../src/store/machines.js";
import { VMS_FAMILY, VmStore } from "../../src/store/vms.js";
import { FakePve, makePki, type TestPki } from "../helpers/fake-pve.js";

let pki: TestPki;
let fake: FakePve;
let dir: string;
let cliConfig: VmCliConfig;

beforeAll(async () => {
  pki = await makePki();
  fake = await FakePve.start({ pki });
  dir = mkdtempSync(join(tmpdir(), "tnb-vmcli-"));
  const secretFile = join(dir, "pve-token");
  writeFileSync(secretFile, `${fake.tokens[0]!.secret}\n`, { mode: 0o600 });
  chmodSync(secretFile, 0o600);
  const caFile = join(dir, "pve-root-ca.pem");
  writeFileSync(caFile, pki.caPem);
  cliConfig = {
    stateDir: join(dir, "state"),
    profiles: { talos: {} },
    providers: providersSchema.parse({
      proxmox: { url: fake.url, tokenId: fake.tokens[0]!.id, tokenSecretFile: secretFile, caFile, nodes: ["pve1", "pve2", "pve3"], taskTimeoutSec: 30 },
    }),
  };
});

afterAll(async () => {
  await fake.close();
  rmSync(dir, { recursive: true, force: true });
});

const deps = () => ({ loadConfig: () => cliConfig, log: silentLogger() });
const vm = (action: Parameters<typeof runVmCommand>[0], o: Partial<VmCommandOptions>) => runVmCommand(action, { config: "unused.yaml", provider: "proxmox", ...o }, deps());

function stores() {
  const db = openDatabase(cliConfig.stateDir, [...ALL_FAMILIES.filter((f) => f.name !== VMS_FAMILY.name), VMS_FAMILY]);
  return { db, machines: new MachineStore(db), vms: new VmStore(db) };
}

describe("talos-netboot vm (CLI)", () => {
  it("probe: GET /version through the config's CA file and secret file", async () => {
    await expect(probeProxmox(cliConfig.providers.proxmox!, silentLogger())).resolves.toBe("9.0.3");
    await expect(probeProxmox({ ...cliConfig.providers.proxmox!, caFile: undefined, fingerprint: (await makePki()).fingerprint })).rejects.toMatchObject({ code: "PVE_UNREACHABLE" });
  });

  it("create --profile registers the MAC before the VM is created and started, and prints the summary", async () => {
    const seen: Array<{ path: string; machine: string | undefined; record: string | undefined }> = [];
    fake.onRequest = (method, path) => {
      if (method !== "POST") return;
      const { db, machines, vms } = stores();
      const rec = vms.get("proxmox", "lab", "cp1");
      seen.push({ path, record: rec?.mac, machine: rec ? machines.get(rec.mac)?.profile : undefined });
      db.close();
    };
    try {
      const out = JSON.parse(await vm("create", { cluster: "lab", name: "cp1", role: "controlplane", cores: "2", memory: "2048", disk: "16", profile: "talos", json: true })) as Record<string, unknown>;
      expect(Object.keys(out).sort()).toEqual(["cluster", "mac", "name", "node", "provider", "role", "status", "vmid"]);
      expect(out).toMatchObject({ provider: "proxmox", cluster: "lab", name: "cp1", role: "controlplane", status: "running" });
      const create = seen.find((s) => /\/qemu$/.test(s.path))!;
      const start = seen.find((s) => /\/status\/start$/.test(s.path))!;
      expect(create).toMatchObject({ record: out.mac, machine: "talos" });
      expect(start).toMatchObject({ record: out.mac, machine: "talos" });
      const { db, machines } = stores();
      expect(machines.get(out.mac as never)).toMatchObject({ profile: "talos", hostname: "cp1", source: "api" });
      db.close();
      expect(fake.requestsTo("POST", /\/qemu$/).at(-1)!.params.scsi0).toBe("local-lvm:16,ssd=1,iothread=1,discard=on");
    } finally {
      fake.onRequest = undefined;
    }
  });

  it("lists, stops, starts and destroys by name; a second destroy finds nothing", async () => {
    const list = JSON.parse(await vm("list", { cluster: "lab", json: true })) as Array<{ name: string }>;
    expect(list.map((v) => v.name)).toEqual(["cp1"]);
    expect(JSON.parse(await vm("list", { json: true }))).toHaveLength(1);
    expect(JSON.parse(await vm("stop", { cluster: "lab", name: "cp1", timeout: "5", json: true }))).toMatchObject({ status: "stopped" });
    expect(JSON.parse(await vm("start", { cluster: "lab", name: "cp1", json: true }))).toMatchObject({ status: "running" });
    expect(await vm("destroy", { cluster: "lab", name: "cp1" })).toBe("destroyed");
    expect(await vm("destroy", { cluster: "lab", name: "cp1" })).toBe("no such VM");
  });

  it("refuses a VM that is not ours with SAFE_MODE_VIOLATION, and bad input with a one-line reason", async () => {
    fake.addVm({ vmid: 777, node: "pve1", name: "mail", tags: "prod" });
    const err = await vm("destroy", { vmid: "777" }).catch((e: unknown) => e);
    expect(errorLine(err)).toMatch(/^SAFE_MODE_VIOLATION: refusing to destroy VM 777/);
    expect(fake.vms.has(777)).toBe(true);
    expect(errorLine(await vm("create", { cluster: "lab", name: "x", role: "boss" }).catch((e: unknown) => e))).toMatch(/^INVALID_REQUEST: .*role/);
    expect(errorLine(await vm("start", { cluster: "lab" }).catch((e: unknown) => e))).toMatch(/--cluster and --name, or --vmid/);
    expect(errorLine(await vm("list", { provider: "qemu" }).catch((e: unknown) => e))).toMatch(/^PROVIDER_NOT_CONFIGURED/);
    expect(errorLine(await vm("create", { cluster: "lab", name: "y", role: "worker", profile: "nope" }).catch((e: unknown) => e))).toMatch(/no profile named 'nope'/);
  });
});

describe("/api/v1/providers", () => {
  const token = "api-token-0123456789";
  let app: Hono;
  let close: () => Promise<void>;

  beforeAll(() => {
    const { db, machines, vms } = stores();
    const made = new Map<ProviderKind, VmProvider>();
    const provider = (kind: ProviderKind) => {
      if (!made.has(kind)) made.set(kind, createProvider(kind, cliConfig.providers, { store: vms, stateDir: cliConfig.stateDir, log: silentLogger() }));
      return made.get(kind)!;
    };
    app = new Hono().route("/api/v1", apiRoutes({ store: machines, tokens: () => [token], profiles: () => ["talos"], extensions: [["/providers", providerRoutes({ provider, machines, profiles: () => ["talos"] })]] }));
    close = async () => {
      for (const p of made.values()) await p.close();
      db.close();
    };
  });

  afterAll(async () => close());

  const call = (method: string, path: string, body?: unknown) =>
    app.request(`/api/v1/providers${path}`, { method, headers: { "x-api-key": token, ...(body !== undefined ? { "content-type": "application/json" } : {}) }, body: body === undefined ? undefined : JSON.stringify(body) });

  it("needs the API token", async () => {
    expect((await app.request("/api/v1/providers/proxmox/vms?cluster=api")).status).toBe(401);
  });

  it("creates (201, then 200), reads, lists, stops, re-boots and destroys", async () => {
    const body = { cluster: "api", name: "w1", role: "worker", template: { cores: 2, memoryMB: 2048, disks: [{ interfaceType: "SCSI", slot: 0, sizeGB: 12 }] }, profile: "talos", start: false };
    const first = await call("POST", "/proxmox/vms", body);
    expect(first.status).toBe(201);
    const created = (await first.json()) as Record<string, unknown>;
    expect(created).toMatchObject({ provider: "proxmox", cluster: "api", name: "w1", role: "worker", status: "stopped" });
    expect((await call("POST", "/proxmox/vms", body)).status).toBe(200);
    expect(await (await call("GET", "/proxmox/vms/api/w1")).json()).toEqual(created);
    expect(await (await call("GET", "/proxmox/vms?cluster=api")).json()).toEqual([created]);
    expect(await (await call("POST", "/proxmox/vms/api/w1/start")).json()).toMatchObject({ status: "running" });
    expect(await (await call("POST", "/proxmox/vms/api/w1/boot-order", { order: "disk" })).json()).toEqual({ pendingUntilRestart: true });
    expect(await (await call("POST", "/proxmox/vms/api/w1/stop", { timeoutSec: 3 })).json()).toMatchObject({ status: "stopped" });
    expect((await call("DELETE", "/proxmox/vms/api/w1")).status).toBe(204);
    expect((await call("GET", "/proxmox/vms/api/w1")).status).toBe(404);
    expect((await call("DELETE", "/proxmox/vms/api/w1")).status).toBe(404);
  });

  it("answers a safe-mode refusal with 403 SAFE_MODE_VIOLATION in Moxxie's shape", async () => {
    fake.addVm({ vmid: 778, node: "pve2", name: "ldap", tags: "infra" });
    const res = await call("DELETE", "/proxmox/vms/api/ldap");
    expect(res.status).toBe(403);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ error: "SAFE_MODE_VIOLATION", message: expect.stringContaining("ldap"), details: { reason: expect.any(String), suggestion: expect.any(String) } });
    expect(new Date(body.timestamp as string).getTime()).not.toBeNaN();
    expect(fake.vms.has(778)).toBe(true);
  });

  it("rejects bad requests with 400", async () => {
    expect((await call("GET", "/vmware/vms?cluster=x")).status).toBe(400);
    expect((await call("GET", "/qemu/vms?cluster=x")).status).toBe(400);
    expect((await call("GET", "/proxmox/vms")).status).toBe(400);
    const bad = await call("POST", "/proxmox/vms", { cluster: "Bad_Name", name: "x", role: "worker" });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { message: string }).message).toMatch(/cluster/);
    expect((await call("POST", "/proxmox/vms/api/w1/boot-order", { order: "sideways" })).status).toBe(400);
  });
});

/**
 * The Proxmox REST client against the fake PVE server (test/helpers/fake-pve.ts):
 * TLS trust (CA or pinned fingerprint, never off), token auth, form encoding
 * that survives PVE's decoder, DELETE parameters in the query, PVE's error
 * shapes, 596 not retried, task polling on the UPID's node.
 */
import { fetch, Agent } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { PveClient, pvePath } from "../../src/providers/proxmox/client.js";
import { PveConnectionError, PveHttpError, PveIndeterminateError, PveTaskError, PveTaskTimeoutError } from "../../src/providers/proxmox/errors.js";
import { parseUpid } from "../../src/providers/proxmox/upid.js";
import { FakePve, makePki, type TestPki } from "../helpers/fake-pve.js";

let pki: TestPki;
let otherPki: TestPki;
let fake: FakePve;

beforeAll(async () => {
  pki = await makePki();
  otherPki = await makePki();
  fake = await FakePve.start({ pki });
});

afterAll(async () => {
  await fake.close();
});

function client(over: Partial<ConstructorParameters<typeof PveClient>[0]> = {}): PveClient {
  const token = fake.tokens[0]!;
  return new PveClient({ url: fake.url, tokenId: token.id, tokenSecret: token.secret, trust: { fingerprint: pki.fingerprint }, getRetries: 0, ...over });
}

const anyData = z.unknown();

describe("TLS: verified against a CA or a pinned fingerprint", () => {
  it("works with the pinned SHA-256 fingerprint (any case)", async () => {
    const c = client({ trust: { fingerprint: pki.fingerprint.toLowerCase() } });
    expect((await c.version()).version).toBe("9.0.3");
    await c.close();
  });

  it("works with the CA that signed the server's certificate", async () => {
    const c = client({ trust: { ca: pki.caPem } });
    expect((await c.version()).version).toBe("9.0.3");
    await c.close();
  });

  it("refuses a server whose certificate has another fingerprint, before sending anything", async () => {
    const before = fake.requests.length;
    const c = client({ trust: { fingerprint: otherPki.fingerprint } });
    const err = await c.version().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PveConnectionError);
    expect((err as Error).message).toMatch(/fingerprint/);
    expect((err as Error).message).toContain(pki.fingerprint);
    // The token never left: the fake saw no request at all.
    expect(fake.requests.length).toBe(before);
    await c.close();
  });

  it("refuses a server whose certificate another CA signed", async () => {
    const before = fake.requests.length;
    const c = client({ trust: { ca: otherPki.caPem } });
    await expect(c.version()).rejects.toBeInstanceOf(PveConnectionError);
    expect(fake.requests.length).toBe(before);
    await c.close();
  });
});

describe("auth", () => {
  it("sends the PVEAPIToken header; a wrong secret is a 401 whose empty body is not parsed", async () => {
    const c = client({ tokenSecret: "00000000-0000-0000-0000-000000000000" });
    const err = (await c.version().catch((e: unknown) => e)) as PveHttpError;
    expect(err).toBeInstanceOf(PveHttpError);
    expect(err.status).toBe(401);
    expect(err.kind).toBe("auth");
    expect(err.pveMessage).toBe("invalid token value!");
    await c.close();
  });

  it("an unknown token is refused the same way", async () => {
    const c = client({ tokenId: "nobody@pve!none" });
    await expect(c.version()).rejects.toMatchObject({ status: 401, kind: "auth" });
    await c.close();
  });
});

describe("encoding", () => {
  it("percent-encodes form values so PVE's decoder (splitting on ; and cutting at =) gets them whole", async () => {
    const c = client();
    fake.addVm({ vmid: 4000, node: "pve1", name: "enc", tags: "cluster-enc" });
    const upid = await c.post(pvePath`/nodes/${"pve1"}/qemu/${4000}/config`, { boot: "order=scsi0;net0", net1: "virtio=02:74:6E:00:00:01,bridge=vmbr0,tag=7" }, z.string());
    const req = fake.requestsTo("POST", /\/qemu\/4000\/config$/).at(-1)!;
    expect(req.params.boot).toBe("order=scsi0;net0");
    expect(req.params.net1).toBe("virtio=02:74:6E:00:00:01,bridge=vmbr0,tag=7");
    await c.waitTask(upid, { timeoutMs: 10_000, intervalMs: 5 });
    await c.close();
  });

  it("(the fake decodes like PVE: a hand-built body loses what follows a second '=' or a ';')", async () => {
    const token = fake.tokens[0]!;
    const agent = new Agent({ connect: { ca: pki.caPem } });
    const res = await fetch(`${fake.url}/api2/json/nodes/pve1/qemu/4000/config`, {
      method: "POST",
      dispatcher: agent,
      headers: { authorization: `PVEAPIToken=${token.id}=${token.secret}`, "content-type": "application/x-www-form-urlencoded" },
      body: "net1=virtio=02:74:6E:00:00:02,bridge=vmbr0&boot=order=scsi0;net0&name=x",
    });
    await res.text();
    const req = fake.requestsTo("POST", /\/qemu\/4000\/config$/).at(-1)!;
    expect(req.params.net1).toBe("virtio");
    expect(req.params.boot).toBe("order");
    expect(req.params).not.toHaveProperty("net0");
    expect(req.params.name).toBe("x");
    await agent.close();
  });

  it("puts DELETE parameters in the query string and sends no body", async () => {
    const c = client();
    fake.addVm({ vmid: 4001, node: "pve2", name: "gone", tags: "cluster-enc" });
    const upid = await c.delete(pvePath`/nodes/${"pve2"}/qemu/${4001}`, { purge: 1, "destroy-unreferenced-disks": true }, z.string());
    const req = fake.requestsTo("DELETE", /\/qemu\/4001$/).at(-1)!;
    expect(req.rawBody).toBe("");
    expect(req.query).toEqual({ purge: "1", "destroy-unreferenced-disks": "1" });
    await c.waitTask(upid, { timeoutMs: 10_000, intervalMs: 5 });
    expect(fake.vms.has(4001)).toBe(false);
    await c.close();
  });
});

describe("errors keep PVE's text", () => {
  it("a missing VM is a 500 with PVE's message", async () => {
    const c = client();
    const err = (await c.get(pvePath`/nodes/${"pve1"}/qemu/${4999}/config`, anyData).catch((e: unknown) => e)) as PveHttpError;
    expect(err).toBeInstanceOf(PveHttpError);
    expect(err.status).toBe(500);
    expect(err.isMissingVm).toBe(true);
    expect(err.reason).toBe("Configuration file 'nodes/pve1/qemu-server/4999.conf' does not exist");
    expect(err.message).toContain("does not exist");
    await c.close();
  });

  it("parameter errors are a 400 with the per-parameter messages", async () => {
    const c = client();
    const err = (await c.post(pvePath`/nodes/${"pve1"}/qemu`, { vmid: 4002, net0: "virtio=01:00:00:00:00:01,bridge=vmbr0" }, anyData).catch((e: unknown) => e)) as PveHttpError;
    expect(err.status).toBe(400);
    expect(err.kind).toBe("parameter");
    expect(err.pveMessage).toBe("Parameter verification failed.");
    expect(err.errors.net0).toMatch(/multicast/);
    expect(err.message).toContain("net0: ");
    await c.close();
  });

  it("a 596 on a POST is 'may have run' and is not retried by the client", async () => {
    const c = client({ getRetries: 3 });
    fake.addVm({ vmid: 4003, node: "pve1", name: "x596", tags: "cluster-enc" });
    fake.answer596Once("POST", /\/qemu\/4003\/status\/start$/);
    const before = fake.requestsTo("POST", /\/qemu\/4003\/status\/start$/).length;
    const err = await c.post(pvePath`/nodes/${"pve1"}/qemu/${4003}/status/start`, {}, z.string()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PveIndeterminateError);
    expect(fake.requestsTo("POST", /\/qemu\/4003\/status\/start$/).length).toBe(before + 1);
    // …and it did run: the fake made the task.
    expect([...fake.tasks.values()].some((t) => t.type === "qmstart" && t.id === "4003")).toBe(true);
    await c.close();
  });
});

describe("tasks", () => {
  it("polls the node the UPID names until stopped; OK is success", async () => {
    const c = client();
    fake.addVm({ vmid: 4010, node: "pve3", name: "t1", tags: "cluster-enc" });
    const upid = await c.post(pvePath`/nodes/${"pve3"}/qemu/${4010}/status/start`, {}, z.string());
    expect(parseUpid(upid)).toMatchObject({ node: "pve3", type: "qmstart", id: "4010" });
    const polls = fake.requestsTo("GET", /\/tasks\//).length;
    const out = await c.waitTask(upid, { timeoutMs: 10_000, intervalMs: 5 });
    expect(out).toEqual({ upid, exitstatus: "OK", warnings: 0 });
    const mine = fake.requestsTo("GET", /\/tasks\//).slice(polls);
    expect(mine.length).toBe(fake.taskPolls);
    expect(mine.every((r) => r.path.startsWith("/api2/json/nodes/pve3/tasks/"))).toBe(true);
    await c.close();
  });

  it("WARNINGS: n is success", async () => {
    const c = client();
    fake.addVm({ vmid: 4011, node: "pve1", name: "t2", tags: "cluster-enc" });
    fake.warnNextTask("qmstart", 2);
    const upid = await c.post(pvePath`/nodes/${"pve1"}/qemu/${4011}/status/start`, {}, z.string());
    await expect(c.waitTask(upid, { timeoutMs: 10_000, intervalMs: 5 })).resolves.toMatchObject({ exitstatus: "WARNINGS: 2", warnings: 2 });
    await c.close();
  });

  it("a failed task surfaces its exit status", async () => {
    const c = client();
    fake.addVm({ vmid: 4012, node: "pve1", name: "t3", tags: "cluster-enc", net0: "virtio=02:74:6E:00:00:03,bridge=vmbr9" });
    const upid = await c.post(pvePath`/nodes/${"pve1"}/qemu/${4012}/status/start`, {}, z.string());
    const err = (await c.waitTask(upid, { timeoutMs: 10_000, intervalMs: 5 }).catch((e: unknown) => e)) as PveTaskError;
    expect(err).toBeInstanceOf(PveTaskError);
    expect(err.exitstatus).toBe("bridge 'vmbr9' does not exist");
    expect(err.message).toContain("bridge 'vmbr9' does not exist");
    await c.close();
  });

  it("gives up after the timeout", async () => {
    const c = client();
    fake.addVm({ vmid: 4013, node: "pve1", name: "t4", tags: "cluster-enc" });
    const polls = fake.taskPolls;
    fake.taskPolls = 1_000_000;
    try {
      const upid = await c.post(pvePath`/nodes/${"pve1"}/qemu/${4013}/status/start`, {}, z.string());
      await expect(c.waitTask(upid, { timeoutMs: 60, intervalMs: 5, maxIntervalMs: 10 })).rejects.toBeInstanceOf(PveTaskTimeoutError);
    } finally {
      fake.taskPolls = polls;
    }
    await c.close();
  });
});

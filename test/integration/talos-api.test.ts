import { X509Certificate } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { Daemon } from "../../src/daemon.js";
import { startLoopbackDaemon } from "../helpers/loopback-daemon.js";

const TOKEN = "talos-api-token-0123456789";
const MAC = "52:54:00:aa:00:01";
let daemon: Daemon;
let base = "";

const api = (path: string, init: RequestInit & { json?: unknown } = {}) =>
  fetch(`${base}/api/v1${path}`, {
    ...init,
    ...(init.json !== undefined ? { body: JSON.stringify(init.json) } : {}),
    headers: { "X-API-Key": TOKEN, "Content-Type": "application/json", ...(init.headers ?? {}) },
  });

/** The documents of a multi-document config, by kind (v1alpha1 as "v1alpha1"). */
function docs(text: string): Array<Record<string, any>> {
  return parseAllDocuments(text).map((d) => d.toJS() as Record<string, any>);
}

beforeAll(async () => {
  ({ daemon, base } = await startLoopbackDaemon(TOKEN, (files) => `profiles:\n  talos: { kernel: ${files.kernel}, initrd: [${files.initrd}] }`));
}, 30_000);
afterAll(async () => {
  await daemon?.stop();
});

describe("Talos config API", () => {
  let cpNodeId = "";

  it("needs an endpoint to create a cluster, and a token", async () => {
    expect((await fetch(`${base}/api/v1/talos/configs/generate`, { method: "POST" })).status).toBe(401);
    const res = await api("/talos/configs/generate", { method: "POST", json: { clusterName: "prod", nodeRole: "CONTROL_PLANE", nodeConfig: { hostname: "cp-1" } } });
    expect(res.status).toBe(400);
    expect((await res.json()).message).toMatch(/^endpoint: required/);
  });

  it("generates a control plane config with a new secrets bundle; a static CIDR address lands on the node's link", async () => {
    const res = await api("/talos/configs/generate", {
      method: "POST",
      json: {
        clusterName: "prod",
        endpoint: "https://10.1.107.10:6443",
        nodeRole: "CONTROL_PLANE",
        talosVersion: "1.14",
        nodeConfig: { hostname: "cp-1", ipAddress: "10.1.107.11/24", gateway: "10.1.107.1", nameservers: ["10.1.107.1"], macAddress: MAC },
      },
    });
    const body = await res.json();
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(body).toMatchObject({ clusterName: "prod", role: "CONTROL_PLANE", hostname: "cp-1" });
    expect(body.nodeId).toMatch(/^node-[0-9a-f]{16}$/);
    cpNodeId = body.nodeId;
    const d = docs(body.config);
    const v1 = d.find((x) => x.version === "v1alpha1")!;
    expect(v1.machine.type).toBe("controlplane");
    expect(d.find((x) => x.kind === "HostnameConfig")).toMatchObject({ hostname: "cp-1" });
    expect(d.find((x) => x.kind === "UnattendedInstallConfig")).toBeDefined();
    expect(JSON.stringify(d)).toContain("10.1.107.11/24");
    expect(JSON.stringify(d)).toContain(MAC);
  });

  it("reuses the cluster's secrets for the next node, keeps nodeIds stable, and answers YAML on request", async () => {
    const worker = await api("/talos/configs/generate", { method: "POST", json: { clusterName: "prod", nodeRole: "WORKER", nodeConfig: { hostname: "w-1" } } });
    const w = await worker.json();
    expect(worker.status, JSON.stringify(w)).toBe(200);
    const cp = await (await api(`/talos/configs/${cpNodeId}`)).json();
    const caOf = (text: string) => docs(text).find((x) => x.version === "v1alpha1")!.machine.ca.crt;
    expect(caOf(w.config)).toBe(caOf(cp.config));
    const again = await api("/talos/configs/generate", {
      method: "POST",
      headers: { Accept: "application/yaml" },
      json: { clusterName: "prod", nodeRole: "WORKER", nodeConfig: { hostname: "w-1" } },
    });
    expect(again.headers.get("content-type")).toMatch(/^application\/yaml/);
    const text = await again.text();
    expect(docs(text).find((x) => x.version === "v1alpha1")!.machine.type).toBe("worker");
    const listed = await (await api(`/talos/configs/${w.nodeId}`)).json();
    expect(listed.nodeId).toBe(w.nodeId);
  });

  it("refuses a Kubernetes version outside the Talos version's range with a 400 naming the range", async () => {
    const res = await api("/talos/configs/generate", { method: "POST", json: { clusterName: "prod", nodeRole: "WORKER", kubernetesVersion: "1.20.0", nodeConfig: { hostname: "w-2" } } });
    expect(res.status).toBe(400);
    const body = await res.json();
    expect(body.error).toBe("UNSUPPORTED_KUBERNETES_VERSION");
    expect(body.message).toContain(body.details.range);
  });

  it("validates a replacement config and stores nothing when it is invalid", async () => {
    const before = (await (await api(`/talos/configs/${cpNodeId}`)).json()).config as string;
    const bad = before.replace(/^(\s*)type: controlplane$/m, "$1type: banana");
    expect(bad).not.toBe(before);
    const put = await api(`/talos/configs/${cpNodeId}`, { method: "PUT", headers: { "Content-Type": "application/yaml" }, body: bad });
    expect(put.status).toBe(400);
    const body = await put.json();
    expect(body.error).toBe("INVALID_CONFIG");
    expect(body.details.problems.length).toBeGreaterThan(0);
    expect(body.details.problems[0]).toEqual({ path: expect.any(String), message: expect.any(String) });
    expect((await (await api(`/talos/configs/${cpNodeId}`)).json()).config).toBe(before);
    const ok = await api(`/talos/configs/${cpNodeId}`, { method: "PUT", headers: { "Content-Type": "application/yaml" }, body: `${before}\n` });
    expect(ok.status).toBe(200);
    const v = await (await api("/talos/configs/validate", { method: "POST", headers: { "Content-Type": "application/yaml" }, body: bad })).json();
    expect(v.valid).toBe(false);
  });

  it("hands out a talosconfig whose endpoint is the control plane and an admin kubeconfig", async () => {
    const tc = parse(await (await api("/talos/clusters/prod/talosconfig")).text());
    expect(tc.context).toBe("prod");
    expect(tc.contexts.prod.endpoints).toEqual(["10.1.107.11"]);
    const kc = parse(await (await api("/talos/clusters/prod/kubeconfig")).text());
    expect(kc.clusters[0].cluster.server).toBe("https://10.1.107.10:6443");
    const cert = new X509Certificate(Buffer.from(kc.users[0].user["client-certificate-data"], "base64"));
    expect(cert.subject).toContain("O=system:masters");
    expect((await api("/talos/clusters/nope/kubeconfig")).status).toBe(404);
  });

  it("serves a machine its generated config over the boot path, at its own token URL only", async () => {
    const put = await api(`/machines/${MAC}`, { method: "PUT", json: { profile: "talos", hostname: "cp-1" } });
    expect(put.status).toBe(200);
    const script = await (await fetch(`${base}/boot/52-54-00-aa-00-01/boot.ipxe`)).text();
    const url = /talos\.config=(\S+)/.exec(script)?.[1];
    expect(url, script).toBeDefined();
    const served = await fetch(url!);
    expect(served.status).toBe(200);
    expect(await served.text()).toBe((await (await api(`/talos/configs/${cpNodeId}`)).json()).config);
    expect((await fetch(`${url!.slice(0, -3)}xyz`)).status).toBe(404);
  });
});

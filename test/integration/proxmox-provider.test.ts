/**
 * The Proxmox VE provider against the fake PVE server (test/helpers/fake-pve.ts,
 * which decodes and checks every parameter the way PVE does): exact create
 * parameters, the MAC kept, idempotent create, VMID races, task failures and
 * warnings, 596 without a duplicate VM, safe mode, placement, the per-node
 * concurrency bound, graceful-then-forced stop, destroy, boot order, and the
 * least-privilege token the README documents.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { parseMac, type Mac } from "../../src/boot/mac.js";
import { SafeModeError, safeModeBody, VmConflictError } from "../../src/providers/errors.js";
import { isLocallyAdministeredMac } from "../../src/providers/mac.js";
import { PveHttpError, PveTaskError } from "../../src/providers/proxmox/errors.js";
import type { ProxmoxProvider } from "../../src/providers/proxmox/provider.js";
import { parseVmSpec, type VmSpecInput } from "../../src/providers/spec.js";
import { FakePve, fakePveProvider, makePki, type TestPki } from "../helpers/fake-pve.js";

let pki: TestPki;
let fake: FakePve;
const open: ProxmoxProvider[] = [];

beforeAll(async () => {
  pki = await makePki();
});

beforeEach(async () => {
  fake = await FakePve.start({ pki });
});

afterEach(async () => {
  for (const p of open.splice(0)) await p.close();
  await fake.close();
});

afterAll(() => undefined);

function provider(over: Record<string, unknown> = {}, opts: Parameters<typeof fakePveProvider>[3] = {}) {
  const made = fakePveProvider(fake, pki, over, opts);
  open.push(made.provider);
  return made;
}

const spec = (over: Partial<VmSpecInput> = {}) => parseVmSpec({ cluster: "demo", name: "cp1", role: "controlplane", ...over });
const macOfNet0 = (net0: string | undefined): Mac | null => parseMac(/^virtio=([^,]+)/.exec(net0 ?? "")?.[1] ?? "");
const creates = () => fake.requestsTo("POST", /^\/api2\/json\/nodes\/[^/]+\/qemu$/);

describe("create", () => {
  it("sends exactly DESIGN §5's parameters (as PVE decodes them) and keeps our MAC", async () => {
    const { provider: p, store } = provider();
    const res = await p.create(spec({ cores: 4, memoryMB: 8192, disks: [{ interfaceType: "SCSI", slot: 0, sizeGB: 32, ssd: true, iothread: true, discard: true }] }));
    expect(res.created).toBe(true);
    const rec = store.get("proxmox", "demo", "cp1")!;
    expect(isLocallyAdministeredMac(rec.mac)).toBe(true);
    const sent = creates();
    expect(sent).toHaveLength(1);
    expect(sent[0]!.params).toEqual({
      vmid: String(res.vm.vmid),
      name: "cp1",
      cores: "4",
      memory: "8192",
      cpu: "x86-64-v2-AES",
      ostype: "l26",
      net0: `virtio=${rec.mac.toUpperCase()},bridge=vmbr0,tag=20`,
      scsihw: "virtio-scsi-single",
      scsi0: "local-lvm:32,ssd=1,iothread=1,discard=on",
      boot: "order=net0;scsi0",
      bios: "ovmf",
      machine: "q35",
      efidisk0: "local-lvm:1,efitype=4m,pre-enrolled-keys=0",
      rng0: "source=/dev/urandom",
      tags: "cluster-demo;moxxie;role-controlplane",
    });
    const vm = fake.vms.get(res.vm.vmid!)!;
    expect(macOfNet0(vm.config.net0)).toBe(rec.mac);
    expect(vm.config.tags).toBe("cluster-demo;moxxie;role-controlplane");
    expect(vm.status).toBe("stopped");
    expect(res.vm).toMatchObject({ provider: "proxmox", cluster: "demo", name: "cp1", role: "controlplane", node: vm.node, mac: rec.mac, status: "stopped" });
    expect(rec).toMatchObject({ state: "created", vmid: res.vm.vmid, node: vm.node });
  });

  it("BIOS VMs get no OVMF parts; extra disks and NICs keep their own settings", async () => {
    const { provider: p } = provider();
    const res = await p.create(
      spec({
        name: "w1",
        role: "worker",
        firmware: "bios",
        disks: [
          { interfaceType: "virtio", slot: 0, sizeGB: 10, ssd: true, iothread: true, discard: false },
          { interfaceType: "scsi", slot: 1, sizeGB: 50, ssd: false, iothread: true, discard: true },
        ],
        networks: [{ bridge: "vmbr0", vlan: null }, { bridge: "vmbr0", vlan: 30, macaddr: "02:00:00:00:00:09", firewall: true }],
      }),
    );
    const p0 = creates()[0]!.params;
    expect(p0).not.toHaveProperty("bios");
    expect(p0).not.toHaveProperty("efidisk0");
    expect(p0).not.toHaveProperty("rng0");
    expect(p0.virtio0).toBe("local-lvm:10,iothread=1");
    expect(p0.scsi1).toBe("local-lvm:50,iothread=1,discard=on");
    expect(p0.boot).toBe("order=net0;virtio0");
    expect(p0.net0).toMatch(/^virtio=02:74:6E:[0-9A-F:]{8},bridge=vmbr0$/);
    expect(p0.net1).toBe("virtio=02:00:00:00:00:09,bridge=vmbr0,tag=30,firewall=1");
    // PVE prints property strings in its own key order; we read them regardless.
    expect(fake.vms.get(res.vm.vmid!)!.config.net1).toBe("virtio=02:00:00:00:00:09,bridge=vmbr0,firewall=1,tag=30");
  });

  it("records the MAC and host before anything is sent", async () => {
    const { provider: p, store } = provider();
    const r = await p.reserve(spec({ name: "cp9" }));
    expect(r.new).toBe(true);
    expect(store.get("proxmox", "demo", "cp9")).toMatchObject({ mac: r.mac, node: r.node, state: "reserved", vmid: null });
    expect(creates()).toHaveLength(0);
    const again = await p.reserve(spec({ name: "cp9" }));
    expect(again).toMatchObject({ mac: r.mac, node: r.node, new: false });
    const made = await p.create(spec({ name: "cp9" }));
    expect(made.vm.mac).toBe(r.mac);
    expect(made.vm.node).toBe(r.node);
  });

  it("is idempotent: a repeated or resumed create finds and reuses the VM", async () => {
    const { provider: p, store } = provider();
    const first = await p.create(spec());
    const second = await p.create(spec());
    expect(second.created).toBe(false);
    expect(second.vm.vmid).toBe(first.vm.vmid);
    // A new process with the same state, and one whose record lost the VMID.
    const { provider: p2 } = provider({}, { store });
    expect((await p2.create(spec())).vm.vmid).toBe(first.vm.vmid);
    store.update("proxmox", "demo", "cp1", { vmid: null, node: null, state: "reserved" });
    expect((await p2.create(spec())).created).toBe(false);
    expect(creates()).toHaveLength(1);
    expect([...fake.vms.values()].filter((v) => v.config.name === "cp1")).toHaveLength(1);
  });

  it("two concurrent creates of one VM make one VM", async () => {
    const { provider: p } = provider();
    const [a, b] = await Promise.all([p.create(spec()), p.create(spec())]);
    expect(a.vm.vmid).toBe(b.vm.vmid);
    expect([a.created, b.created].sort()).toEqual([false, true]);
    expect(creates()).toHaveLength(1);
  });

  it("refuses to act on a VM whose recorded node is offline rather than calling it gone", async () => {
    const { provider: p, store } = provider();
    const made = await p.create(spec());
    fake.nodes.get(made.vm.node!)!.online = false;
    await expect(p.destroy({ cluster: "demo", name: "cp1" })).rejects.toMatchObject({ code: "PVE_NODE_OFFLINE" });
    await expect(p.create(spec())).rejects.toMatchObject({ code: "PVE_NODE_OFFLINE" });
    expect(store.get("proxmox", "demo", "cp1")).toBeDefined();
    expect(creates()).toHaveLength(1);
  });

  it("an explicit MAC is used, and a request that lost our state reuses the VM with that MAC", async () => {
    const { provider: p } = provider();
    const mac = "02:74:6e:aa:bb:cc";
    const first = await p.create(spec({ networks: [{ macaddr: mac }] }));
    expect(first.vm.mac).toBe(mac);
    const { provider: fresh } = provider();
    const again = await fresh.create(spec({ networks: [{ macaddr: mac }] }));
    expect(again).toMatchObject({ created: false, vm: { vmid: first.vm.vmid } });
    expect(creates()).toHaveLength(1);
  });

  it("refuses to make a second VM when one with our tag and name has another MAC", async () => {
    const { provider: p } = provider();
    await p.create(spec());
    const { provider: fresh } = provider();
    await expect(fresh.create(spec())).rejects.toBeInstanceOf(VmConflictError);
    expect(creates()).toHaveLength(1);
  });

  it("retries with the next VMID when another client takes ours (nextid race)", async () => {
    const { provider: p } = provider();
    fake.stealNextVmidOnce();
    const res = await p.create(spec());
    const sent = creates();
    expect(sent).toHaveLength(2);
    expect(sent[0]!.status).toBe(500);
    const taken = Number(sent[0]!.params.vmid);
    expect(fake.vms.get(taken)!.config.name).toBe(`someone-elses-${taken}`);
    expect(res.vm.vmid).toBe(Number(sent[1]!.params.vmid));
    expect(res.vm.vmid).not.toBe(taken);
  });

  it("uses the configured VMID range and steps over taken ids", async () => {
    const { provider: p } = provider({ vmidRange: { start: 500, end: 510 } });
    fake.addVm({ vmid: 500, node: "pve1", name: "old" });
    const a = await p.create(spec({ name: "a" }));
    const b = await p.create(spec({ name: "b" }));
    expect([a.vm.vmid, b.vm.vmid]).toEqual([501, 502]);
  });

  it("surfaces a failed create task with PVE's text, and a retry creates with the same MAC", async () => {
    const { provider: p, store } = provider();
    const why = `unable to create VM 100 - lvcreate 'pve/vm-100-disk-0' error: Volume group "pve" has insufficient free space`;
    fake.failNextTask("qmcreate", why);
    const err = (await p.create(spec()).catch((e: unknown) => e)) as PveTaskError;
    expect(err).toBeInstanceOf(PveTaskError);
    expect(err.exitstatus).toBe(why);
    expect(err.message).toContain("insufficient free space");
    const mac = store.get("proxmox", "demo", "cp1")!.mac;
    const res = await p.create(spec());
    expect(res).toMatchObject({ created: true, vm: { mac } });
    expect(fake.vms.size).toBe(1);
  });

  it("treats a task ending WARNINGS: n as success", async () => {
    const { provider: p } = provider();
    fake.warnNextTask("qmcreate", 1);
    await expect(p.create(spec())).resolves.toMatchObject({ created: true });
  });

  it("after a 596 on the create, reads the state instead of posting again: no duplicate VM", async () => {
    const { provider: p } = provider();
    fake.answer596Once("POST", /\/nodes\/[^/]+\/qemu$/);
    const res = await p.create(spec());
    expect(creates()).toHaveLength(1);
    expect(creates()[0]!.status).toBe(596);
    expect(res.vm.vmid).toBe(Number(creates()[0]!.params.vmid));
    expect(fake.vms.size).toBe(1);
    // It looked at the VMID and waited for the create task it never got a UPID for.
    const after = fake.requests.slice(fake.requests.indexOf(creates()[0]!) + 1);
    expect(after[0]).toMatchObject({ method: "GET", path: `/api2/json/nodes/${res.vm.node}/qemu/${res.vm.vmid}/config` });
    expect(after.some((r) => r.path === `/api2/json/nodes/${res.vm.node}/tasks` && r.query.typefilter === "qmcreate")).toBe(true);
  });

  it("reuses the VM after a 596 even when the retried request comes from a new process", async () => {
    const { provider: p, store } = provider();
    fake.answer596Once("POST", /\/nodes\/[^/]+\/qemu$/);
    fake.taskPolls = 1_000_000; // the create never finishes while the first process waits…
    const first = p.create(spec()).catch((e: unknown) => e);
    for (let i = 0; i < 200 && creates().length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    fake.taskPolls = 2;
    for (const t of fake.tasks.values()) t.pollsLeft = 1; // …until now
    const { provider: p2 } = provider({}, { store });
    const res = await p2.create(spec());
    await first;
    expect(res.vm.vmid).toBe(Number(creates()[0]!.params.vmid));
    expect(creates()).toHaveLength(1);
    expect(fake.vms.size).toBe(1);
  });
});

describe("safe mode", () => {
  it("never stops, re-boots or destroys a VM without our cluster tag, and answers like Moxxie", async () => {
    const { provider: p } = provider();
    fake.addVm({ vmid: 900, node: "pve2", name: "db", tags: "prod;Always-On", status: "running" });
    fake.addVm({ vmid: 901, node: "pve2", name: "cp1", tags: "cluster-other", status: "running" });
    const before = fake.requests.filter((r) => r.method !== "GET").length;
    const attempts = [
      () => p.destroy({ vmid: 900 }),
      () => p.stop({ vmid: 900, cluster: "demo" }),
      () => p.start({ vmid: 901, cluster: "demo" }),
      () => p.setBootOrder({ vmid: 900 }, "disk"),
      () => p.destroy({ cluster: "demo", name: "db" }),
      () => p.destroy({ vmid: 901, cluster: "demo" }),
    ];
    for (const a of attempts) {
      const err = await a().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SafeModeError);
    }
    expect(fake.requests.filter((r) => r.method !== "GET").length).toBe(before);
    expect(fake.vms.get(900)!.status).toBe("running");
    expect(fake.vms.has(901)).toBe(true);

    const err = (await p.destroy({ vmid: 900 }).catch((e: unknown) => e)) as SafeModeError;
    const body = safeModeBody(err, new Date("2026-01-02T03:04:05Z"));
    expect(err.httpStatus).toBe(403);
    expect(body).toEqual({
      error: "SAFE_MODE_VIOLATION",
      message: expect.stringContaining("VM 900"),
      details: { reason: expect.stringContaining("no cluster-* tag"), suggestion: expect.any(String) },
      timestamp: "2026-01-02T03:04:05.000Z",
    });
  });

  it("manages a VM by VMID when it carries exactly one cluster tag", async () => {
    const { provider: p } = provider();
    const made = await p.create(spec());
    await expect(p.start({ vmid: made.vm.vmid! })).resolves.toMatchObject({ status: "running", cluster: "demo", name: "cp1" });
  });
});

describe("placement", () => {
  it("spreads control planes (and then workers) across the PVE nodes", async () => {
    const { provider: p } = provider();
    const cps = await Promise.all(["cp1", "cp2", "cp3"].map((name) => p.create(spec({ name }))));
    expect(new Set(cps.map((c) => c.vm.node))).toEqual(new Set(["pve1", "pve2", "pve3"]));
    const ws = await Promise.all(["w1", "w2", "w3"].map((name) => p.create(spec({ name, role: "worker" }))));
    expect(new Set(ws.map((c) => c.vm.node))).toEqual(new Set(["pve1", "pve2", "pve3"]));
  });

  it("honours targetHost, preferred and avoided nodes, and skips offline nodes", async () => {
    fake.nodes.get("pve3")!.online = false;
    const { provider: p } = provider();
    expect((await p.create(spec({ name: "a", targetHost: "pve2" }))).vm.node).toBe("pve2");
    expect((await p.create(spec({ name: "b", placement: { avoidNodes: ["pve1"] } }))).vm.node).toBe("pve2");
    expect((await p.create(spec({ name: "c", placement: { preferredNodes: ["pve1"] } }))).vm.node).toBe("pve1");
    expect((await p.create(spec({ name: "d" }))).vm.node).not.toBe("pve3");
    await expect(p.create(spec({ name: "e", targetHost: "pve3" }))).rejects.toThrow(/targetHost pve3/);
  });
});

describe("concurrency", () => {
  it("creates 20 VMs with at most maxConcurrentPerNode tasks running per node", async () => {
    const { provider: p } = provider({ maxConcurrentPerNode: 2 });
    fake.taskPolls = 4;
    const names = Array.from({ length: 20 }, (_, i) => `n${String(i).padStart(2, "0")}`);
    const res = await Promise.all(names.map((name, i) => p.create(spec({ name, role: i < 3 ? "controlplane" : "worker" }))));
    expect(new Set(res.map((r) => r.vm.vmid)).size).toBe(20);
    expect(new Set(res.map((r) => r.vm.mac)).size).toBe(20);
    expect(fake.vms.size).toBe(20);
    const max = [...fake.maxRunningTasks.values()];
    expect(Math.max(...max)).toBe(2);
    expect(fake.maxRunningTasks.size).toBe(3);
  });
});

describe("power, boot order, destroy", () => {
  it("stops gracefully, and forces the stop when the guest ignores the power button", async () => {
    const { provider: p } = provider();
    const a = await p.create(spec({ name: "a" }));
    const b = await p.create(spec({ name: "b" }));
    await p.start({ cluster: "demo", name: "a" });
    await p.start({ cluster: "demo", name: "b" });
    fake.vms.get(b.vm.vmid!)!.ignoresAcpi = true;

    await expect(p.stop({ cluster: "demo", name: "a" }, { timeoutSec: 5 })).resolves.toMatchObject({ status: "stopped" });
    expect(fake.requestsTo("POST", new RegExp(`/qemu/${a.vm.vmid}/status/stop$`))).toHaveLength(0);
    expect(fake.requestsTo("POST", new RegExp(`/qemu/${a.vm.vmid}/status/shutdown$`))[0]!.params.timeout).toBe("5");

    await expect(p.stop({ cluster: "demo", name: "b" }, { timeoutSec: 1 })).resolves.toMatchObject({ status: "stopped" });
    expect(fake.requestsTo("POST", new RegExp(`/qemu/${b.vm.vmid}/status/(shutdown|stop)$`)).map((r) => r.path.split("/").at(-1))).toEqual(["shutdown", "stop"]);
    // Stopped already: nothing sent.
    const n = fake.requests.length;
    await p.stop({ cluster: "demo", name: "b" });
    expect(fake.requests.slice(n).every((r) => r.method === "GET")).toBe(true);
  });

  it("a second start is a no-op", async () => {
    const { provider: p } = provider();
    await p.create(spec());
    await p.start({ cluster: "demo", name: "cp1" });
    await expect(p.start({ cluster: "demo", name: "cp1" })).resolves.toMatchObject({ status: "running" });
    expect(fake.requestsTo("POST", /\/status\/start$/)).toHaveLength(1);
  });

  it("switches the boot order; on a running VM it is pending until the next power-on", async () => {
    const { provider: p } = provider();
    const made = await p.create(spec());
    const vm = fake.vms.get(made.vm.vmid!)!;
    await p.start({ cluster: "demo", name: "cp1" });
    await expect(p.setBootOrder({ cluster: "demo", name: "cp1" }, "disk")).resolves.toEqual({ pendingUntilRestart: true });
    expect(vm.pending.boot).toBe("order=scsi0;net0");
    expect(vm.config.boot).toBe("order=net0;scsi0");
    await p.stop({ cluster: "demo", name: "cp1" });
    expect(vm.config.boot).toBe("order=scsi0;net0");
    await expect(p.setBootOrder({ cluster: "demo", name: "cp1" }, "network")).resolves.toEqual({ pendingUntilRestart: false });
    expect(vm.config.boot).toBe("order=net0;scsi0");
  });

  it("destroys: forced stop, then DELETE with purge in the query; a second destroy is a no-op", async () => {
    const { provider: p, store } = provider();
    const made = await p.create(spec());
    await p.start({ cluster: "demo", name: "cp1" });
    await expect(p.destroy({ cluster: "demo", name: "cp1" })).resolves.toEqual({ destroyed: true });
    expect(fake.vms.has(made.vm.vmid!)).toBe(false);
    const del = fake.requestsTo("DELETE", /\/qemu\/\d+$/);
    expect(del).toHaveLength(1);
    expect(del[0]!.query).toEqual({ purge: "1", "destroy-unreferenced-disks": "1" });
    expect(del[0]!.rawBody).toBe("");
    expect(fake.requestsTo("POST", /\/status\/stop$/)).toHaveLength(1);
    expect(store.get("proxmox", "demo", "cp1")).toBeUndefined();
    await expect(p.destroy({ cluster: "demo", name: "cp1" })).resolves.toEqual({ destroyed: false });
    await expect(p.status({ cluster: "demo", name: "cp1" })).resolves.toBeNull();
  });

  it("lists the cluster's VMs only", async () => {
    const { provider: p } = provider();
    await p.create(spec({ name: "a" }));
    await p.create(spec({ name: "b", role: "worker" }));
    await p.create(spec({ cluster: "other", name: "a" }));
    fake.addVm({ vmid: 950, node: "pve1", name: "c", tags: "prod" });
    const list = await p.listByCluster("demo");
    expect(list.map((v) => [v.name, v.role, v.cluster])).toEqual([
      ["a", "controlplane", "demo"],
      ["b", "worker", "demo"],
    ]);
  });
});

describe("API token privileges (README's least-privilege roles)", () => {
  it("PVEVMAdmin + PVEDatastoreUser + PVESDNUser cover the whole lifecycle", async () => {
    fake.tokens.push({ id: "tn@pve!least", secret: "11111111-2222-3333-4444-555555555555", roles: ["PVEVMAdmin", "PVEDatastoreUser", "PVESDNUser"] });
    const { provider: p } = provider({}, { token: { id: "tn@pve!least", secret: "11111111-2222-3333-4444-555555555555" } });
    await p.create(spec());
    await p.start({ cluster: "demo", name: "cp1" });
    await p.setBootOrder({ cluster: "demo", name: "cp1" }, "disk");
    await p.stop({ cluster: "demo", name: "cp1" });
    await expect(p.destroy({ cluster: "demo", name: "cp1" })).resolves.toEqual({ destroyed: true });
  });

  it("without PVESDNUser the bridge is refused (SDN.Use), with PVE's message", async () => {
    fake.tokens.push({ id: "tn@pve!nosdn", secret: "11111111-2222-3333-4444-666666666666", roles: ["PVEVMAdmin", "PVEDatastoreUser"] });
    const { provider: p } = provider({}, { token: { id: "tn@pve!nosdn", secret: "11111111-2222-3333-4444-666666666666" } });
    const err = (await p.create(spec()).catch((e: unknown) => e)) as PveHttpError;
    expect(err).toBeInstanceOf(PveHttpError);
    expect(err.status).toBe(403);
    expect(err.pveMessage).toBe("Permission check failed (/sdn/zones/localnetwork/vmbr0/20, SDN.Use)");
  });

  it("without PVEDatastoreUser the disks are refused (Datastore.AllocateSpace)", async () => {
    fake.tokens.push({ id: "tn@pve!nods", secret: "11111111-2222-3333-4444-777777777777", roles: ["PVEVMAdmin", "PVESDNUser"] });
    const { provider: p } = provider({}, { token: { id: "tn@pve!nods", secret: "11111111-2222-3333-4444-777777777777" } });
    await expect(p.create(spec())).rejects.toMatchObject({ status: 403, pveMessage: expect.stringContaining("Datastore.AllocateSpace") });
  });
});

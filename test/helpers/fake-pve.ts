/**
 * A fake Proxmox VE 9 API server for tests: HTTPS on 127.0.0.1, `/api2/json`.
 *
 * It follows the published API formats exactly as DESIGN §5 describes them
 * (taken from PVE's source: pve-http-server 6.0, qemu-server 9.2,
 * pve-manager 9.2, pve-common 9.2, pve-access-control 9.1), because the real
 * thing cannot run here:
 * - token auth `Authorization: PVEAPIToken=USER@REALM!TOKENID=SECRET`; a
 *   missing or wrong token is a 401 with an empty body and the reason in the
 *   status line;
 * - bodies and query strings are decoded the way pve-http-server's
 *   `decode_urlencoded` does: split on `&` *and* `;`, each item cut at its
 *   second `=`, `+` and `%XX` decoded — so an unencoded
 *   `net0=virtio=MAC,bridge=vmbr0` visibly arrives as `net0=virtio` (and the
 *   VM gets a random MAC), and `boot=order=scsi0;net0` loses its tail;
 * - errors: the reason phrase is the message's first line; bodies are
 *   `{"data": null, "message": "…\n", "errors": {…}}`; a missing VM is a 500
 *   ("Configuration file … does not exist"); parameter errors are
 *   `400 Parameter verification failed.`; privileges are checked per
 *   qemu-server's rules (VM.Allocate, VM.Config.*, Datastore.AllocateSpace,
 *   SDN.Use, VM.PowerMgmt, VM.Audit) against PVE's built-in roles, and a
 *   failure is `403 Permission check failed (path, priv)`; a DELETE with a
 *   body is a 501;
 * - every create/start/stop/shutdown/config POST and every DELETE returns a
 *   UPID; the task runs until its status has been polled `taskPolls` times;
 *   its `exitstatus` is `OK`, `WARNINGS: n` or the failure's text;
 * - a create locks the new config (`lock: create`, nothing else) until its
 *   task ends; an existing VMID fails at once with 500 "already exists";
 *   `GET /cluster/nextid` answers a string;
 * - config reads include pending changes unless `current=1`; on a running
 *   VM, `boot`, `cores`, `memory`, `bios` stay pending until it stops; tags
 *   are stored lower-cased, sorted, de-duplicated; property strings come back
 *   in PVE's key order; `memory` comes back as a string;
 * - 596 "may have run": `answer596Once` performs a request and then answers
 *   596 instead of its result.
 * It also counts the tasks running per node (the PVE lock holders) and keeps
 * every request, decoded, for assertions.
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { randomBytes, webcrypto, X509Certificate } from "node:crypto";
import { createServer, type Server } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { silentLogger } from "../../src/log.js";
import { proxmoxProviderSchema, type ProxmoxProviderConfig } from "../../src/providers/config.js";
import { PveClient } from "../../src/providers/proxmox/client.js";
import { ProxmoxProvider } from "../../src/providers/proxmox/provider.js";
import type { PveTrust } from "../../src/providers/proxmox/tls.js";
import { openMemoryDatabase } from "../../src/store/db.js";
import { VMS_FAMILY, VmStore } from "../../src/store/vms.js";

// ---------------------------------------------------------------- certificates

export interface TestPki {
  caPem: string;
  certPem: string;
  keyPem: string;
  /** SHA-256 of the server certificate, upper-case, colon-separated (as PVE shows it). */
  fingerprint: string;
}

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString("base64").replace(/(.{64})/g, "$1\n").trimEnd();
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/** A CA (like pve-root-ca.pem) and a server certificate it signed (like pve-ssl.pem) for 127.0.0.1/localhost. */
export async function makePki(commonName = "pve1"): Promise<TestPki> {
  x509.cryptoProvider.set(webcrypto as unknown as Crypto);
  const now = new Date(Date.now() - 60_000);
  const later = new Date(Date.now() + 24 * 3600_000);
  const caKeys = (await webcrypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as CryptoKeyPair;
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomBytes(8).toString("hex"),
    name: "CN=Fake Proxmox Virtual Environment CA",
    notBefore: now,
    notAfter: later,
    keys: caKeys,
    signingAlgorithm: ALG,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)],
  });
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomBytes(8).toString("hex"),
    subject: `CN=${commonName}`,
    issuer: ca.subject,
    notBefore: now,
    notAfter: later,
    publicKey: keys.publicKey,
    signingKey: caKeys.privateKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        { type: "ip", value: "127.0.0.1" },
        { type: "dns", value: "localhost" },
      ]),
    ],
  });
  const certPem = cert.toString("pem") + "\n";
  const keyPem = pem("PRIVATE KEY", await webcrypto.subtle.exportKey("pkcs8", keys.privateKey));
  return { caPem: ca.toString("pem") + "\n", certPem, keyPem, fingerprint: new X509Certificate(certPem).fingerprint256 };
}

// ---------------------------------------------------------------- PVE decoding and formats

/** pve-http-server's decode_urlencoded: `&` and `;` separate; text after a second `=` is lost. */
export function pveDecodeUrlencoded(data: string): Record<string, string | string[]> {
  const res: Record<string, string | string[]> = {};
  if (!data) return res;
  const dec = (s: string) => Buffer.from(s.replace(/\+/g, " ").replace(/%([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))), "latin1").toString("utf8");
  for (const kv of data.split(/[&;]/)) {
    // Perl's split(/=/, $kv) keeps every field; ($k, $v) takes the first two.
    const fields = kv.split("=");
    const k = dec(fields[0] ?? "");
    if (fields.length < 2) {
      // `$res->{$k} = undef`: a bare key wipes what came before.
      delete res[k];
      continue;
    }
    const v = dec(fields[1]!);
    const old = res[k];
    res[k] = old === undefined ? v : Array.isArray(old) ? [...old, v] : [old, v];
  }
  return res;
}

const PVE_TAG_RE = /^[a-z0-9_][a-z0-9_\-+.]*$/i;
const MAC_RE = /^[a-f0-9]{2}(:[a-f0-9]{2}){5}$/i;
const NIC_MODELS = ["e1000", "e1000-82540em", "e1000-82544gc", "e1000-82545em", "e1000e", "i82551", "i82557b", "i82559er", "ne2k_isa", "ne2k_pci", "pcnet", "rtl8139", "virtio", "vmxnet3"];
const DISK_RE = /^(scsi|virtio|sata|ide)(\d+)$/;
const SLOT_MAX: Record<string, number> = { scsi: 30, virtio: 15, sata: 5, ide: 3 };

function parseProps(text: string, defaultKey?: string): { props: Map<string, string>; error?: string } {
  const props = new Map<string, string>();
  for (const [i, part] of text.split(",").entries()) {
    if (part === "") return { props, error: "empty key/value pair" };
    const eq = part.indexOf("=");
    let k: string;
    let v: string;
    if (eq < 0) {
      if (i !== 0 || !defaultKey) return { props, error: `value without key '${part}'` };
      k = defaultKey;
      v = part;
    } else {
      k = part.slice(0, eq);
      v = part.slice(eq + 1);
    }
    if (props.has(k)) return { props, error: `duplicate key in comma-separated list property: ${k}` };
    props.set(k, v);
  }
  return { props };
}

export function normaliseTags(text: string): string {
  return [...new Set(text.split(/[;, ]+/).filter(Boolean).map((t) => t.toLowerCase()))].sort().join(";");
}

function randomPveMac(): string {
  return ["BC", "24", "11", ...Array.from(randomBytes(3), (b) => b.toString(16).toUpperCase().padStart(2, "0"))].join(":");
}

// ---------------------------------------------------------------- roles (pve-access-control privgroups)

const VM_PRIVS = {
  admin: ["VM.Config.Disk", "VM.Config.CPU", "VM.Config.Memory", "VM.Config.Network", "VM.Config.HWType", "VM.Config.Options", "VM.Allocate", "VM.Clone", "VM.GuestAgent.Unrestricted", "VM.Migrate", "VM.Replicate", "VM.Snapshot", "VM.Snapshot.Rollback"],
  user: ["VM.Config.CDROM", "VM.Config.Cloudinit", "VM.Console", "VM.Backup", "VM.GuestAgent.FileRead", "VM.GuestAgent.FileSystemMgmt", "VM.GuestAgent.FileWrite", "VM.PowerMgmt"],
  audit: ["VM.Audit", "VM.GuestAgent.Audit"],
};
const DS_PRIVS = { admin: ["Datastore.Allocate", "Datastore.AllocateTemplate"], user: ["Datastore.AllocateSpace"], audit: ["Datastore.Audit"] };
const SDN_PRIVS = { admin: ["SDN.Allocate", "SDN.Audit"], user: ["SDN.Use"], audit: ["SDN.Audit"] };
const SYS_PRIVS = { admin: ["Sys.Console", "Sys.Syslog"], user: [] as string[], audit: ["Sys.Audit"] };

export const PVE_ROLES: Record<string, string[]> = {
  PVEVMAdmin: [...VM_PRIVS.admin, ...VM_PRIVS.user, ...VM_PRIVS.audit],
  PVEVMUser: [...VM_PRIVS.user, ...VM_PRIVS.audit],
  PVEDatastoreAdmin: [...DS_PRIVS.admin, ...DS_PRIVS.user, ...DS_PRIVS.audit],
  PVEDatastoreUser: [...DS_PRIVS.user, ...DS_PRIVS.audit],
  PVESDNAdmin: [...SDN_PRIVS.admin, ...SDN_PRIVS.user, ...SDN_PRIVS.audit],
  PVESDNUser: [...SDN_PRIVS.user, ...SDN_PRIVS.audit],
  PVEAuditor: [...VM_PRIVS.audit, ...DS_PRIVS.audit, ...SDN_PRIVS.audit, ...SYS_PRIVS.audit],
  Administrator: [...VM_PRIVS.admin, ...VM_PRIVS.user, ...VM_PRIVS.audit, ...DS_PRIVS.admin, ...DS_PRIVS.user, ...DS_PRIVS.audit, ...SDN_PRIVS.admin, ...SDN_PRIVS.user, ...SDN_PRIVS.audit, ...SYS_PRIVS.admin, ...SYS_PRIVS.audit],
};

/** qemu-server's check_vm_modify_config_perm (plus the disk, bridge and tag checks). */
function configKeyPriv(key: string): string | null {
  if (DISK_RE.test(key) || key === "efidisk0" || key === "boot") return "VM.Config.Disk";
  if (["cores", "cpu", "sockets", "vcpus", "numa", "cpulimit", "cpuunits"].includes(key)) return "VM.Config.CPU";
  if (["memory", "balloon", "shares"].includes(key)) return "VM.Config.Memory";
  if (["machine", "scsihw", "rng0", "acpi", "kvm", "vga", "smbios1", "tablet", "hotplug", "watchdog"].includes(key)) return "VM.Config.HWType";
  if (/^net\d+$/.test(key)) return "VM.Config.Network";
  if (["name", "bios", "ostype", "agent", "onboot", "description", "tags", "protection"].includes(key)) return "VM.Config.Options";
  return null;
}

// ---------------------------------------------------------------- state

export interface FakeVm {
  vmid: number;
  node: string;
  config: Record<string, string>;
  pending: Record<string, string>;
  status: "running" | "stopped";
  /** The guest does not react to the ACPI power button. */
  ignoresAcpi: boolean;
}

interface Task {
  upid: string;
  node: string;
  type: string;
  id: string;
  user: string;
  starttime: number;
  pollsLeft: number;
  done: boolean;
  exitstatus: string;
  /** Runs when the task ends; returns the exit status (may turn OK into a failure). */
  finish: () => string;
}

export interface RequestRecord {
  method: string;
  path: string;
  query: Record<string, string | string[]>;
  params: Record<string, string | string[]>;
  rawBody: string;
  status: number;
}

export interface FakePveToken {
  id: string;
  secret: string;
  roles: string[];
}

export interface FakePveOptions {
  pki: TestPki;
  nodes?: Array<{ name: string; online?: boolean }>;
  tokens?: FakePveToken[];
  storages?: string[];
  bridges?: string[];
  /** Status polls until a task has stopped. */
  taskPolls?: number;
}

class HttpFail extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    readonly errors?: Record<string, string>,
    readonly emptyBody = false,
  ) {
    super(reason);
  }
}

const paramFail = (errors: Record<string, string>) => new HttpFail(400, "Parameter verification failed.", errors);
const serverFail = (msg: string) => new HttpFail(500, msg);

export class FakePve {
  readonly vms = new Map<number, FakeVm>();
  readonly tasks = new Map<string, Task>();
  readonly requests: RequestRecord[] = [];
  readonly nodes: Map<string, { online: boolean }>;
  readonly tokens: FakePveToken[];
  storages: Set<string>;
  bridges: Set<string>;
  taskPolls: number;
  /** Tasks running now and at most, per node. */
  readonly runningTasks = new Map<string, number>();
  readonly maxRunningTasks = new Map<string, number>();
  private pid = 0x1000;
  private nextStart = 0x1234;
  private readonly failNext = new Map<string, string>();
  private readonly warnNext = new Map<string, number>();
  private readonly fail596: Array<{ method: string; path: RegExp }> = [];
  private stealNextId = false;
  /** Called before each request is handled (tests look at their own state at that moment). */
  onRequest: ((method: string, path: string) => void) | undefined;
  url = "";
  private server: Server | undefined;

  constructor(opts: FakePveOptions) {
    this.nodes = new Map((opts.nodes ?? [{ name: "pve1" }, { name: "pve2" }, { name: "pve3" }]).map((n) => [n.name, { online: n.online ?? true }]));
    this.tokens = opts.tokens ?? [{ id: "talos-netboot@pve!provisioner", secret: "5a1c0c3e-6f1b-4b8e-9d57-3f0c8e2a9b11", roles: ["PVEVMAdmin", "PVEDatastoreUser", "PVESDNUser"] }];
    this.storages = new Set(opts.storages ?? ["local-lvm"]);
    this.bridges = new Set(opts.bridges ?? ["vmbr0"]);
    this.taskPolls = opts.taskPolls ?? 2;
    this.server = createServer({ cert: opts.pki.certPem, key: opts.pki.keyPem }, (req, res) => void this.handle(req, res));
  }

  static async start(opts: FakePveOptions): Promise<FakePve> {
    const f = new FakePve(opts);
    await new Promise<void>((resolve) => f.server!.listen(0, "127.0.0.1", resolve));
    f.url = `https://127.0.0.1:${(f.server!.address() as AddressInfo).port}`;
    return f;
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  // -- knobs for tests

  /** The next task of `type` (qmcreate, qmstart, …) ends with this exit status. */
  failNextTask(type: string, exitstatus: string): void {
    this.failNext.set(type, exitstatus);
  }

  /** The next task of `type` ends `WARNINGS: n` (and does its work). */
  warnNextTask(type: string, n: number): void {
    this.warnNext.set(type, n);
  }

  /** The next matching request is carried out, then answered 596 (pveproxy lost pvedaemon's answer). */
  answer596Once(method: string, path: RegExp): void {
    this.fail596.push({ method, path });
  }

  /** Right after the next `/cluster/nextid` answer, another client creates a VM with that VMID. */
  stealNextVmidOnce(): void {
    this.stealNextId = true;
  }

  addVm(vm: { vmid: number; node: string; name: string; tags?: string; net0?: string; status?: "running" | "stopped"; ignoresAcpi?: boolean; extra?: Record<string, string> }): FakeVm {
    const config: Record<string, string> = { name: vm.name, cores: "1", memory: "2048", net0: vm.net0 ?? `virtio=${randomPveMac()},bridge=vmbr0`, scsi0: "local-lvm:vm-" + vm.vmid + "-disk-0,size=8G", ...vm.extra };
    if (vm.tags) config.tags = normaliseTags(vm.tags);
    const v: FakeVm = { vmid: vm.vmid, node: vm.node, config, pending: {}, status: vm.status ?? "stopped", ignoresAcpi: vm.ignoresAcpi ?? false };
    this.vms.set(vm.vmid, v);
    return v;
  }

  requestsTo(method: string, path: RegExp): RequestRecord[] {
    return this.requests.filter((r) => r.method === method && path.test(r.path));
  }

  // -- HTTP

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const rawBody = Buffer.concat(chunks).toString("utf8");
    const u = new URL(req.url ?? "/", "https://fake");
    const method = req.method ?? "GET";
    const path = decodeURIComponent(u.pathname);
    const query = pveDecodeUrlencoded(u.search.slice(1));
    const ctype = (req.headers["content-type"] ?? "").split(";")[0]!.trim();
    let bodyParams: Record<string, string | string[]> = {};
    try {
      if (method === "POST" || method === "PUT") bodyParams = ctype === "application/json" ? (JSON.parse(rawBody || "{}") as Record<string, string>) : pveDecodeUrlencoded(rawBody);
    } catch {
      res.writeHead(400, "invalid JSON body", { "content-length": 0 });
      res.end();
      return;
    }
    const params = { ...bodyParams, ...query };
    const record: RequestRecord = { method, path, query, params, rawBody, status: 0 };
    this.requests.push(record);
    this.onRequest?.(method, path);
    let status = 200;
    let reason = "OK";
    let body = "";
    try {
      if (method === "DELETE" && rawBody.length > 0) throw new HttpFail(501, `Unexpected content for method '${method}'`);
      const user = this.authenticate(req.headers.authorization);
      const data = this.route(method, path, params, user);
      body = JSON.stringify({ data });
      const i = this.fail596.findIndex((f) => f.method === method && f.path.test(path));
      if (i >= 0) {
        this.fail596.splice(i, 1);
        status = 596;
        reason = "Connection timed out";
        body = "";
      }
    } catch (err) {
      if (!(err instanceof HttpFail)) {
        status = 500;
        reason = `internal error: ${(err as Error).message}`.split("\n")[0]!;
        body = JSON.stringify({ data: null, message: `${(err as Error).message}\n` });
      } else {
        status = err.status;
        reason = err.reason.split("\n")[0]!;
        body = err.emptyBody ? "" : JSON.stringify({ data: null, message: `${err.reason}\n`, ...(err.errors ? { errors: err.errors } : {}) });
      }
    }
    record.status = status;
    res.writeHead(status, reason, body ? { "content-type": "application/json;charset=UTF-8", "content-length": Buffer.byteLength(body) } : { "content-length": 0 });
    res.end(body);
  }

  private authenticate(header: string | undefined): { user: string; privs: Set<string> } {
    const prefix = "PVEAPIToken=";
    if (!header || !header.startsWith(prefix)) throw new HttpFail(401, "No ticket", undefined, true);
    const rest = header.slice(prefix.length);
    const eq = rest.indexOf("=");
    const id = eq < 0 ? rest : rest.slice(0, eq);
    const secret = eq < 0 ? "" : rest.slice(eq + 1);
    const token = this.tokens.find((t) => t.id === id);
    if (!token || token.secret !== secret) throw new HttpFail(401, "invalid token value!", undefined, true);
    return { user: id, privs: new Set(token.roles.flatMap((r) => PVE_ROLES[r] ?? [])) };
  }

  private route(method: string, path: string, p: Record<string, string | string[]>, auth: { user: string; privs: Set<string> }): unknown {
    const need = (priv: string, on: string) => {
      if (!auth.privs.has(priv)) throw new HttpFail(403, `Permission check failed (${on}, ${priv})`);
    };
    const str = (k: string): string | undefined => {
      const v = p[k];
      if (Array.isArray(v)) throw paramFail({ [k]: "type check ('string') failed - got ARRAY" });
      return v;
    };
    let m: RegExpExecArray | null;
    if (method === "GET" && path === "/api2/json/version") return { version: "9.0.3", release: "9.0", repoid: "fake0000" };
    if (method === "GET" && path === "/api2/json/nodes") {
      return [...this.nodes].map(([node, n]) => ({ node, status: n.online ? "online" : "offline", type: "node" }));
    }
    if (method === "GET" && path === "/api2/json/cluster/nextid") {
      const asked = str("vmid");
      if (asked !== undefined) {
        if (this.vms.has(Number(asked))) throw paramFail({ vmid: `VM ${asked} already exists` });
        return asked;
      }
      let id = 100;
      while (this.vms.has(id)) id++;
      if (this.stealNextId) {
        this.stealNextId = false;
        this.addVm({ vmid: id, node: [...this.nodes.keys()].at(-1)!, name: `someone-elses-${id}` });
      }
      return String(id);
    }
    if (method === "GET" && path === "/api2/json/cluster/resources") {
      return [...this.vms.values()].map((v) => ({ id: `qemu/${v.vmid}`, type: "qemu", vmid: v.vmid, node: v.node, name: v.config.name, status: v.status, tags: v.config.tags, template: 0 }));
    }
    if (!(m = /^\/api2\/json\/nodes\/([^/]+)(\/.*)?$/.exec(path))) throw new HttpFail(501, `Method '${method} ${path.replace("/api2/json", "")}' not implemented`);
    const node = m[1]!;
    const sub = m[2] ?? "";
    const n = this.nodes.get(node);
    if (!n) throw serverFail(`hostname lookup '${node}' failed - failed to get address info for: ${node}: Name or service not known`);
    if (!n.online) throw new HttpFail(595, "No route to host", undefined, true);

    if (method === "GET" && sub === "/qemu") {
      if (!auth.privs.has("VM.Audit")) return [];
      return [...this.vms.values()].filter((v) => v.node === node).map((v) => ({ vmid: v.vmid, name: v.config.name, status: v.status, ...(v.config.tags ? { tags: v.config.tags } : {}), ...(v.config.lock ? { lock: v.config.lock } : {}) }));
    }
    if (method === "POST" && sub === "/qemu") return this.createVm(node, p, auth.user, need);
    if (method === "GET" && sub === "/tasks") {
      const vmid = str("vmid");
      const type = str("typefilter");
      return [...this.tasks.values()]
        .filter((t) => t.node === node && (vmid === undefined || t.id === vmid) && (type === undefined || t.type === type))
        .filter((t) => t.user === auth.user || auth.privs.has("Sys.Audit"))
        .map((t) => ({ upid: t.upid, node: t.node, type: t.type, id: t.id, user: t.user, starttime: t.starttime, ...(t.done ? { status: t.exitstatus } : {}) }));
    }
    if ((m = /^\/tasks\/([^/]+)\/status$/.exec(sub)) && method === "GET") return this.taskStatus(node, m[1]!, auth);
    if (!(m = /^\/qemu\/(\d+)(\/.*)?$/.exec(sub))) throw new HttpFail(501, `Method '${method} ${path.replace("/api2/json", "")}' not implemented`);
    const vmid = Number(m[1]);
    const rest = m[2] ?? "";
    const vm = this.vms.get(vmid);
    if (!vm || vm.node !== node) throw serverFail(`Configuration file 'nodes/${node}/qemu-server/${vmid}.conf' does not exist`);
    const vmPath = `/vms/${vmid}`;

    if (method === "GET" && rest === "/config") {
      need("VM.Audit", vmPath);
      const current = str("current") === "1";
      const conf = current ? { ...vm.config } : { ...vm.config, ...vm.pending };
      const out: Record<string, string | number> = { ...conf, digest: "0123456789abcdef0123456789abcdef01234567" };
      if (typeof out.cores === "string") out.cores = Number(out.cores);
      return out;
    }
    if (method === "GET" && rest === "/status/current") {
      need("VM.Audit", vmPath);
      return { vmid, name: vm.config.name, status: vm.status, qmpstatus: vm.status, ...(vm.config.tags ? { tags: vm.config.tags } : {}), ...(vm.config.lock ? { lock: vm.config.lock } : {}) };
    }
    if (method === "POST" && (m = /^\/status\/(start|stop|shutdown)$/.exec(rest))) {
      need("VM.PowerMgmt", vmPath);
      return this.power(vm, m[1] as "start" | "stop" | "shutdown", p, auth.user);
    }
    if (method === "POST" && rest === "/config") return this.updateConfig(vm, p, auth.user, need);
    if (method === "DELETE" && rest === "") {
      need("VM.Allocate", vmPath);
      if (vm.config.lock) throw serverFail(`VM is locked (${vm.config.lock})`);
      if (vm.status === "running") throw serverFail(`VM ${vmid} is running - destroy failed`);
      return this.task(node, "qmdestroy", String(vmid), auth.user, () => {
        this.vms.delete(vmid);
        return "OK";
      });
    }
    throw new HttpFail(501, `Method '${method} ${path.replace("/api2/json", "")}' not implemented`);
  }

  private task(node: string, type: string, id: string, user: string, finish: () => string): string {
    const pid = this.pid++;
    const start = this.nextStart++;
    const hex = (x: number) => x.toString(16).toUpperCase().padStart(8, "0");
    const upid = `UPID:${node}:${hex(pid)}:${hex(pid * 7)}:${hex(start)}:${type}:${id}:${user}:`;
    this.tasks.set(upid, { upid, node, type, id, user, starttime: start, pollsLeft: this.taskPolls, done: false, exitstatus: "", finish });
    const running = (this.runningTasks.get(node) ?? 0) + 1;
    this.runningTasks.set(node, running);
    this.maxRunningTasks.set(node, Math.max(running, this.maxRunningTasks.get(node) ?? 0));
    return upid;
  }

  private taskStatus(node: string, upid: string, auth: { user: string; privs: Set<string> }): unknown {
    const t = this.tasks.get(upid);
    if (!t) throw paramFail({ upid: "no such task" });
    // Status is only on the node the UPID names.
    if (t.node !== node) throw paramFail({ upid: "no such task" });
    if (t.user !== auth.user && !auth.privs.has("Sys.Audit")) throw new HttpFail(403, `Permission check failed (/nodes/${node}, Sys.Audit)`);
    if (!t.done) {
      t.pollsLeft--;
      if (t.pollsLeft <= 0) {
        t.done = true;
        const forced = this.failNext.get(t.type);
        if (forced !== undefined) {
          this.failNext.delete(t.type);
          t.exitstatus = forced;
          if (t.type === "qmcreate") this.vms.delete(Number(t.id));
        } else {
          t.exitstatus = t.finish();
          const w = this.warnNext.get(t.type);
          if (w !== undefined && t.exitstatus === "OK") {
            this.warnNext.delete(t.type);
            t.exitstatus = `WARNINGS: ${w}`;
          }
        }
        this.runningTasks.set(t.node, (this.runningTasks.get(t.node) ?? 1) - 1);
      }
    }
    const hex = /^UPID:[^:]+:([0-9A-F]{8}):([0-9A-F]{8,9}):([0-9A-F]{8}):/.exec(upid)!;
    return {
      upid,
      node: t.node,
      pid: parseInt(hex[1]!, 16),
      pstart: parseInt(hex[2]!, 16),
      starttime: parseInt(hex[3]!, 16),
      type: t.type,
      id: t.id,
      user: t.user,
      status: t.done ? "stopped" : "running",
      ...(t.done ? { exitstatus: t.exitstatus } : {}),
    };
  }

  /** Checks one create/config parameter; returns the value to store (or throws). Warnings are collected. */
  private checkParam(key: string, value: string, all: Record<string, string>, warnings: string[]): string {
    const bad = (msg: string): never => {
      throw paramFail({ [key]: msg });
    };
    if (key === "name") {
      if (!/^(?=.{1,63}$)[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*$/.test(value)) bad("invalid format - value does not look like a valid DNS name");
      return value;
    }
    if (key === "cores") return /^[1-9]\d*$/.test(value) && Number(value) <= 1024 ? value : bad(`type check ('integer') failed - got '${value}'`);
    if (key === "memory") return /^\d+$/.test(value) && Number(value) >= 16 ? value : bad(`value does not match the regex pattern`);
    if (key === "cpu") return /^[A-Za-z0-9][A-Za-z0-9_.+-]*$/.test(value) ? value : bad("invalid format");
    if (key === "ostype") return ["other", "wxp", "w2k", "w2k3", "w2k8", "wvista", "win7", "win8", "win10", "win11", "l24", "l26", "solaris"].includes(value) ? value : bad(`value '${value}' does not have a value in the enumeration`);
    if (key === "bios") return ["seabios", "ovmf"].includes(value) ? value : bad(`value '${value}' does not have a value in the enumeration 'seabios, ovmf'`);
    if (key === "machine") return /^(pc|q35|pc-(i440fx-|q35-)?\d+(\.\d+)+(\+pve\d+)?)$/.test(value) ? value : bad("value does not match the regex pattern");
    if (key === "scsihw") return ["lsi", "lsi53c810", "virtio-scsi-pci", "virtio-scsi-single", "megasas", "pvscsi"].includes(value) ? value : bad("value does not have a value in the enumeration");
    if (key === "tags") {
      const tags = value.split(/[;, ]+/).filter(Boolean);
      for (const t of tags) if (!PVE_TAG_RE.test(t)) bad(`invalid format - invalid characters in tag '${t}'`);
      return normaliseTags(value);
    }
    if (key === "rng0") {
      const { props, error } = parseProps(value, "source");
      if (error) bad(`invalid format - ${error}`);
      for (const k of props.keys()) if (!["source", "max_bytes", "period"].includes(k)) bad(`invalid format - property '${k}' is not defined`);
      if (!["/dev/urandom", "/dev/random", "/dev/hwrng"].includes(props.get("source") ?? "")) bad("invalid format - source: value does not have a value in the enumeration");
      return value;
    }
    if (/^net\d+$/.test(key)) {
      const { props, error } = parseProps(value);
      if (error) {
        // A bare model ("virtio") is the model with no MAC.
        if (!NIC_MODELS.includes(value)) bad(`invalid format - ${error}`);
      }
      let model: string | undefined;
      let mac: string | undefined;
      const out = new Map<string, string>();
      for (const [k, v] of error ? [[value, ""] as [string, string]] : props) {
        if (NIC_MODELS.includes(k)) {
          if (model) bad("invalid format - duplicate model");
          model = k;
          if (v !== "") mac = v;
        } else if (k === "model") {
          if (!NIC_MODELS.includes(v)) bad(`invalid format - model: value '${v}' does not have a value in the enumeration`);
          model = v;
        } else if (k === "macaddr") mac = v;
        else if (k === "bridge") {
          if (!/^[-_.\w\d]+$/.test(v)) bad("invalid format - bridge: value does not match the regex pattern");
          out.set(k, v);
        } else if (k === "tag") {
          if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 4094) bad(`invalid format - tag: value must be between 1 and 4094`);
          out.set(k, v);
        } else if (["firewall", "link_down"].includes(k)) {
          if (!["0", "1"].includes(v)) bad(`invalid format - ${k}: type check ('boolean') failed - got '${v}'`);
          out.set(k, v);
        } else if (["mtu", "queues", "rate", "trunks"].includes(k)) out.set(k, v);
        else bad(`invalid format - property '${k}' is not defined`);
      }
      if (!model) bad("invalid format - missing property - 'model'");
      if (mac !== undefined) {
        if (!MAC_RE.test(mac)) bad(`invalid format - value does not look like a valid MAC address`);
        if (/^[a-f0-9][13579bdf]/i.test(mac)) bad(`invalid format - multicast MAC address ${mac} is not allowed`);
      }
      // PVE's print_net order: model=MAC, then bridge, firewall, link_down, mtu, queues, rate, tag, trunks.
      const order = ["bridge", "firewall", "link_down", "mtu", "queues", "rate", "tag", "trunks"];
      return [`${model}=${mac ?? randomPveMac()}`, ...order.filter((k) => out.has(k)).map((k) => `${k}=${out.get(k)}`)].join(",");
    }
    if (key === "boot") {
      const { props, error } = parseProps(value, "legacy");
      if (error) bad(`invalid format - ${error}`);
      const order = props.get("order");
      if (order === undefined) bad("invalid format - only 'order=' boot orders are accepted by this fake");
      for (const dev of order!.split(";")) {
        if (!/^(net\d+|(scsi|virtio|sata|ide)\d+|efidisk0)$/.test(dev)) bad(`invalid format - invalid boot device '${dev}'`);
        if (all[dev] === undefined) bad(`invalid format - boot device '${dev}' does not exist`);
      }
      return value;
    }
    if (key === "efidisk0" || DISK_RE.test(key)) {
      const dm = DISK_RE.exec(key);
      if (dm && Number(dm[2]) > SLOT_MAX[dm[1]!]!) bad("property is not defined in schema and the schema does not allow additional properties");
      const { props, error } = parseProps(value, "file");
      if (error) bad(`invalid format - ${error}`);
      const file = props.get("file") ?? "";
      const fm = /^([a-z][a-z0-9\-_.]*[a-z0-9]):(\d+(\.\d+)?)$/i.exec(file);
      if (!fm) bad(`invalid format - file: '${file}' is neither <storage>:<size in GiB> nor an existing volume`);
      if (!this.storages.has(fm![1]!)) bad(`storage '${fm![1]}' does not exist`);
      const allowed = key === "efidisk0" ? ["file", "efitype", "pre-enrolled-keys", "ms-cert", "format", "size"] : ["file", "ssd", "iothread", "discard", "cache", "backup", "replicate", "aio", "format", "size", "serial"];
      for (const k of props.keys()) {
        if (!allowed.includes(k) || (k === "ssd" && dm?.[1] === "virtio") || (k === "iothread" && (dm?.[1] === "ide" || dm?.[1] === "sata"))) bad(`invalid format - property '${k}' is not defined`);
      }
      for (const k of ["ssd", "iothread", "pre-enrolled-keys", "backup", "replicate"]) {
        if (props.has(k) && !["0", "1"].includes(props.get(k)!)) bad(`invalid format - ${k}: type check ('boolean') failed - got '${props.get(k)}'`);
      }
      if (props.has("discard") && !["on", "ignore"].includes(props.get("discard")!)) bad("invalid format - discard: value does not have a value in the enumeration 'ignore, on'");
      if (props.has("efitype") && !["2m", "4m"].includes(props.get("efitype")!)) bad("invalid format - efitype: value does not have a value in the enumeration '2m, 4m'");
      if (dm?.[1] === "scsi" && props.get("iothread") === "1" && all.scsihw !== "virtio-scsi-single") {
        warnings.push(`WARN: iothread is only valid with virtio disk or virtio-scsi-single controller, ignoring`);
      }
      if (key === "efidisk0" && all.bios !== "ovmf") warnings.push("WARN: efidisk0 is set but bios is not ovmf");
      // Allocated: `<storage>:vm-<vmid>-disk-<n>` and the options in key order, with the size.
      const opts = new Map([...props].filter(([k]) => k !== "file"));
      opts.set("size", key === "efidisk0" ? "4M" : `${fm![2]}G`);
      const volume = `${fm![1]}:vm-${all.vmid ?? "0"}-disk-${key === "efidisk0" ? "efi" : key}`;
      return [volume, ...[...opts].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}=${v}`)].join(",");
    }
    if (key === "vmid" || key === "node") return value;
    return bad("property is not defined in schema and the schema does not allow additional properties");
  }

  private createVm(node: string, raw: Record<string, string | string[]>, user: string, need: (priv: string, on: string) => void): string {
    const p: Record<string, string> = {};
    for (const [k, v] of Object.entries(raw)) {
      if (Array.isArray(v)) throw paramFail({ [k]: "type check ('string') failed - got ARRAY" });
      p[k] = v;
    }
    const vmidText = p.vmid;
    if (vmidText === undefined) throw paramFail({ vmid: "property is missing and it is not optional" });
    if (!/^\d+$/.test(vmidText) || Number(vmidText) < 100 || Number(vmidText) > 999_999_999) throw paramFail({ vmid: "value must be between 100 and 999999999" });
    const vmid = Number(vmidText);
    need("VM.Allocate", `/vms/${vmid}`);
    const warnings: string[] = [];
    const conf: Record<string, string> = {};
    for (const [k, v] of Object.entries(p)) {
      if (k === "vmid") continue;
      conf[k] = this.checkParam(k, v, p, warnings);
    }
    for (const k of Object.keys(conf)) {
      const priv = configKeyPriv(k);
      if (priv === null) throw new HttpFail(500, `only root can set '${k}' config`);
      need(priv, `/vms/${vmid}`);
      if (k === "efidisk0" || DISK_RE.test(k)) need("Datastore.AllocateSpace", `/storage/${p[k]!.split(":")[0]}`);
      if (/^net\d+$/.test(k)) {
        const bridge = /bridge=([^,]+)/.exec(conf[k]!)?.[1];
        const tag = /tag=(\d+)/.exec(conf[k]!)?.[1];
        if (bridge) need("SDN.Use", `/sdn/zones/localnetwork/${bridge}${tag ? `/${tag}` : ""}`);
      }
    }
    if (this.vms.has(vmid)) {
      const other = this.vms.get(vmid)!;
      throw serverFail(`unable to create VM ${vmid} - VM ${vmid} already exists on node '${other.node}'`);
    }
    // create_and_lock_config: the VMID is claimed at once, the config written by the task.
    const vm: FakeVm = { vmid, node, config: { lock: "create" }, pending: {}, status: "stopped", ignoresAcpi: false };
    this.vms.set(vmid, vm);
    return this.task(node, "qmcreate", String(vmid), user, () => {
      vm.config = { ...conf, vmgenid: "00000000-0000-4000-8000-000000000000", smbios1: "uuid=00000000-0000-4000-8000-000000000001", meta: "creation-qemu=9.2.0,ctime=1700000000" };
      if (!vm.config.boot) vm.config.boot = "order=scsi0;net0";
      return warnings.length > 0 ? `WARNINGS: ${warnings.length}` : "OK";
    });
  }

  private updateConfig(vm: FakeVm, raw: Record<string, string | string[]>, user: string, need: (priv: string, on: string) => void): string {
    const warnings: string[] = [];
    const changes: Record<string, string> = {};
    for (const [k, v] of Object.entries(raw)) {
      if (Array.isArray(v)) throw paramFail({ [k]: "type check ('string') failed - got ARRAY" });
      if (k === "digest" || k === "delete") continue;
      const priv = configKeyPriv(k);
      if (priv === null) throw new HttpFail(500, `only root can set '${k}' config`);
      need(priv, `/vms/${vm.vmid}`);
      changes[k] = this.checkParam(k, v, { ...vm.config, ...vm.pending, ...(raw as Record<string, string>), vmid: String(vm.vmid) }, warnings);
    }
    if (vm.config.lock) throw serverFail(`VM is locked (${vm.config.lock})`);
    return this.task(vm.node, "qmconfig", String(vm.vmid), user, () => {
      for (const [k, v] of Object.entries(changes)) {
        if (vm.status === "running" && ["boot", "cores", "memory", "bios", "machine"].includes(k)) vm.pending[k] = v;
        else vm.config[k] = v;
      }
      return warnings.length > 0 ? `WARNINGS: ${warnings.length}` : "OK";
    });
  }

  private power(vm: FakeVm, action: "start" | "stop" | "shutdown", p: Record<string, string | string[]>, user: string): string {
    const type = action === "start" ? "qmstart" : action === "stop" ? "qmstop" : "qmshutdown";
    if (vm.config.lock) throw serverFail(`VM is locked (${vm.config.lock})`);
    const forceStop = p.forceStop === "1";
    return this.task(vm.node, type, String(vm.vmid), user, () => {
      if (action === "start") {
        if (vm.status === "running") return `VM ${vm.vmid} already running`;
        const bridge = /bridge=([^,]+)/.exec(vm.config.net0 ?? "")?.[1];
        if (bridge && !this.bridges.has(bridge)) return `bridge '${bridge}' does not exist`;
        vm.status = "running";
        return "OK";
      }
      if (vm.status !== "running") return "OK";
      if (action === "shutdown" && vm.ignoresAcpi && !forceStop) return "VM quit/powerdown failed - got timeout";
      vm.status = "stopped";
      Object.assign(vm.config, vm.pending);
      vm.pending = {};
      return "OK";
    });
  }
}

// ---------------------------------------------------------------- wiring a provider to the fake

/** A `providers.proxmox` config for the fake (fingerprint-pinned, the fake's default token). */
export function fakePveConfig(fake: FakePve, pki: TestPki, over: Record<string, unknown> = {}): ProxmoxProviderConfig {
  const token = fake.tokens[0]!;
  return proxmoxProviderSchema.parse({
    url: fake.url,
    tokenId: token.id,
    tokenSecret: token.secret,
    fingerprint: pki.fingerprint,
    nodes: [...fake.nodes.keys()],
    vlan: 20,
    taskTimeoutSec: 30,
    ...over,
  });
}

export function fakePveProvider(
  fake: FakePve,
  pki: TestPki,
  over: Record<string, unknown> = {},
  opts: { store?: VmStore; trust?: PveTrust; token?: { id: string; secret: string } } = {},
): { provider: ProxmoxProvider; store: VmStore; config: ProxmoxProviderConfig } {
  const config = fakePveConfig(fake, pki, over);
  const store = opts.store ?? new VmStore(openMemoryDatabase([VMS_FAMILY]));
  const client = new PveClient({
    url: config.url,
    tokenId: opts.token?.id ?? config.tokenId,
    tokenSecret: opts.token?.secret ?? config.tokenSecret!,
    trust: opts.trust ?? { fingerprint: pki.fingerprint },
    getRetries: 0,
  });
  return { provider: new ProxmoxProvider({ config, client, store, log: silentLogger(), taskPollMs: 5 }), store, config };
}

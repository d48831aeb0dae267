import type { Mac } from "../boot/mac.js";
import type { Db, MigrationFamily } from "./db.js";

/**
 * VMs we created or are about to create, per provider: the MAC chosen and the
 * host picked are written here *before* the VM exists, so a retried or
 * resumed request finds them again and never makes a second VM, and the MAC
 * can be registered with a boot profile before the VM first powers on.
 */
export const VMS_FAMILY: MigrationFamily = {
  name: "provider_vms",
  migrations: [
    `CREATE TABLE provider_vms (
       provider   TEXT NOT NULL CHECK (provider IN ('proxmox', 'qemu')),
       cluster    TEXT NOT NULL,
       name       TEXT NOT NULL,
       role       TEXT NOT NULL CHECK (role IN ('controlplane', 'worker')),
       mac        TEXT NOT NULL UNIQUE,
       node       TEXT,
       vmid       INTEGER,
       state      TEXT NOT NULL CHECK (state IN ('reserved', 'creating', 'created')),
       spec       TEXT NOT NULL,
       created_at TEXT NOT NULL,
       updated_at TEXT NOT NULL,
       PRIMARY KEY (provider, cluster, name)
     );
     CREATE INDEX provider_vms_vmid ON provider_vms (provider, vmid);`,
  ],
};

/**
 * `reserved`: MAC and host chosen, nothing sent yet. `creating`: a create
 * request with `vmid` was (or may have been) sent — look before sending
 * another. `created`: the VM exists (as far as we last saw).
 */
export type VmRecordState = "reserved" | "creating" | "created";

export interface VmRecord {
  provider: "proxmox" | "qemu";
  cluster: string;
  name: string;
  role: "controlplane" | "worker";
  mac: Mac;
  node: string | null;
  vmid: number | null;
  state: VmRecordState;
  spec: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
}

interface Row {
  provider: VmRecord["provider"];
  cluster: string;
  name: string;
  role: VmRecord["role"];
  mac: string;
  node: string | null;
  vmid: number | null;
  state: VmRecordState;
  spec: string;
  created_at: string;
  updated_at: string;
}

const fromRow = (r: Row): VmRecord => ({
  provider: r.provider,
  cluster: r.cluster,
  name: r.name,
  role: r.role,
  mac: r.mac as Mac,
  node: r.node,
  vmid: r.vmid,
  state: r.state,
  spec: JSON.parse(r.spec) as Record<string, unknown>,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export interface ReserveInput {
  provider: VmRecord["provider"];
  cluster: string;
  name: string;
  role: VmRecord["role"];
  spec: Record<string, unknown>;
  /** A MAC the caller chose, or a function that picks a free one given "is it taken?". */
  mac: Mac | ((taken: (mac: Mac) => boolean) => Mac);
  /** Picks the host from the cluster's other records (same provider); null for providers without hosts. */
  chooseNode: (siblings: VmRecord[]) => string | null;
}

export type ReserveResult =
  | { kind: "existing"; record: VmRecord }
  | { kind: "reserved"; record: VmRecord }
  | { kind: "mac-in-use"; by: VmRecord };

/** The only code that touches `provider_vms`. */
export class VmStore {
  constructor(
    private readonly db: Db,
    private readonly now: () => Date = () => new Date(),
  ) {}

  get(provider: VmRecord["provider"], cluster: string, name: string): VmRecord | undefined {
    const row = this.db.prepare("SELECT * FROM provider_vms WHERE provider = ? AND cluster = ? AND name = ?").get(provider, cluster, name) as Row | undefined;
    return row && fromRow(row);
  }

  getByVmid(provider: VmRecord["provider"], vmid: number): VmRecord | undefined {
    const row = this.db.prepare("SELECT * FROM provider_vms WHERE provider = ? AND vmid = ?").get(provider, vmid) as Row | undefined;
    return row && fromRow(row);
  }

  getByMac(mac: Mac): VmRecord | undefined {
    const row = this.db.prepare("SELECT * FROM provider_vms WHERE mac = ?").get(mac) as Row | undefined;
    return row && fromRow(row);
  }

  listCluster(provider: VmRecord["provider"], cluster: string): VmRecord[] {
    return (this.db.prepare("SELECT * FROM provider_vms WHERE provider = ? AND cluster = ? ORDER BY name").all(provider, cluster) as Row[]).map(fromRow);
  }

  list(provider: VmRecord["provider"]): VmRecord[] {
    return (this.db.prepare("SELECT * FROM provider_vms WHERE provider = ? ORDER BY cluster, name").all(provider) as Row[]).map(fromRow);
  }

  /** VMIDs recorded for in-flight or existing VMs: never handed to a second create. */
  vmids(provider: VmRecord["provider"]): Set<number> {
    const rows = this.db.prepare("SELECT vmid FROM provider_vms WHERE provider = ? AND vmid IS NOT NULL").all(provider) as Array<{ vmid: number }>;
    return new Set(rows.map((r) => r.vmid));
  }

  macTaken(mac: Mac): boolean {
    return this.db.prepare("SELECT 1 FROM provider_vms WHERE mac = ?").get(mac) !== undefined;
  }

  /**
   * Returns the record for (provider, cluster, name), creating it — MAC and
   * host chosen — when there is none. One transaction: concurrent callers in
   * this process see each other's choices (placement spreads, MACs differ).
   */
  reserve(input: ReserveInput): ReserveResult {
    return this.db.transaction((): ReserveResult => {
      const existing = this.get(input.provider, input.cluster, input.name);
      if (existing) return { kind: "existing", record: existing };
      let mac: Mac;
      if (typeof input.mac === "function") {
        mac = input.mac((m) => this.macTaken(m));
      } else {
        const by = this.getByMac(input.mac);
        if (by) return { kind: "mac-in-use", by };
        mac = input.mac;
      }
      const node = input.chooseNode(this.listCluster(input.provider, input.cluster));
      const now = this.now().toISOString();
      this.db
        .prepare(
          `INSERT INTO provider_vms (provider, cluster, name, role, mac, node, vmid, state, spec, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, NULL, 'reserved', ?, ?, ?)`,
        )
        .run(input.provider, input.cluster, input.name, input.role, mac, node, JSON.stringify(input.spec), now, now);
      return { kind: "reserved", record: this.get(input.provider, input.cluster, input.name)! };
    })();
  }

  update(provider: VmRecord["provider"], cluster: string, name: string, patch: { node?: string | null; vmid?: number | null; state?: VmRecordState }): VmRecord | undefined {
    const cur = this.get(provider, cluster, name);
    if (!cur) return undefined;
    this.db
      .prepare("UPDATE provider_vms SET node = ?, vmid = ?, state = ?, updated_at = ? WHERE provider = ? AND cluster = ? AND name = ?")
      .run(
        patch.node === undefined ? cur.node : patch.node,
        patch.vmid === undefined ? cur.vmid : patch.vmid,
        patch.state ?? cur.state,
        this.now().toISOString(),
        provider,
        cluster,
        name,
      );
    return this.get(provider, cluster, name);
  }

  remove(provider: VmRecord["provider"], cluster: string, name: string): boolean {
    return this.db.prepare("DELETE FROM provider_vms WHERE provider = ? AND cluster = ? AND name = ?").run(provider, cluster, name).changes > 0;
  }
}

import { randomBytes } from "node:crypto";
import type { Db, MigrationFamily } from "./db.js";

/**
 * Clusters (their Talos secrets bundle, as secrets.yaml text) and the machine
 * configs generated for their nodes. The database file is 0600; secrets never
 * leave through logs.
 */
export const TALOS_FAMILY: MigrationFamily = {
  name: "talos",
  migrations: [
    `CREATE TABLE talos_clusters (
       name               TEXT PRIMARY KEY,
       endpoint           TEXT NOT NULL,
       talos_version      TEXT NOT NULL,
       kubernetes_version TEXT NOT NULL,
       secrets_yaml       TEXT NOT NULL,
       created_at         TEXT NOT NULL,
       updated_at         TEXT NOT NULL
     );
     CREATE TABLE talos_nodes (
       node_id      TEXT PRIMARY KEY,
       cluster_name TEXT NOT NULL REFERENCES talos_clusters (name) ON DELETE CASCADE,
       role         TEXT NOT NULL CHECK (role IN ('controlplane', 'worker')),
       hostname     TEXT NOT NULL,
       mac          TEXT,
       address      TEXT,
       config_yaml  TEXT NOT NULL,
       created_at   TEXT NOT NULL,
       updated_at   TEXT NOT NULL,
       UNIQUE (cluster_name, hostname)
     );
     CREATE INDEX talos_nodes_mac ON talos_nodes (mac);`,
  ],
};

export interface TalosCluster {
  name: string;
  endpoint: string;
  talosVersion: string;
  kubernetesVersion: string;
  /** Secret: the cluster's secrets.yaml. */
  secretsYaml: string;
}

export type NodeRole = "controlplane" | "worker";

export interface TalosNode {
  nodeId: string;
  clusterName: string;
  role: NodeRole;
  hostname: string;
  mac: string | null;
  /** The node's address without prefix (static or expected DHCP), for endpoints and SANs. */
  address: string | null;
  /** Secret: holds the cluster's keys. */
  configYaml: string;
  updatedAt: string;
}

interface NodeRow {
  node_id: string;
  cluster_name: string;
  role: NodeRole;
  hostname: string;
  mac: string | null;
  address: string | null;
  config_yaml: string;
  updated_at: string;
}

const nodeFromRow = (r: NodeRow): TalosNode => ({
  nodeId: r.node_id,
  clusterName: r.cluster_name,
  role: r.role,
  hostname: r.hostname,
  mac: r.mac,
  address: r.address,
  configYaml: r.config_yaml,
  updatedAt: r.updated_at,
});

export class TalosStore {
  constructor(
    private readonly db: Db,
    private readonly now: () => Date = () => new Date(),
  ) {}

  cluster(name: string): TalosCluster | undefined {
    const r = this.db.prepare("SELECT * FROM talos_clusters WHERE name = ?").get(name) as
      | { name: string; endpoint: string; talos_version: string; kubernetes_version: string; secrets_yaml: string }
      | undefined;
    return r && { name: r.name, endpoint: r.endpoint, talosVersion: r.talos_version, kubernetesVersion: r.kubernetes_version, secretsYaml: r.secrets_yaml };
  }

  createCluster(c: TalosCluster): void {
    const now = this.now().toISOString();
    this.db
      .prepare("INSERT INTO talos_clusters (name, endpoint, talos_version, kubernetes_version, secrets_yaml, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
      .run(c.name, c.endpoint, c.talosVersion, c.kubernetesVersion, c.secretsYaml, now, now);
  }

  node(nodeId: string): TalosNode | undefined {
    const r = this.db.prepare("SELECT * FROM talos_nodes WHERE node_id = ?").get(nodeId) as NodeRow | undefined;
    return r && nodeFromRow(r);
  }

  nodes(clusterName: string): TalosNode[] {
    return (this.db.prepare("SELECT * FROM talos_nodes WHERE cluster_name = ? ORDER BY hostname").all(clusterName) as NodeRow[]).map(nodeFromRow);
  }

  /** The newest config generated for a machine's MAC: what its per-machine config URL serves. */
  nodeByMac(mac: string): TalosNode | undefined {
    const r = this.db.prepare("SELECT * FROM talos_nodes WHERE mac = ? ORDER BY updated_at DESC LIMIT 1").get(mac) as NodeRow | undefined;
    return r && nodeFromRow(r);
  }

  /** Creates or replaces the node (cluster, hostname); its nodeId is kept across regenerations. */
  saveNode(n: Omit<TalosNode, "nodeId" | "updatedAt">): TalosNode {
    const now = this.now().toISOString();
    return this.db.transaction(() => {
      const existing = this.db.prepare("SELECT node_id FROM talos_nodes WHERE cluster_name = ? AND hostname = ?").get(n.clusterName, n.hostname) as
        | { node_id: string }
        | undefined;
      const nodeId = existing?.node_id ?? `node-${randomBytes(8).toString("hex")}`;
      this.db
        .prepare(
          `INSERT INTO talos_nodes (node_id, cluster_name, role, hostname, mac, address, config_yaml, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (node_id) DO UPDATE SET role = excluded.role, mac = excluded.mac, address = excluded.address,
             config_yaml = excluded.config_yaml, updated_at = excluded.updated_at`,
        )
        .run(nodeId, n.clusterName, n.role, n.hostname, n.mac, n.address, n.configYaml, now, now);
      return this.node(nodeId)!;
    })();
  }

  replaceConfig(nodeId: string, configYaml: string): TalosNode | undefined {
    this.db.prepare("UPDATE talos_nodes SET config_yaml = ?, updated_at = ? WHERE node_id = ?").run(configYaml, this.now().toISOString(), nodeId);
    return this.node(nodeId);
  }
}

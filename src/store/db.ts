import Database from "better-sqlite3";
import { chmodSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { ASSETS_FAMILY } from "./assets.js";
import { TALOS_FAMILY } from "./talos.js";
import { VMS_FAMILY } from "./vms.js";

export type Db = Database.Database;

/**
 * A table family's schema changes, applied in order; the version reached is
 * recorded per family in `schema_migrations`. Append only: a released
 * migration never changes. Each family lives beside the module that owns
 * its tables (machines here; talos configs, assets, clusters in theirs).
 */
export interface MigrationFamily {
  name: string;
  migrations: readonly string[];
}

const MACHINE_MIGRATIONS: string[] = [
  `CREATE TABLE machines (
     mac          TEXT PRIMARY KEY,
     profile      TEXT NOT NULL,
     hostname     TEXT,
     bootfile     TEXT,
     source       TEXT NOT NULL CHECK (source IN ('config', 'api', 'discovered')),
     next         TEXT NOT NULL DEFAULT 'profile' CHECK (next IN ('profile', 'local')),
     config_token TEXT NOT NULL,
     last_seen    TEXT,
     created_at   TEXT NOT NULL,
     updated_at   TEXT NOT NULL
   );
   CREATE TABLE timeline (
     id      INTEGER PRIMARY KEY AUTOINCREMENT,
     mac     TEXT NOT NULL,
     time    TEXT NOT NULL,
     step    TEXT NOT NULL,
     details TEXT NOT NULL
   );
   CREATE INDEX timeline_mac ON timeline (mac, id);
   CREATE TABLE unknown_machines (
     mac        TEXT PRIMARY KEY,
     first_seen TEXT NOT NULL,
     last_seen  TEXT NOT NULL,
     count      INTEGER NOT NULL,
     last_facts TEXT NOT NULL
   );`,
];

export const MACHINES_FAMILY: MigrationFamily = { name: "machines", migrations: MACHINE_MIGRATIONS };

/** Every family the daemon uses; modules add theirs here. */
export const ALL_FAMILIES: MigrationFamily[] = [MACHINES_FAMILY, TALOS_FAMILY, ASSETS_FAMILY, VMS_FAMILY];

/** Opens (creating) `<stateDir>/talos-netboot.db`, owner-only, WAL, migrated. */
export function openDatabase(stateDir: string, families: readonly MigrationFamily[] = ALL_FAMILIES): Db {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const path = join(stateDir, "talos-netboot.db");
  const db = new Database(path);
  // Configs and tokens live here: nobody but the daemon's user reads it.
  chmodSync(path, 0o600);
  db.pragma("journal_mode = WAL");
  // WAL + NORMAL: no fsync per commit (timeline writes sit on the DHCP answer
  // path); a power cut may lose the newest commits, never corrupt the file.
  db.pragma("synchronous = NORMAL");
  db.pragma("foreign_keys = ON");
  db.pragma("busy_timeout = 5000");
  migrate(db, families);
  return db;
}

export function openMemoryDatabase(families: readonly MigrationFamily[] = ALL_FAMILIES): Db {
  const db = new Database(":memory:");
  migrate(db, families);
  return db;
}

export function migrate(db: Db, families: readonly MigrationFamily[]): void {
  db.exec("CREATE TABLE IF NOT EXISTS schema_migrations (family TEXT PRIMARY KEY, version INTEGER NOT NULL)");
  const read = db.prepare("SELECT version FROM schema_migrations WHERE family = ?");
  const write = db.prepare("INSERT INTO schema_migrations (family, version) VALUES (?, ?) ON CONFLICT (family) DO UPDATE SET version = excluded.version");
  for (const family of families) {
    const current = (read.get(family.name) as { version: number } | undefined)?.version ?? 0;
    if (current > family.migrations.length) {
      throw new Error(
        `the database's ${family.name} tables have schema version ${current}, newer than this talos-netboot knows (${family.migrations.length}): upgrade talos-netboot`,
      );
    }
    for (let v = current; v < family.migrations.length; v++) {
      db.transaction(() => {
        db.exec(family.migrations[v]!);
        write.run(family.name, v + 1);
      })();
    }
  }
}

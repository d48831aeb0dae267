import Database from "better-sqlite3";
import { chmodSync, mkdirSync } from "node:fs";
import { join } from "node:path";

export type Db = Database.Database;

/**
 * Schema changes, applied in order and recorded in `user_version`. Append
 * only: a released migration never changes.
 */
const MIGRATIONS: string[] = [
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

/** Opens (creating) `<stateDir>/talos-netboot.db`, owner-only, WAL, migrated. */
export function openDatabase(stateDir: string): Db {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const path = join(stateDir, "talos-netboot.db");
  const db = new Database(path);
  // Configs and tokens live here: nobody but the daemon's user reads it.
  chmodSync(path, 0o600);
  db.pragma("journal_mode = WAL");
  db.pragma("foreign_keys = ON");
  db.pragma("busy_timeout = 5000");
  migrate(db);
  return db;
}

export function openMemoryDatabase(): Db {
  const db = new Database(":memory:");
  migrate(db);
  return db;
}

function migrate(db: Db): void {
  const current = db.pragma("user_version", { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new Error(`the database has schema version ${current}, newer than this talos-netboot knows (${MIGRATIONS.length}): upgrade talos-netboot`);
  }
  for (let v = current; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}

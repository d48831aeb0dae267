import type { Db, MigrationFamily } from "./db.js";

/**
 * Named Image Factory schematics created through the API. (Cached files
 * keep their records beside them in the cache directory; see
 * src/assets/cache.ts.) The customization is stored as given (JSON) with
 * its canonical YAML and ID, so a stored schematic can be registered with a
 * factory later, from a site that had none when it was created.
 */
export const ASSETS_FAMILY: MigrationFamily = {
  name: "assets",
  migrations: [
    `CREATE TABLE schematics (
       name          TEXT PRIMARY KEY,
       id            TEXT NOT NULL,
       customization TEXT NOT NULL,
       yaml          TEXT NOT NULL,
       registered_at TEXT,
       created_at    TEXT NOT NULL
     );
     CREATE INDEX schematics_id ON schematics (id);`,
  ],
};

export interface StoredSchematic {
  name: string;
  id: string;
  /** JSON of the customization. */
  customization: unknown;
  yaml: string;
  /** When a factory last acknowledged it (POST /schematics); null when none has. */
  registeredAt: string | null;
  createdAt: string;
}

interface Row {
  name: string;
  id: string;
  customization: string;
  yaml: string;
  registered_at: string | null;
  created_at: string;
}

const fromRow = (r: Row): StoredSchematic => ({
  name: r.name,
  id: r.id,
  customization: JSON.parse(r.customization) as unknown,
  yaml: r.yaml,
  registeredAt: r.registered_at,
  createdAt: r.created_at,
});

export type PutResult = { outcome: "created" | "unchanged"; schematic: StoredSchematic } | { outcome: "conflict"; schematic: StoredSchematic };

export class SchematicStore {
  constructor(private readonly db: Db) {}

  get(name: string): StoredSchematic | undefined {
    const r = this.db.prepare("SELECT * FROM schematics WHERE name = ?").get(name) as Row | undefined;
    return r ? fromRow(r) : undefined;
  }

  /** Any stored schematic with this ID (names are aliases of content). */
  byId(id: string): StoredSchematic | undefined {
    const r = this.db.prepare("SELECT * FROM schematics WHERE id = ? ORDER BY name LIMIT 1").get(id) as Row | undefined;
    return r ? fromRow(r) : undefined;
  }

  list(): StoredSchematic[] {
    return (this.db.prepare("SELECT * FROM schematics ORDER BY name").all() as Row[]).map(fromRow);
  }

  /** Stores a name once; the same content again is a no-op, other content under the name a conflict. */
  put(s: { name: string; id: string; customization: unknown; yaml: string }): PutResult {
    return this.db.transaction((): PutResult => {
      const existing = this.get(s.name);
      if (existing) return { outcome: existing.id === s.id ? "unchanged" : "conflict", schematic: existing };
      this.db
        .prepare("INSERT INTO schematics (name, id, customization, yaml, registered_at, created_at) VALUES (?, ?, ?, ?, NULL, ?)")
        .run(s.name, s.id, JSON.stringify(s.customization), s.yaml, new Date().toISOString());
      return { outcome: "created", schematic: this.get(s.name)! };
    })();
  }

  markRegistered(id: string, at = new Date().toISOString()): void {
    this.db.prepare("UPDATE schematics SET registered_at = ? WHERE id = ?").run(at, id);
  }

  delete(name: string): boolean {
    return this.db.prepare("DELETE FROM schematics WHERE name = ?").run(name).changes > 0;
  }
}

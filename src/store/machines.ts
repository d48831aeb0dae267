import { randomBytes } from "node:crypto";
import type { Mac } from "../boot/mac.js";
import type { Statement } from "better-sqlite3";
import type { Db } from "./db.js";

/** `discovered`: an unknown machine booted the `unknownMachines` profile and was registered. */
export type MachineSource = "config" | "api" | "discovered";
export type NextBoot = "profile" | "local";
export type TimelineStep =
  | "dhcp-offer"
  | "dhcp-4011"
  | "dhcp-ignored"
  | "tftp"
  | "script"
  | "kernel"
  | "initrd"
  | "config"
  | "config-denied"
  | "local-boot"
  | "boot-set"
  /** A Talos profile's boot files were asked for while still downloading (or unavailable). */
  | "assets-pending";

export interface TimelineEntry {
  time: string;
  step: TimelineStep;
  details: Record<string, unknown>;
}

export interface Machine {
  mac: Mac;
  profile: string;
  hostname: string | null;
  bootfile: string | null;
  source: MachineSource;
  next: NextBoot;
  lastSeen: string | null;
  /** Secret: never logged, never returned by the API. */
  configToken: string;
}

export interface UnknownMachine {
  mac: Mac;
  firstSeen: string;
  lastSeen: string;
  count: number;
  lastFacts: Record<string, unknown>;
}

interface MachineRow {
  mac: string;
  profile: string;
  hostname: string | null;
  bootfile: string | null;
  source: MachineSource;
  next: NextBoot;
  config_token: string;
  last_seen: string | null;
}

/** Unknown MACs remembered; the least recently seen are forgotten first. */
export const MAX_UNKNOWN = 10_000;

export function newConfigToken(): string {
  return randomBytes(24).toString("base64url");
}

const fromRow = (r: MachineRow): Machine => ({
  mac: r.mac as Mac,
  profile: r.profile,
  hostname: r.hostname,
  bootfile: r.bootfile,
  source: r.source,
  next: r.next,
  lastSeen: r.last_seen,
  configToken: r.config_token,
});

/** Machines, their boot timelines and the unknown MACs seen. The only code that touches these tables. */
export class MachineStore {
  /** Prepared once: the DHCP answer path runs these for every packet. */
  private readonly statements = new Map<string, Statement>();
  private pending: Array<{ mac: Mac; time: string; step: TimelineStep; details: string }> = [];
  private flushScheduled = false;

  constructor(
    private readonly db: Db,
    private readonly timelineMax = 200,
    private readonly now: () => Date = () => new Date(),
  ) {}

  private q(sql: string): Statement {
    let st = this.statements.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      this.statements.set(sql, st);
    }
    return st;
  }

  get(mac: Mac): Machine | undefined {
    this.flush();
    const row = this.q("SELECT * FROM machines WHERE mac = ?").get(mac) as MachineRow | undefined;
    return row && fromRow(row);
  }

  list(): Machine[] {
    this.flush();
    return (this.q("SELECT * FROM machines ORDER BY mac").all() as MachineRow[]).map(fromRow);
  }

  /**
   * Creates or updates a machine. A new machine, or one whose profile
   * changes, is being (re-)provisioned: it gets a fresh config token and
   * boots its profile next.
   */
  upsert(m: { mac: Mac; profile: string; hostname: string | null; bootfile: string | null; source: MachineSource }): Machine {
    const now = this.now().toISOString();
    return this.db.transaction(() => {
      const existing = this.get(m.mac);
      if (!existing) {
        this.db
          .prepare(
            `INSERT INTO machines (mac, profile, hostname, bootfile, source, next, config_token, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, 'profile', ?, ?, ?)`,
          )
          .run(m.mac, m.profile, m.hostname, m.bootfile, m.source, newConfigToken(), now, now);
      } else {
        const reprovision = existing.profile !== m.profile;
        this.db
          .prepare(
            `UPDATE machines SET profile = ?, hostname = ?, bootfile = ?, source = ?, updated_at = ?,
               next = CASE WHEN ? THEN 'profile' ELSE next END,
               config_token = CASE WHEN ? THEN ? ELSE config_token END
             WHERE mac = ?`,
          )
          .run(m.profile, m.hostname, m.bootfile, m.source, now, reprovision ? 1 : 0, reprovision ? 1 : 0, newConfigToken(), m.mac);
      }
      return this.get(m.mac)!;
    })();
  }

  delete(mac: Mac): boolean {
    this.flush();
    return this.db.transaction(() => {
      this.q("DELETE FROM timeline WHERE mac = ?").run(mac);
      return this.q("DELETE FROM machines WHERE mac = ?").run(mac).changes > 0;
    })();
  }

  /**
   * Makes the config file's machine list the truth for `source: config`
   * rows: adds and updates them, deletes those the file no longer names.
   * Runtime state (next boot, token, timeline) of kept machines survives.
   */
  syncFromConfig(machines: Array<{ mac: Mac; profile: string; hostname?: string; bootfile?: string }>): { added: number; removed: number } {
    return this.db.transaction(() => {
      const wanted = new Set(machines.map((m) => m.mac));
      let removed = 0;
      for (const m of this.list()) {
        if (m.source === "config" && !wanted.has(m.mac)) {
          this.delete(m.mac);
          removed++;
        }
      }
      let added = 0;
      for (const m of machines) {
        if (!this.get(m.mac)) added++;
        this.upsert({ mac: m.mac, profile: m.profile, hostname: m.hostname ?? null, bootfile: m.bootfile ?? null, source: "config" });
      }
      return { added, removed };
    })();
  }

  /** Sets what the machine boots next. Back to `profile` is a re-provision: the config token rotates. */
  setNext(mac: Mac, next: NextBoot): Machine | undefined {
    this.flush();
    const rotate = next === "profile";
    this.db
      .prepare(
        `UPDATE machines SET next = ?, updated_at = ?, config_token = CASE WHEN ? THEN ? ELSE config_token END WHERE mac = ?`,
      )
      .run(next, this.now().toISOString(), rotate ? 1 : 0, newConfigToken(), mac);
    return this.get(mac);
  }

  /** Appends a timeline entry (and marks the machine seen), keeping the newest `timelineMax`. */
  /**
   * Appends a timeline entry (and marks the machine seen), keeping the newest
   * `timelineMax`. Entries are queued and written in one transaction per
   * event-loop turn, so the DHCP reply never waits for a commit; every read
   * of this store writes the queue first.
   */
  record(mac: Mac, step: TimelineStep, details: Record<string, unknown> = {}): void {
    this.pending.push({ mac, time: this.now().toISOString(), step, details: JSON.stringify(details) });
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Writes queued timeline entries now. */
  flush(): void {
    this.flushScheduled = false;
    if (this.pending.length === 0 || !this.db.open) return;
    const batch = this.pending;
    this.pending = [];
    this.db.transaction(() => {
      for (const e of batch) {
        const info = this.q("INSERT INTO timeline (mac, time, step, details) VALUES (?, ?, ?, ?)").run(e.mac, e.time, e.step, e.details);
        this.q("UPDATE machines SET last_seen = ? WHERE mac = ?").run(e.time, e.mac);
        this.q("DELETE FROM timeline WHERE mac = ? AND id <= ?").run(e.mac, Number(info.lastInsertRowid) - this.timelineMax);
      }
    })();
  }

  timeline(mac: Mac): TimelineEntry[] {
    this.flush();
    const rows = this.q("SELECT time, step, details FROM timeline WHERE mac = ? ORDER BY id").all(mac) as Array<{
      time: string;
      step: TimelineStep;
      details: string;
    }>;
    return rows.map((r) => ({ time: r.time, step: r.step, details: JSON.parse(r.details) as Record<string, unknown> }));
  }

  /** Whether the machine's timeline has a `step` entry (one indexed lookup, not the whole timeline). */
  hasStep(mac: Mac, step: TimelineStep): boolean {
    this.flush();
    return this.q("SELECT 1 FROM timeline WHERE mac = ? AND step = ? LIMIT 1").get(mac, step) !== undefined;
  }

  /** The architecture (DHCP option 93) of the machine's newest DHCP entry that recorded one. */
  lastArch(mac: Mac): number | undefined {
    this.flush();
    const row = this.q(
      "SELECT json_extract(details, '$.arch') AS arch FROM timeline WHERE mac = ? AND json_type(details, '$.arch') = 'integer' ORDER BY id DESC LIMIT 1",
    ).get(mac) as { arch: number } | undefined;
    return row?.arch;
  }

  recordUnknown(mac: Mac, facts: Record<string, unknown>): void {
    const now = this.now().toISOString();
    const info = this.db
      .prepare(
        `INSERT INTO unknown_machines (mac, first_seen, last_seen, count, last_facts) VALUES (?, ?, ?, 1, ?)
         ON CONFLICT (mac) DO UPDATE SET last_seen = excluded.last_seen, count = count + 1, last_facts = excluded.last_facts`,
      )
      .run(mac, now, now, JSON.stringify(facts));
    // A flood of random MACs must not grow the database without bound.
    if (info.changes > 0 && (this.q("SELECT count(*) AS n FROM unknown_machines").get() as { n: number }).n > MAX_UNKNOWN) {
      this.db
        .prepare("DELETE FROM unknown_machines WHERE mac IN (SELECT mac FROM unknown_machines ORDER BY last_seen DESC, mac LIMIT -1 OFFSET ?)")
        .run(MAX_UNKNOWN);
    }
  }

  listUnknown(): UnknownMachine[] {
    const rows = this.q("SELECT * FROM unknown_machines ORDER BY last_seen DESC").all() as Array<{
      mac: string;
      first_seen: string;
      last_seen: string;
      count: number;
      last_facts: string;
    }>;
    return rows.map((r) => ({
      mac: r.mac as Mac,
      firstSeen: r.first_seen,
      lastSeen: r.last_seen,
      count: r.count,
      lastFacts: JSON.parse(r.last_facts) as Record<string, unknown>,
    }));
  }

  /** A registered machine is no longer unknown. */
  forgetUnknown(mac: Mac): void {
    this.q("DELETE FROM unknown_machines WHERE mac = ?").run(mac);
  }
}

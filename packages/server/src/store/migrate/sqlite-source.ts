import { existsSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3, { type Database, type Statement } from 'better-sqlite3';
import type { AttemptRow, DeliveryRow, EventRow } from '../rows.js';

/**
 * The SQLite schema (store/sqlite/schema.ts) this reader knows. 9 and 11 added only columns of the nodes table, which
 * is not copied, and 12 changed only an index (the target's own schema has the same one).
 */
const KNOWN_SCHEMA = 12;

export interface SettingRow {
  name: string;
  value: string;
}

export interface ChannelRow {
  cid: number;
  name: string;
  epoch: string;
  head: number;
  trimmed: number;
}

/** An event row as SQLite stores it: the shared row shape plus its channel's number. */
export type SourceEventRow = EventRow & { cid: number };

export interface IdempotencyRow {
  key: string;
  ids: string;
  /** JSON `[[cid, seq], …]` of the key's events, in the source's channel numbers (every record has them since schema 8). */
  positions: string;
  created: number;
}

/** A delivery row as SQLite stores it (`final_attempt` is 0 or 1 there). */
export type SourceDeliveryRow = Omit<DeliveryRow, 'status' | 'final_attempt'> & { status: string; final_attempt: number };

/** An attempt row with its own row number, which the copy keeps. */
export type SourceAttemptRow = AttemptRow & { n: number };

/** Per channel, what the log holds: compared between source and target once the copy is done. */
export interface ChannelSummary {
  epoch: string;
  head: number;
  trimmed: number;
  events: number;
}

export interface Counts {
  settings: number;
  keys: number;
  sources: number;
  endpoints: number;
  channels: number;
  events: number;
  idempotency: number;
  deliveries: number;
  attempts: number;
  cursors: number;
}

/** Rows of one chunk: at most `rows` of them, and stops past `bytes` of text (the row that crosses it is included). */
export interface ChunkLimit {
  rows: number;
  bytes: number;
}

function take<R>(stmt: Statement<unknown[], R>, params: unknown[], limit: ChunkLimit, size: (row: R) => number): R[] {
  const out: R[] = [];
  let bytes = 0;
  // iterate() streams, so a chunk of large rows stops at the byte bound without loading the rest; breaking out closes the statement.
  for (const row of stmt.iterate(...params)) {
    out.push(row);
    bytes += size(row);
    if (out.length >= limit.rows || bytes >= limit.bytes) break;
  }
  return out;
}

const len = (s: string | null) => (s === null ? 0 : s.length);

/**
 * A SQLite data directory, opened read-only and read inside one transaction,
 * so the whole migration sees one consistent snapshot even if something
 * still wrote to the file. Rows come out in primary-key order, in chunks
 * that start after a position, which is what makes the copy resumable.
 */
export class SqliteSource {
  readonly file: string;
  private readonly db: Database;
  private readonly s: Record<
    'channels' | 'events' | 'idempotency' | 'deliveries' | 'attempts',
    Statement<unknown[], never>
  >;

  private constructor(dataDir: string) {
    this.file = join(dataDir, 'herald.db');
    if (!existsSync(this.file)) throw new SourceError(`no Herald database at ${this.file}`);
    this.db = new BetterSqlite3(this.file, { readonly: true, fileMustExist: true });
    try {
      this.db.pragma('busy_timeout = 5000');
      const version = this.db.pragma('user_version', { simple: true }) as number;
      if (version > KNOWN_SCHEMA) {
        throw new SourceError(`${this.file} was written by a newer Herald (schema ${version} > ${KNOWN_SCHEMA}); migrate with that version`);
      }
      if (version < KNOWN_SCHEMA) {
        throw new SourceError(
          `${this.file} has an older schema (${version}); start this version of Herald on it once (herald serve --data …) so it upgrades, stop it, then migrate`,
        );
      }
      this.s = {
        channels: this.db.prepare(
          `SELECT cid, name, epoch, trimmed, MAX(trimmed, COALESCE((SELECT MAX(seq) FROM events e WHERE e.cid = c.cid), 0)) AS head
           FROM channels c WHERE cid > ? ORDER BY cid`,
        ),
        events: this.db.prepare('SELECT cid, seq, id, type, time, data, meta FROM events WHERE (cid, seq) > (?, ?) ORDER BY cid, seq'),
        idempotency: this.db.prepare('SELECT key, ids, positions, created FROM idempotency WHERE key > ? ORDER BY key'),
        deliveries: this.db.prepare('SELECT * FROM deliveries WHERE n > ? ORDER BY n'),
        attempts: this.db.prepare(
          'SELECT rowid AS n, delivery, at, status_code, duration_ms, error, response_body FROM attempts WHERE rowid > ? ORDER BY rowid',
        ),
      };
      // One snapshot for the whole run: a deferred BEGIN takes it at the first read.
      this.db.exec('BEGIN');
    } catch (error) {
      this.db.close();
      throw error;
    }
  }

  static open(dataDir: string): SqliteSource {
    try {
      return new SqliteSource(dataDir);
    } catch (error) {
      if (error instanceof SourceError) throw error;
      throw new SourceError(`cannot read ${join(dataDir, 'herald.db')}: ${(error as Error).message}`);
    }
  }

  /** The store epoch: it names this deployment, so an interrupted migration can recognise its own source. */
  epoch(): string {
    const row = this.db.prepare("SELECT value FROM settings WHERE name = 'epoch'").get() as { value: string } | undefined;
    if (!row) throw new SourceError(`${this.file} has no store epoch: it was never opened by Herald`);
    return row.value;
  }

  /** Herald nodes that heartbeated since `since` (ms): a server still running on this directory. */
  liveNodes(since: number): string[] {
    return (this.db.prepare('SELECT id FROM nodes WHERE last_seen >= ?').all(since) as Array<{ id: string }>).map((r) => r.id);
  }

  settings(): SettingRow[] {
    return this.db.prepare('SELECT name, value FROM settings ORDER BY name').all() as SettingRow[];
  }

  keys(): Array<Record<string, unknown>> {
    return this.db.prepare('SELECT id, name, hash, prefix, scopes, channels, created, revoked FROM api_keys ORDER BY id').all() as Array<Record<string, unknown>>;
  }

  sources(): Array<Record<string, unknown>> {
    return this.db.prepare('SELECT name, provider, channel, tolerance, secrets, created FROM sources ORDER BY name').all() as Array<Record<string, unknown>>;
  }

  endpoints(): Array<{ id: string; record: string }> {
    return this.db.prepare('SELECT id, record FROM endpoints ORDER BY id').all() as Array<{ id: string; record: string }>;
  }

  cursors(): Array<{ channel: string; seq: number }> {
    return this.db.prepare('SELECT channel, seq FROM delivery_cursors ORDER BY channel').all() as Array<{ channel: string; seq: number }>;
  }

  channels(afterCid: number, limit: ChunkLimit): ChannelRow[] {
    return take(this.s.channels as Statement<unknown[], ChannelRow>, [afterCid], limit, (r) => r.name.length);
  }

  /** Every channel, cid → name. */
  channelNames(): Map<number, string> {
    const rows = this.db.prepare('SELECT cid, name FROM channels').all() as Array<{ cid: number; name: string }>;
    return new Map(rows.map((r) => [r.cid, r.name]));
  }

  events(after: [number, number], limit: ChunkLimit): SourceEventRow[] {
    return take(this.s.events as Statement<unknown[], SourceEventRow>, after, limit, (r) => r.data.length + len(r.meta) + r.id.length + r.type.length);
  }

  idempotency(afterKey: string, limit: ChunkLimit): IdempotencyRow[] {
    return take(this.s.idempotency as Statement<unknown[], IdempotencyRow>, [afterKey], limit, (r) => r.key.length + r.ids.length + r.positions.length);
  }

  deliveries(afterN: number, limit: ChunkLimit): SourceDeliveryRow[] {
    return take(this.s.deliveries as Statement<unknown[], SourceDeliveryRow>, [afterN], limit, (r) => len(r.payload) + len(r.last_error) + 100);
  }

  attempts(afterN: number, limit: ChunkLimit): SourceAttemptRow[] {
    return take(this.s.attempts as Statement<unknown[], SourceAttemptRow>, [afterN], limit, (r) => len(r.response_body) + len(r.error) + 50);
  }

  counts(): Counts {
    const count = (table: string) => (this.db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
    return {
      settings: count('settings'),
      keys: count('api_keys'),
      sources: count('sources'),
      endpoints: count('endpoints'),
      channels: count('channels'),
      events: count('events'),
      idempotency: count('idempotency'),
      deliveries: count('deliveries'),
      attempts: count('attempts'),
      cursors: count('delivery_cursors'),
    };
  }

  channelSummaries(): Map<string, ChannelSummary> {
    const rows = this.db
      .prepare(
        `SELECT c.name, c.epoch, c.trimmed, count(e.seq) AS events, MAX(c.trimmed, COALESCE(MAX(e.seq), 0)) AS head
         FROM channels c LEFT JOIN events e ON e.cid = c.cid GROUP BY c.cid`,
      )
      .all() as Array<ChannelSummary & { name: string }>;
    return new Map(rows.map(({ name, ...summary }) => [name, summary]));
  }

  close(): void {
    if (!this.db.open) return;
    if (this.db.inTransaction) this.db.exec('COMMIT');
    this.db.close();
  }
}

/** A problem with the source directory, reported as one line. */
export class SourceError extends Error {}

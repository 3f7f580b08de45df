import { Database, type Tx } from '../postgres/database.js';
import { migrate as migrateSchema } from '../postgres/schema.js';
import type {
  ChannelRow,
  ChannelSummary,
  Counts,
  IdempotencyRow,
  SettingRow,
  SourceAttemptRow,
  SourceDeliveryRow,
  SourceEventRow,
} from './sqlite-source.js';

/** The settings row that records a migration into this database: its source, and how far it got. */
export const MARKER = 'herald.migrate';

export type Phase =
  | 'settings'
  | 'keys'
  | 'sources'
  | 'endpoints'
  | 'channels'
  | 'events'
  | 'idempotency'
  | 'deliveries'
  | 'attempts'
  | 'cursors'
  | 'finish'
  | 'done';

export interface Marker {
  /** The source's store epoch. */
  source: string;
  /** The source directory, for messages. */
  from: string;
  startedAt: number;
  phase: Phase;
  /** Where the phase's chunks got to, in the source's key order (absent: from the start). */
  position?: unknown;
  finishedAt?: number;
}

/** Tables holding Herald data; settings (generated at any first start), leases and nodes do not make a database "used". */
const DATA_TABLES = ['channels', 'events', 'idempotency', 'api_keys', 'sources', 'endpoints', 'delivery_cursors', 'deliveries', 'attempts'];

const SQL = {
  putMarker: 'INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value',
  settings: `INSERT INTO settings (name, value) SELECT * FROM unnest($1::text[], $2::text[])
             ON CONFLICT (name) DO UPDATE SET value = excluded.value`,
  keys: `INSERT INTO api_keys (id, name, hash, prefix, scopes, channels, created, revoked)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::bigint[])
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, hash = excluded.hash, prefix = excluded.prefix, scopes = excluded.scopes,
           channels = excluded.channels, created = excluded.created, revoked = excluded.revoked`,
  sources: `INSERT INTO sources (name, provider, channel, tolerance, secrets, created)
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $6::bigint[])
            ON CONFLICT (name) DO UPDATE SET provider = excluded.provider, channel = excluded.channel, tolerance = excluded.tolerance,
              secrets = excluded.secrets, created = excluded.created`,
  // The tenant column is read from the record, which holds it in every schema version.
  endpoints: `INSERT INTO endpoints (id, record, tenant) SELECT id, record, record::json->>'tenant' FROM unnest($1::text[], $2::text[]) AS e(id, record)
              ON CONFLICT (id) DO UPDATE SET record = excluded.record, tenant = excluded.tenant`,
  // The head is set with the channel, before its events: a node started too early could only append after it, never reuse a seq.
  channels: `INSERT INTO channels (name, epoch, head, trimmed)
             SELECT name, epoch, head, trimmed
             FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[]) WITH ORDINALITY AS x(name, epoch, head, trimmed, i) ORDER BY i
             ON CONFLICT (name) DO UPDATE SET epoch = excluded.epoch, head = excluded.head, trimmed = excluded.trimmed`,
  events: `INSERT INTO events (cid, seq, id, type, time, data, meta)
           SELECT * FROM unnest($1::int[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[])
           ON CONFLICT DO NOTHING`,
  // A key's replays find its events by position (postgres/schema.ts, 4): the source's own positions, its channel
  // numbers mapped to the target's. Found again by id, they could name another event: one whose chosen id was
  // published again after retention removed the key's own, which the key then replayed in place of its 409.
  idempotency: `INSERT INTO idempotency (key, ids, positions, created)
                SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])
                ON CONFLICT DO NOTHING`,
  // Delivery numbers are kept: they are the public ids (dlv_N) in the delivery log and its attempts.
  deliveries: `INSERT INTO deliveries (n, endpoint_id, event_id, channel, seq, payload, status, attempts, next_attempt_at, final_attempt,
                 last_status_code, last_error, created)
               SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::int[],
                 $9::bigint[], $10::boolean[], $11::int[], $12::text[], $13::bigint[])
               ON CONFLICT DO NOTHING`,
  attempts: `INSERT INTO attempts (n, delivery, at, status_code, duration_ms, error, response_body)
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::int[], $5::float8[], $6::text[], $7::text[])
             ON CONFLICT DO NOTHING`,
  cursors: `INSERT INTO delivery_cursors (channel, seq) SELECT * FROM unnest($1::text[], $2::bigint[])
            ON CONFLICT (channel) DO UPDATE SET seq = excluded.seq`,
  // Rows were inserted with their numbers: move the sequences past them, so new rows do not collide.
  sequences: `SELECT setval(pg_get_serial_sequence('deliveries', 'n'), COALESCE((SELECT max(n) FROM deliveries), 1), (SELECT count(*) > 0 FROM deliveries)),
                     setval(pg_get_serial_sequence('attempts', 'n'), COALESCE((SELECT max(n) FROM attempts), 1), (SELECT count(*) > 0 FROM attempts))`,
};

/**
 * Bulk writes into the PostgreSQL schema of store/postgres/schema.ts, below
 * the store interfaces (which would give events fresh seqs). Every chunk is
 * one transaction that also moves the progress marker, so after a crash the
 * marker says exactly which rows are in; the inserts skip conflicts too, so
 * writing a chunk twice could not duplicate anything either.
 */
export class PostgresTarget {
  private readonly db: Database;

  private constructor(readonly url: string) {
    this.db = new Database({ url, poolSize: 2, queryTimeoutMs: 300_000 });
  }

  /** Connects and brings the schema up to date (safe while nodes start at the same time). */
  static async open(url: string): Promise<PostgresTarget> {
    const target = new PostgresTarget(url);
    try {
      await migrateSchema(target.db.pool);
    } catch (error) {
      await target.close();
      throw error;
    }
    return target;
  }

  async marker(): Promise<Marker | undefined> {
    const [row] = await this.db.rows<{ value: string }>('SELECT value FROM settings WHERE name = $1', [MARKER]);
    if (!row) return undefined;
    try {
      return JSON.parse(row.value) as Marker;
    } catch {
      return undefined;
    }
  }

  async setMarker(marker: Marker): Promise<void> {
    await this.db.query(SQL.putMarker, [MARKER, JSON.stringify(marker)]);
  }

  /** Row counts of the data tables that hold anything. */
  async usage(): Promise<Record<string, number>> {
    const [row] = await this.db.rows<Record<string, number>>(
      `SELECT ${DATA_TABLES.map((t) => `(SELECT count(*) FROM (SELECT 1 FROM ${t} LIMIT 1000001) x) AS ${t}`).join(', ')}`,
    );
    return Object.fromEntries(Object.entries(row ?? {}).filter(([, n]) => n > 0));
  }

  async liveNodes(since: number): Promise<string[]> {
    return (await this.db.rows<{ id: string }>('SELECT id FROM nodes WHERE last_seen >= $1 ORDER BY id', [since])).map((r) => r.id);
  }

  /** Empties every Herald table except the schema's own bookkeeping, leases and nodes (`--force`). */
  async erase(): Promise<void> {
    await this.db.query(`TRUNCATE ${[...DATA_TABLES, 'settings'].join(', ')} RESTART IDENTITY`);
  }

  /** Runs one chunk's writes and moves the marker, in one transaction; resolves with the rows written. */
  private chunk(marker: Marker, write: (tx: Tx) => Promise<number>): Promise<number> {
    return this.db.transaction(async (tx) => {
      const n = await write(tx);
      await tx.query(SQL.putMarker, [MARKER, JSON.stringify(marker)]);
      return n;
    });
  }

  private static async run(tx: Tx, sql: string, params: unknown[]): Promise<number> {
    return (await tx.query(sql, params)).rowCount ?? 0;
  }

  /**
   * Makes the settings those of the source: its admin key hash, token secret and store epoch replace whatever a
   * node started on the empty target generated, and settings the source lacks go (a generated admin key, say).
   */
  writeSettings(rows: SettingRow[], marker: Marker): Promise<number> {
    const names = rows.map((r) => r.name);
    return this.chunk(marker, async (tx) => {
      await tx.query('DELETE FROM settings WHERE name <> $1 AND NOT (name = ANY($2::text[]))', [MARKER, names]);
      return PostgresTarget.run(tx, SQL.settings, [names, rows.map((r) => r.value)]);
    });
  }

  writeKeys(rows: Array<Record<string, unknown>>, marker: Marker): Promise<number> {
    const col = (name: string) => rows.map((r) => r[name] ?? null);
    return this.chunk(marker, (tx) =>
      PostgresTarget.run(tx, SQL.keys, ['id', 'name', 'hash', 'prefix', 'scopes', 'channels', 'created', 'revoked'].map(col)),
    );
  }

  writeSources(rows: Array<Record<string, unknown>>, marker: Marker): Promise<number> {
    const col = (name: string) => rows.map((r) => r[name] ?? null);
    return this.chunk(marker, (tx) => PostgresTarget.run(tx, SQL.sources, ['name', 'provider', 'channel', 'tolerance', 'secrets', 'created'].map(col)));
  }

  writeEndpoints(rows: Array<{ id: string; record: string }>, marker: Marker): Promise<number> {
    return this.chunk(marker, (tx) => PostgresTarget.run(tx, SQL.endpoints, [rows.map((r) => r.id), rows.map((r) => r.record)]));
  }

  writeChannels(rows: ChannelRow[], marker: Marker): Promise<number> {
    return this.chunk(marker, (tx) =>
      PostgresTarget.run(tx, SQL.channels, [rows.map((r) => r.name), rows.map((r) => r.epoch), rows.map((r) => r.head), rows.map((r) => r.trimmed)]),
    );
  }

  /** Target cid by channel name. */
  async channelIds(): Promise<Map<string, number>> {
    const rows = await this.db.rows<{ cid: number; name: string }>('SELECT cid, name FROM channels');
    return new Map(rows.map((r) => [r.name, r.cid]));
  }

  /** Events with their seqs as they are; `cid` maps a source cid to the target's. */
  writeEvents(rows: SourceEventRow[], cid: (sourceCid: number) => number, marker: Marker): Promise<number> {
    return this.chunk(marker, (tx) =>
      PostgresTarget.run(tx, SQL.events, [
        rows.map((r) => cid(r.cid)),
        rows.map((r) => r.seq),
        rows.map((r) => r.id),
        rows.map((r) => r.type),
        rows.map((r) => r.time),
        rows.map((r) => r.data),
        rows.map((r) => r.meta),
      ]),
    );
  }

  /** Keys with their events' positions as the source recorded them; `cid` maps a source cid to the target's. */
  writeIdempotency(rows: IdempotencyRow[], cid: (sourceCid: number) => number, marker: Marker): Promise<number> {
    const positions = rows.map((r) => JSON.stringify((JSON.parse(r.positions) as Array<[number, number]>).map(([c, seq]) => [cid(c), seq])));
    return this.chunk(marker, (tx) =>
      PostgresTarget.run(tx, SQL.idempotency, [rows.map((r) => r.key), rows.map((r) => r.ids), positions, rows.map((r) => r.created)]),
    );
  }

  writeDeliveries(rows: SourceDeliveryRow[], marker: Marker): Promise<number> {
    return this.chunk(marker, (tx) =>
      PostgresTarget.run(tx, SQL.deliveries, [
        rows.map((r) => r.n),
        rows.map((r) => r.endpoint_id),
        rows.map((r) => r.event_id),
        rows.map((r) => r.channel),
        rows.map((r) => r.seq),
        rows.map((r) => r.payload),
        rows.map((r) => r.status),
        rows.map((r) => r.attempts),
        rows.map((r) => r.next_attempt_at),
        rows.map((r) => r.final_attempt === 1),
        rows.map((r) => r.last_status_code),
        rows.map((r) => r.last_error),
        rows.map((r) => r.created),
      ]),
    );
  }

  writeAttempts(rows: SourceAttemptRow[], marker: Marker): Promise<number> {
    return this.chunk(marker, (tx) =>
      PostgresTarget.run(tx, SQL.attempts, [
        rows.map((r) => r.n),
        rows.map((r) => r.delivery),
        rows.map((r) => r.at),
        rows.map((r) => r.status_code),
        rows.map((r) => r.duration_ms),
        rows.map((r) => r.error),
        rows.map((r) => r.response_body),
      ]),
    );
  }

  writeCursors(rows: Array<{ channel: string; seq: number }>, marker: Marker): Promise<number> {
    return this.chunk(marker, (tx) => PostgresTarget.run(tx, SQL.cursors, [rows.map((r) => r.channel), rows.map((r) => r.seq)]));
  }

  /** Moves the id sequences past the copied rows, with the marker's next phase. */
  finishSequences(marker: Marker): Promise<number> {
    return this.chunk(marker, async (tx) => {
      await tx.query(SQL.sequences);
      return 0;
    });
  }

  async counts(): Promise<Counts> {
    const [row] = await this.db.rows<Counts>(
      `SELECT (SELECT count(*) FROM settings WHERE name <> $1) AS settings, (SELECT count(*) FROM api_keys) AS keys,
              (SELECT count(*) FROM sources) AS sources, (SELECT count(*) FROM endpoints) AS endpoints,
              (SELECT count(*) FROM channels) AS channels, (SELECT count(*) FROM events) AS events,
              (SELECT count(*) FROM idempotency) AS idempotency, (SELECT count(*) FROM deliveries) AS deliveries,
              (SELECT count(*) FROM attempts) AS attempts, (SELECT count(*) FROM delivery_cursors) AS cursors`,
      [MARKER],
    );
    return row!;
  }

  async channelSummaries(): Promise<Map<string, ChannelSummary>> {
    const rows = await this.db.rows<ChannelSummary & { name: string }>(
      `SELECT c.name, c.epoch, c.head, c.trimmed, count(e.seq) AS events
       FROM channels c LEFT JOIN events e ON e.cid = c.cid GROUP BY c.cid`,
    );
    return new Map(rows.map(({ name, ...summary }) => [name, summary]));
  }

  close(): Promise<void> {
    return this.db.end();
  }
}

import type { Database } from 'better-sqlite3';
import type { SchemaUpgrade } from '../types.js';

/**
 * Channel names live once in `channels`; events refer to them by a small
 * integer so the hot table and its primary key stay compact. A channel's
 * head is not stored: it is MAX(seq), or `trimmed` once every event is gone.
 * Tests build a database as an older version left it with `migrate(db, version)`.
 */
const MIGRATIONS: Record<number, string> = {
  1: `
    CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE channels (
      cid INTEGER PRIMARY KEY,
      name TEXT NOT NULL UNIQUE,
      epoch TEXT NOT NULL,
      trimmed INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE events (
      cid INTEGER NOT NULL,
      seq INTEGER NOT NULL,
      id TEXT NOT NULL,
      type TEXT NOT NULL,
      time INTEGER NOT NULL,
      data TEXT NOT NULL,
      meta TEXT,
      PRIMARY KEY (cid, seq)
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX events_by_id ON events (id);
    CREATE TABLE idempotency (key TEXT PRIMARY KEY, ids TEXT NOT NULL, created INTEGER NOT NULL) WITHOUT ROWID;
    CREATE INDEX idempotency_by_created ON idempotency (created);
    CREATE TABLE api_keys (
      id TEXT PRIMARY KEY,
      name TEXT NOT NULL,
      hash TEXT NOT NULL UNIQUE,
      prefix TEXT NOT NULL,
      scopes TEXT NOT NULL,
      channels TEXT NOT NULL,
      created INTEGER NOT NULL,
      revoked INTEGER
    ) WITHOUT ROWID;
  `,
  2: `
    CREATE TABLE sources (
      name TEXT PRIMARY KEY,
      provider TEXT NOT NULL,
      channel TEXT NOT NULL,
      tolerance INTEGER NOT NULL,
      secrets TEXT NOT NULL,
      created INTEGER NOT NULL
    ) WITHOUT ROWID;
  `,
  // Deliveries are keyed by an integer so inserts append to the table and its indexes instead of scattering.
  3: `
    CREATE TABLE endpoints (id TEXT PRIMARY KEY, record TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE delivery_cursors (channel TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
    CREATE TABLE deliveries (
      n INTEGER PRIMARY KEY,
      endpoint_id TEXT NOT NULL,
      event_id TEXT NOT NULL,
      channel TEXT NOT NULL,
      seq INTEGER NOT NULL,
      payload TEXT,
      status TEXT NOT NULL,
      attempts INTEGER NOT NULL DEFAULT 0,
      next_attempt_at INTEGER NOT NULL,
      final_attempt INTEGER NOT NULL DEFAULT 0,
      last_status_code INTEGER,
      last_error TEXT,
      created INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX deliveries_once ON deliveries (endpoint_id, event_id);
    CREATE INDEX deliveries_due ON deliveries (endpoint_id, status, next_attempt_at);
    CREATE TABLE attempts (
      delivery INTEGER NOT NULL,
      at INTEGER NOT NULL,
      status_code INTEGER,
      duration_ms REAL NOT NULL,
      error TEXT,
      response_body TEXT
    );
    CREATE INDEX attempts_by_delivery ON attempts (delivery, at);
  `,
  // Cluster coordination (see ClusterStore): a single SQLite node still keeps real leases, so the code using them runs the same.
  4: `
    CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at INTEGER NOT NULL) WITHOUT ROWID;
    CREATE TABLE nodes (
      id TEXT PRIMARY KEY,
      started_at INTEGER NOT NULL,
      last_seen INTEGER NOT NULL,
      connections TEXT NOT NULL,
      version TEXT NOT NULL
    ) WITHOUT ROWID;
  `,
  // The endpoint portal lists one tenant's endpoints; the record keeps it too, this column is for lookups and copies.
  5: `
    ALTER TABLE endpoints ADD COLUMN tenant TEXT;
    UPDATE endpoints SET tenant = json_extract(record, '$.tenant');
    CREATE INDEX endpoints_by_tenant ON endpoints (tenant) WHERE tenant IS NOT NULL;
  `,
  // Endpoints with ordering "channel" send each channel's first pending delivery only (store/channel-heads.ts).
  // Only pending rows are indexed, so the index stays as small as the backlog.
  6: `
    CREATE INDEX deliveries_pending_by_channel ON deliveries (endpoint_id, channel, seq) WHERE status = 'pending';
  `,
  // Events move from a table clustered on (cid, seq) to a rowid table that only grows at its end, with (cid, seq) as
  // an index. Clustered, a commit of events spread over many channels (one per user, say) wrote a page of whole rows
  // per channel it touched: appending round robins over 10,000 channels cost 6× the CPU per event of one channel here,
  // and 4.4× what they cost as a rowid table.
  // The index's entries are a few bytes, so a commit writes far fewer bytes of it than it wrote of whole rows (still
  // a page per channel once each channel's entries fill pages: 1.3× one channel's cost in bench:publish's spread line).
  // Copied in (cid, seq) order, so a channel's older events stay together; newer ones lie in the order they were written.
  7: `
    CREATE TABLE events_v7 (
      cid INTEGER NOT NULL,
      seq INTEGER NOT NULL,
      id TEXT NOT NULL,
      type TEXT NOT NULL,
      time INTEGER NOT NULL,
      data TEXT NOT NULL,
      meta TEXT
    );
    INSERT INTO events_v7 (cid, seq, id, type, time, data, meta) SELECT cid, seq, id, type, time, data, meta FROM events ORDER BY cid, seq;
    DROP TABLE events;
    ALTER TABLE events_v7 RENAME TO events;
    CREATE UNIQUE INDEX events_by_channel ON events (cid, seq);
    CREATE UNIQUE INDEX events_by_id ON events (id);
  `,
  // Only ids a publisher chose are indexed. A generated id is unique by construction (no publisher may choose one of
  // its form), so indexing it only cost every append a third B-tree insert: 0.45 to 0.5 µs of SQLite's 2.7 µs per
  // event measured alone (bench/sqlite-floor.ts). The predicate tests a column, `chosen` (0 only for a generated
  // id), not the id's form: SQLite evaluates it on every insert, and a GLOB costs nearly what the index saves.
  // Rows from before keep the column's default, 1, so their ids stay indexed until retention removes them: the
  // migration rewrites no row, and an INSERT that leaves the column out is indexed, never silently left out.
  // An idempotent request finds its events again by position, which the (cid, seq) index answers; `ids` stays
  // for `herald migrate`, which copies it.
  8: `
    ALTER TABLE events ADD COLUMN chosen INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE idempotency ADD COLUMN positions TEXT;
    UPDATE idempotency SET positions = (
      SELECT json_group_array(json_array(e.cid, e.seq) ORDER BY j.key)
      FROM json_each(idempotency.ids) AS j JOIN events AS e ON e.id = j.value
    );
    DROP INDEX events_by_id;
    CREATE UNIQUE INDEX events_by_chosen_id ON events (id) WHERE chosen = 1;
  `,
  // Each node's bus link as its heartbeat last saw it (NodeRecord.bus). Only a cluster's nodes ever read it; rows from
  // before say 'up', as the nodes that wrote them assumed.
  9: `
    ALTER TABLE nodes ADD COLUMN bus TEXT NOT NULL DEFAULT 'up';
  `,
  // Delivery ids are never given twice. An INTEGER PRIMARY KEY without AUTOINCREMENT takes the highest id plus one,
  // so deleting an endpoint whose deliveries were the newest gave their ids again, and the next endpoint's delivery
  // showed the deleted one's attempts: a portal tenant read another endpoint's receiver answers. AUTOINCREMENT starts
  // past the highest id the data still shows (deliveries, and attempts left by deleted ones), and attempts that are
  // not their delivery's (none of it left, or made before it: an id given again) go.
  10: `
    CREATE TABLE deliveries_v10 (
      n INTEGER PRIMARY KEY AUTOINCREMENT,
      endpoint_id TEXT NOT NULL,
      event_id TEXT NOT NULL,
      channel TEXT NOT NULL,
      seq INTEGER NOT NULL,
      payload TEXT,
      status TEXT NOT NULL,
      attempts INTEGER NOT NULL DEFAULT 0,
      next_attempt_at INTEGER NOT NULL,
      final_attempt INTEGER NOT NULL DEFAULT 0,
      last_status_code INTEGER,
      last_error TEXT,
      created INTEGER NOT NULL
    );
    INSERT INTO deliveries_v10 (n, endpoint_id, event_id, channel, seq, payload, status, attempts, next_attempt_at, final_attempt, last_status_code, last_error, created)
      SELECT n, endpoint_id, event_id, channel, seq, payload, status, attempts, next_attempt_at, final_attempt, last_status_code, last_error, created FROM deliveries;
    DROP TABLE deliveries;
    ALTER TABLE deliveries_v10 RENAME TO deliveries;
    DELETE FROM sqlite_sequence WHERE name = 'deliveries';
    INSERT INTO sqlite_sequence (name, seq)
      SELECT 'deliveries', max(coalesce((SELECT max(n) FROM deliveries), 0), coalesce((SELECT max(delivery) FROM attempts), 0));
    DELETE FROM attempts WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.n = attempts.delivery AND d.created <= attempts.at);
    CREATE UNIQUE INDEX deliveries_once ON deliveries (endpoint_id, event_id);
    CREATE INDEX deliveries_due ON deliveries (endpoint_id, status, next_attempt_at);
    CREATE INDEX deliveries_pending_by_channel ON deliveries (endpoint_id, channel, seq) WHERE status = 'pending';
  `,
  // Where each node's admin key comes from (NodeRecord.adminKey), so \`herald admin-key reset\` can name a server that
  // keeps a configured one. Rows from before say 'store'.
  11: `
    ALTER TABLE nodes ADD COLUMN admin_key TEXT NOT NULL DEFAULT 'store';
  `,
  // A delivery is one event's, and an event is its id at its place in the log: an id a publisher chose can be chosen
  // again once retention has removed its event, and that new event was logged, answered 201 and sent on every
  // transport, but never delivered to an endpoint that had the first (the insert met the old delivery and did nothing).
  12: `
    DROP INDEX deliveries_once;
    CREATE UNIQUE INDEX deliveries_once ON deliveries (endpoint_id, event_id, channel, seq);
  `,
};

/** The last migration's number: a migration added is the schema. */
export const SCHEMA_VERSION = Math.max(...Object.keys(MIGRATIONS).map(Number));

/** Brings the database to the current schema; `target` stops at an older one (tests build what an older Herald left). */
export function migrate(db: Database, target = SCHEMA_VERSION): SchemaUpgrade | undefined {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > SCHEMA_VERSION) {
    throw new Error(`The data directory was written by a newer Herald (schema ${current} > ${SCHEMA_VERSION}).`);
  }
  for (let v = current + 1; v <= target; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v}`);
    })();
  }
  return current < target ? { from: current, to: target } : undefined;
}

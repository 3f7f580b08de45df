import type pg from 'pg';
import { checkOut, withRetries } from './database.js';
import type { SchemaUpgrade } from '../types.js';

/**
 * Same tables and columns as the SQLite schema, so rows map to records with
 * the same code (store/rows.ts). The differences are for several writers:
 * a channel's head is a column, moved under the channel row's lock, instead
 * of MAX(seq) known to the only writer; and names and ids sort bytewise
 * (COLLATE "C"), as in SQLite, whatever the database's locale.
 */
const MIGRATIONS: Record<number, string> = {
  1: `
    CREATE TABLE settings (name text COLLATE "C" PRIMARY KEY, value text NOT NULL);
    CREATE TABLE channels (
      cid serial PRIMARY KEY,
      name text COLLATE "C" NOT NULL UNIQUE,
      epoch text NOT NULL,
      head bigint NOT NULL DEFAULT 0,
      trimmed bigint NOT NULL DEFAULT 0
    );
    CREATE TABLE events (
      cid integer NOT NULL,
      seq bigint NOT NULL,
      id text COLLATE "C" NOT NULL,
      type text NOT NULL,
      time bigint NOT NULL,
      data text NOT NULL,
      meta text,
      PRIMARY KEY (cid, seq)
    );
    CREATE UNIQUE INDEX events_by_id ON events (id);
    CREATE TABLE idempotency (key text COLLATE "C" PRIMARY KEY, ids text NOT NULL, created bigint NOT NULL);
    CREATE INDEX idempotency_by_created ON idempotency (created);
    CREATE TABLE api_keys (
      id text COLLATE "C" PRIMARY KEY,
      name text NOT NULL,
      hash text NOT NULL UNIQUE,
      prefix text NOT NULL,
      scopes text NOT NULL,
      channels text NOT NULL,
      created bigint NOT NULL,
      revoked bigint
    );
    CREATE TABLE sources (
      name text COLLATE "C" PRIMARY KEY,
      provider text NOT NULL,
      channel text NOT NULL,
      tolerance integer NOT NULL,
      secrets text NOT NULL,
      created bigint NOT NULL
    );
    CREATE TABLE endpoints (id text COLLATE "C" PRIMARY KEY, record text NOT NULL);
    CREATE TABLE delivery_cursors (channel text COLLATE "C" PRIMARY KEY, seq bigint NOT NULL);
    CREATE TABLE deliveries (
      n bigserial PRIMARY KEY,
      endpoint_id text COLLATE "C" NOT NULL,
      event_id text NOT NULL,
      channel text NOT NULL,
      seq bigint NOT NULL,
      payload text,
      status text NOT NULL,
      attempts integer NOT NULL DEFAULT 0,
      next_attempt_at bigint NOT NULL,
      final_attempt boolean NOT NULL DEFAULT false,
      last_status_code integer,
      last_error text,
      created bigint NOT NULL
    );
    CREATE UNIQUE INDEX deliveries_once ON deliveries (endpoint_id, event_id);
    CREATE INDEX deliveries_due ON deliveries (endpoint_id, status, next_attempt_at, n);
    CREATE TABLE attempts (
      n bigserial PRIMARY KEY,
      delivery bigint NOT NULL,
      at bigint NOT NULL,
      status_code integer,
      duration_ms double precision NOT NULL,
      error text,
      response_body text
    );
    CREATE INDEX attempts_by_delivery ON attempts (delivery, at, n);
    CREATE TABLE leases (name text COLLATE "C" PRIMARY KEY, holder text NOT NULL, expires_at bigint NOT NULL);
    CREATE TABLE nodes (
      id text COLLATE "C" PRIMARY KEY,
      started_at bigint NOT NULL,
      last_seen bigint NOT NULL,
      connections text NOT NULL,
      version text NOT NULL
    );
  `,
  // The endpoint portal lists one tenant's endpoints; the record keeps it too, this column is for the lookup.
  2: `
    ALTER TABLE endpoints ADD COLUMN tenant text COLLATE "C";
    UPDATE endpoints SET tenant = record::json->>'tenant';
    CREATE INDEX endpoints_by_tenant ON endpoints (tenant) WHERE tenant IS NOT NULL;
  `,
  // Endpoints with ordering "channel" send each channel's first pending delivery only (store/channel-heads.ts).
  // Only pending rows are indexed, so the index stays as small as the backlog.
  3: `
    CREATE INDEX deliveries_pending_by_channel ON deliveries (endpoint_id, channel, seq) WHERE status = 'pending';
  `,
  // Only ids a publisher chose are indexed, as in SQLite's schema 8: a generated id is unique by construction (no
  // publisher may choose one of its form), so indexing it only cost every append a second B-tree insert (measured
  // with bench:cluster: without it, 11% more batched publishes a second). Rows from before keep the column's
  // default, true, so they stay indexed until retention removes them. An idempotent request finds its events again
  // by position, which the primary key answers; the positions of keys from before are filled here, through the old
  // index, before it goes. \`ids\` stays: a key claimed by a node still running an older version has no positions,
  // and is found by its ids.
  4: `
    ALTER TABLE events ADD COLUMN chosen boolean NOT NULL DEFAULT true;
    ALTER TABLE idempotency ADD COLUMN positions text;
    UPDATE idempotency SET positions = (
      SELECT COALESCE(json_agg(json_build_array(e.cid, e.seq) ORDER BY j.i), '[]'::json)::text
      FROM json_array_elements_text(idempotency.ids::json) WITH ORDINALITY AS j(id, i) JOIN events e ON e.id = j.id
    );
    DROP INDEX events_by_id;
    CREATE UNIQUE INDEX events_by_chosen_id ON events (id) WHERE chosen;
  `,
  // Each node's bus link as its heartbeat last saw it (NodeRecord.bus), so the others poll the log while one cannot
  // announce. A node of an older version leaves it at the default, 'up', as it assumed.
  5: `
    ALTER TABLE nodes ADD COLUMN bus text NOT NULL DEFAULT 'up';
  `,
  // Where each node's admin key comes from (NodeRecord.adminKey), so \`herald admin-key reset\` can name the nodes that
  // keep a configured one. A node of an older version leaves it at the default, 'store'.
  6: `
    ALTER TABLE nodes ADD COLUMN admin_key text NOT NULL DEFAULT 'store';
  `,
  // A delivery is one event's, and an event is its id at its place in the log: an id a publisher chose can be chosen
  // again once retention has removed its event, and that new event was logged, answered 201 and sent on every
  // transport, but never delivered to an endpoint that had the first (the insert met the old delivery and did nothing).
  // A node of an older version names the old index in its inserts, which then fail: stop those nodes first.
  7: `
    DROP INDEX deliveries_once;
    CREATE UNIQUE INDEX deliveries_once ON deliveries (endpoint_id, event_id, channel, seq);
  `,
};
export const SCHEMA_VERSION = Math.max(...Object.keys(MIGRATIONS).map(Number));

/** For tests: the database as a Herald of schema `version` left it, by that version's migrations alone. */
export async function buildSchema(client: Pick<pg.ClientBase, 'query'>, version: number): Promise<void> {
  await client.query('CREATE TABLE schema_versions (version integer PRIMARY KEY, applied bigint NOT NULL)');
  for (let v = 1; v <= version; v++) {
    await client.query(MIGRATIONS[v]!);
    await client.query('INSERT INTO schema_versions (version, applied) VALUES ($1, 0)', [v]);
  }
}

/** Any constant will do, as long as every Herald node uses the same one. */
const MIGRATION_LOCK = 0x4865_7261_6c64; // "Herald"

/**
 * Brings the schema up to date. Nodes that start together queue on a
 * session advisory lock, so one migrates and the others then find nothing
 * left to do; each version commits with its row in `schema_versions`.
 */
export async function migrate(pool: pg.Pool): Promise<SchemaUpgrade | undefined> {
  const client = await checkOut(pool);
  let broken: Error | undefined;
  let upgrade: SchemaUpgrade | undefined;
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    try {
      await client.query('CREATE TABLE IF NOT EXISTS schema_versions (version integer PRIMARY KEY, applied bigint NOT NULL)');
      const { rows } = await client.query<{ current: number | null }>('SELECT max(version) AS current FROM schema_versions');
      const current = rows[0]?.current ?? 0;
      if (current > SCHEMA_VERSION) {
        throw new Error(`The database was written by a newer Herald (schema ${current} > ${SCHEMA_VERSION}).`);
      }
      if (current < SCHEMA_VERSION) upgrade = { from: current, to: SCHEMA_VERSION };
      for (let v = current + 1; v <= SCHEMA_VERSION; v++) {
        // A migration that alters two tables can deadlock with a transaction still writing both (a node not yet
        // stopped): the server aborts one of the two, and when that is the migration, it runs again.
        await withRetries(async () => {
          await client.query('BEGIN');
          try {
            await client.query(MIGRATIONS[v]!);
            await client.query('INSERT INTO schema_versions (version, applied) VALUES ($1, $2)', [v, Date.now()]);
            await client.query('COMMIT');
          } catch (error) {
            await client.query('ROLLBACK');
            throw error;
          }
        });
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
    }
  } catch (error) {
    broken = error as Error;
    throw error;
  } finally {
    // A connection that failed mid-migration is closed, which also frees the advisory lock.
    client.release(broken);
  }
  return upgrade;
}

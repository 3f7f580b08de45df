import type { DeliveryStatus } from '@herald/protocol';
import type { AttemptOutcome, AttemptRecord, DeliveryRecord, DeliveryStore, DueCursor, EndpointRecord, NewDelivery } from '../types.js';
import { attemptFromRow, deliveryFromRow, deliveryRowOf, type AttemptRow, type DeliveryRow } from '../rows.js';
import type { Database } from './database.js';
import { channelHeadsQuery } from '../channel-heads.js';
import { AttemptBatch } from './attempt-batch.js';

/** The first key of tenants' advisory locks ("HEP1"); the second is the tenant's hash. */
const TENANT_LOCK_SPACE = 0x4845_5031;

const SQL = {
  putEndpoint: `INSERT INTO endpoints (id, record, tenant) VALUES ($1, $2, $3)
                ON CONFLICT (id) DO UPDATE SET record = excluded.record, tenant = excluded.tenant`,
  getEndpoint: 'SELECT record FROM endpoints WHERE id = $1',
  allEndpoints: 'SELECT record FROM endpoints ORDER BY id',
  tenantEndpoints: 'SELECT record FROM endpoints WHERE tenant = $1 ORDER BY id',
  lockTenant: 'SELECT pg_advisory_xact_lock($1, hashtext($2))',
  countTenant: 'SELECT count(*)::int AS n FROM endpoints WHERE tenant = $1',
  // Deleting an endpoint, in one transaction: its deliveries (their numbers kept in a table of the transaction's own),
  // their attempts, the endpoint, then once more the deliveries and attempts written meanwhile.
  deletedDeliveries: 'CREATE TEMP TABLE deleted_deliveries (n bigint) ON COMMIT DROP',
  forgetDeletedDeliveries: 'TRUNCATE deleted_deliveries',
  deleteEndpointDeliveries: `WITH gone AS (DELETE FROM deliveries WHERE endpoint_id = $1 RETURNING n)
                             INSERT INTO deleted_deliveries SELECT n FROM gone`,
  deleteEndpointAttempts: 'DELETE FROM attempts WHERE delivery IN (SELECT n FROM deleted_deliveries)',
  deleteEndpoint: 'DELETE FROM endpoints WHERE id = $1 RETURNING id',
  cursors: 'SELECT channel, seq FROM delivery_cursors',
  cursor: 'SELECT seq FROM delivery_cursors WHERE channel = $1',
  cursorsOf: 'SELECT channel, seq FROM delivery_cursors WHERE channel = ANY($1::text[])',
  // One statement, so the deliveries and the cursor move together or not at all. Only for endpoints that exist, each
  // row held with FOR KEY SHARE (which an update of the record does not wait for, and a delete does): a delete under
  // way makes this wait for its commit and then skip the endpoint, and one that starts after waits for this to commit,
  // then finds these deliveries (see deleteEndpoint). Without the lock, a delivery written while its endpoint's delete
  // was still uncommitted would stay behind, owed to no endpoint.
  createDeliveries: `WITH created AS (
                       INSERT INTO deliveries (endpoint_id, event_id, channel, seq, payload, status, next_attempt_at, created)
                       SELECT d.endpoint_id, d.event_id, d.channel, d.seq, d.payload, 'pending', d.created, d.created
                       FROM unnest($3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::bigint[]) WITH ORDINALITY
                         AS d(endpoint_id, event_id, channel, seq, payload, created, i)
                       JOIN endpoints e ON e.id = d.endpoint_id
                       ORDER BY d.i -- numbered in the order given, as they were before the join
                       FOR KEY SHARE OF e
                       ON CONFLICT (endpoint_id, event_id, channel, seq) DO NOTHING)
                     INSERT INTO delivery_cursors (channel, seq) VALUES ($1, $2)
                     ON CONFLICT (channel) DO UPDATE SET seq = GREATEST(delivery_cursors.seq, excluded.seq)`,
  saveCursors: `INSERT INTO delivery_cursors (channel, seq) SELECT * FROM unnest($1::text[], $2::bigint[])
                ON CONFLICT (channel) DO UPDATE SET seq = GREATEST(delivery_cursors.seq, excluded.seq)`,
  due: `SELECT * FROM deliveries WHERE endpoint_id = $1 AND status = 'pending' AND next_attempt_at <= $2
        ORDER BY next_attempt_at, n LIMIT $3`,
  dueAfter: `SELECT * FROM deliveries WHERE endpoint_id = $1 AND status = 'pending' AND next_attempt_at <= $2
             AND (next_attempt_at, n) > ($4, $5) ORDER BY next_attempt_at, n LIMIT $3`,
  nextDue: "SELECT min(next_attempt_at) AS at FROM deliveries WHERE endpoint_id = $1 AND status = 'pending'",
  dueHeads: `${channelHeadsQuery('$1')} WHERE d.next_attempt_at <= $2 ORDER BY d.next_attempt_at, d.n LIMIT $3`,
  nextHeadDue: channelHeadsQuery('$1', 'min(d.next_attempt_at) AS at'),
  getDelivery: 'SELECT * FROM deliveries WHERE n = $1',
  // Without the payload (the event, up to limits.bodyBytes, kept until delivered): a list of 1000 must not load 1000 events.
  listDeliveries: `SELECT n, endpoint_id, event_id, channel, seq, NULL AS payload, status, attempts, next_attempt_at, final_attempt, last_status_code, last_error, created FROM deliveries
                   WHERE endpoint_id = $1 AND ($2::text IS NULL OR status = $2) ORDER BY n DESC LIMIT $3`,
  listAttempts: 'SELECT * FROM attempts WHERE delivery = $1 ORDER BY at, n',
  // A delivery whose payload was dropped (it succeeded once) cannot be sent again.
  retry: "UPDATE deliveries SET status = 'pending', next_attempt_at = $1, final_attempt = true WHERE n = $2 AND status = 'failed' AND payload IS NOT NULL",
  recoverable: `SELECT DISTINCT channel FROM deliveries
                WHERE endpoint_id = $1 AND status = 'failed' AND created >= $2 AND created <= $3 AND payload IS NOT NULL`,
  recover: `UPDATE deliveries SET status = 'pending', next_attempt_at = $1, final_attempt = true
            WHERE endpoint_id = $2 AND status = 'failed' AND created >= $3 AND created <= $4 AND payload IS NOT NULL
              AND channel IN (SELECT unnest($5::text[]))`, // a hashed semi-join, not a scan of the list per row
};

/**
 * Endpoints and deliveries shared by every node. Unlike the SQLite store,
 * endpoints are not cached: another node may change one at any time. Each
 * write is one statement, atomic on its own; PostgreSQL batches the WAL
 * flushes of concurrent commits itself.
 */
export class PostgresDeliveryStore implements DeliveryStore {
  /** Attempt outcomes, written in batches through `bookkeeping`. */
  private readonly attempts: AttemptBatch;

  /**
   * `bookkeeping` commits without waiting for the disk, like SQLite's
   * delivery database, and only attempt outcomes and the dispatcher's
   * deliveries-plus-cursor go through it: if PostgreSQL crashes and loses the
   * last of those commits, an attempt is made again, or the dispatcher reads
   * the log again from the older cursor and recreates the same deliveries.
   * Either way a repeat, never a loss. Endpoints stay on the durable pool.
   */
  constructor(
    private readonly db: Database,
    private readonly bookkeeping: Database = db,
  ) {
    this.attempts = new AttemptBatch(bookkeeping);
  }

  private async changes(sql: string, params: unknown[]): Promise<number> {
    return (await this.db.query(sql, params)).rowCount ?? 0;
  }

  async insertEndpoint(record: EndpointRecord, tenantLimit?: number): Promise<boolean> {
    const tenant = record.tenant;
    if (tenantLimit === undefined || tenant === undefined) {
      await this.updateEndpoint(record);
      return true;
    }
    return this.db.transaction(async (tx) => {
      // A tenant's inserts take turns across every node until each commits: under READ COMMITTED two could both
      // count before either inserted, and a limit of 100 end with 101.
      await tx.query(SQL.lockTenant, [TENANT_LOCK_SPACE, tenant]);
      const { rows } = await tx.query<{ n: number }>(SQL.countTenant, [tenant]);
      if (rows[0]!.n >= tenantLimit) return false;
      await tx.query(SQL.putEndpoint, [record.id, JSON.stringify(record), tenant]);
      return true;
    });
  }

  async getEndpoint(id: string): Promise<EndpointRecord | undefined> {
    const [row] = await this.db.rows<{ record: string }>(SQL.getEndpoint, [id]);
    return row && (JSON.parse(row.record) as EndpointRecord);
  }

  async listEndpoints(filter: { tenant?: string | undefined } = {}): Promise<EndpointRecord[]> {
    const rows =
      filter.tenant === undefined
        ? await this.db.rows<{ record: string }>(SQL.allEndpoints)
        : await this.db.rows<{ record: string }>(SQL.tenantEndpoints, [filter.tenant]);
    return rows.map((row) => JSON.parse(row.record) as EndpointRecord);
  }

  async updateEndpoint(record: EndpointRecord): Promise<void> {
    await this.db.query(SQL.putEndpoint, [record.id, JSON.stringify(record), record.tenant ?? null]);
  }

  async deleteEndpoint(id: string): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      // Deleting a delivery waits for an attempt being recorded on it (see attempt-batch.ts) to commit; the attempts
      // are then deleted by a statement of its own, whose snapshot sees that attempt. One recorded after waits for
      // this to commit and finds its delivery gone. Every delivery deleted is one the attempts are looked up for,
      // however many arrived meanwhile, and all on the server: a busy endpoint's deliveries may be millions.
      await tx.query(SQL.deletedDeliveries);
      await tx.query(SQL.deleteEndpointDeliveries, [id]);
      await tx.query(SQL.deleteEndpointAttempts);
      // Then the endpoint, whose row's delete waits for deliveries being created for it to commit (createDeliveries
      // holds the row FOR KEY SHARE); creates that start later wait for this to commit and write nothing for it. Only
      // now, so the row is held for the short sweep below and not for the bulk above, while every create for the
      // endpoint, and the bookkeeping connection it holds, would wait.
      const { rows } = await tx.query(SQL.deleteEndpoint, [id]);
      // The deliveries committed while the delete waited, which the statements above did not see, and their attempts.
      await tx.query(SQL.forgetDeletedDeliveries);
      await tx.query(SQL.deleteEndpointDeliveries, [id]);
      await tx.query(SQL.deleteEndpointAttempts);
      return rows.length > 0;
    });
  }

  async cursors(): Promise<Map<string, number>> {
    const rows = await this.db.rows<{ channel: string; seq: number }>(SQL.cursors);
    return new Map(rows.map((r) => [r.channel, r.seq]));
  }

  async cursor(channel: string): Promise<number | undefined> {
    const [row] = await this.db.rows<{ seq: number }>(SQL.cursor, [channel]);
    return row?.seq;
  }

  async cursorsOf(channels: readonly string[]): Promise<Map<string, number>> {
    const rows = await this.db.rows<{ channel: string; seq: number }>(SQL.cursorsOf, [channels]);
    return new Map(rows.map((r) => [r.channel, r.seq]));
  }

  async createDeliveries(channel: string, seq: number, deliveries: NewDelivery[]): Promise<void> {
    await this.bookkeeping.query(SQL.createDeliveries, [
      channel,
      seq,
      deliveries.map((d) => d.endpointId),
      deliveries.map((d) => d.eventId),
      deliveries.map((d) => d.channel),
      deliveries.map((d) => d.seq),
      deliveries.map((d) => d.payload),
      deliveries.map((d) => d.createdAt),
    ]);
  }

  async saveCursors(cursors: ReadonlyMap<string, number>): Promise<void> {
    if (cursors.size === 0) return;
    await this.bookkeeping.query(SQL.saveCursors, [[...cursors.keys()], [...cursors.values()]]);
  }

  async due(endpointId: string, now: number, limit: number, after?: DueCursor): Promise<DeliveryRecord[]> {
    const rows = after
      ? await this.db.rows<DeliveryRow>(SQL.dueAfter, [endpointId, now, limit, after.nextAttemptAt, deliveryRowOf(after.id)])
      : await this.db.rows<DeliveryRow>(SQL.due, [endpointId, now, limit]);
    return rows.map(deliveryFromRow);
  }

  async dueChannelHeads(endpointId: string, now: number, limit: number): Promise<DeliveryRecord[]> {
    return (await this.db.rows<DeliveryRow>(SQL.dueHeads, [endpointId, now, limit])).map(deliveryFromRow);
  }

  async nextDue(endpointId: string, channelHeads = false): Promise<number | undefined> {
    const [row] = await this.db.rows<{ at: number | null }>(channelHeads ? SQL.nextHeadDue : SQL.nextDue, [endpointId]);
    return row?.at ?? undefined;
  }

  recordAttempt(outcome: AttemptOutcome): Promise<void> {
    return this.attempts.record(outcome);
  }

  async getDelivery(id: string): Promise<DeliveryRecord | undefined> {
    const [row] = await this.db.rows<DeliveryRow>(SQL.getDelivery, [deliveryRowOf(id)]);
    return row && deliveryFromRow(row);
  }

  async listDeliveries(endpointId: string, status: DeliveryStatus | undefined, limit: number): Promise<DeliveryRecord[]> {
    return (await this.db.rows<DeliveryRow>(SQL.listDeliveries, [endpointId, status ?? null, limit])).map(deliveryFromRow);
  }

  async listAttempts(deliveryId: string): Promise<AttemptRecord[]> {
    return (await this.db.rows<AttemptRow>(SQL.listAttempts, [deliveryRowOf(deliveryId)])).map(attemptFromRow);
  }

  async retry(id: string, now: number): Promise<boolean> {
    return (await this.changes(SQL.retry, [now, deliveryRowOf(id)])) > 0;
  }

  async recover(endpointId: string, since: number, until: number, now: number, wanted: (channel: string) => boolean): Promise<number> {
    const channels = (await this.db.rows<{ channel: string }>(SQL.recoverable, [endpointId, since, until])).map((r) => r.channel).filter(wanted);
    return channels.length === 0 ? 0 : this.changes(SQL.recover, [now, endpointId, since, until, channels]);
  }

  async statusCounts(): Promise<{ pending: number; failed: number }> {
    const counts = { pending: 0, failed: 0 };
    const rows = await this.bookkeeping.rows<{ status: 'pending' | 'failed'; n: string }>(
      "SELECT status, count(*) AS n FROM deliveries WHERE status IN ('pending', 'failed') GROUP BY status",
    );
    for (const row of rows) counts[row.status] = Number(row.n);
    return counts;
  }
}

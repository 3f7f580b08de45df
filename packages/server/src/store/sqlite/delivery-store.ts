import type { Database, Statement } from 'better-sqlite3';
import type { DeliveryStatus } from '@herald/protocol';
import type { AttemptOutcome, AttemptRecord, DeliveryRecord, DeliveryStore, DueCursor, EndpointRecord, NewDelivery } from '../types.js';
import { GroupCommit } from './group-commit.js';
import { PerKeyQueue } from '../../util/per-key.js';
import { channelHeadsQuery } from '../channel-heads.js';
import { attemptFromRow as toAttempt, deliveryFromRow as toDelivery, deliveryRowOf as rowOf, type AttemptRow, type DeliveryRow } from '../rows.js';

/**
 * Two connections to the one database file. Endpoints change through the
 * durable connection (synchronous=FULL): a 201 means the endpoint is on disk.
 * Delivery state goes through a connection with synchronous=NORMAL, which
 * survives a process crash but may lose its last commits on power loss; that
 * is safe because every such loss rolls back to an earlier consistent state
 * (cursor and deliveries move together), and the dispatcher re-derives
 * deliveries from the fully durable log while a lost outcome only means one
 * more at-least-once attempt. It saves an fsync per attempt.
 */
export class SqliteDeliveryStore implements DeliveryStore {
  private readonly endpointWrites: GroupCommit;
  private readonly writes: GroupCommit;
  private readonly s: Record<string, Statement>;
  /** Endpoints are few and read on every pump: kept in memory, written through. */
  private readonly endpoints = new Map<string, EndpointRecord>();
  private readonly tenantInserts = new PerKeyQueue();

  constructor(durable: Database, db: Database) {
    this.endpointWrites = new GroupCommit(durable);
    this.writes = new GroupCommit(db);
    this.s = {
      putEndpoint: durable.prepare(
        'INSERT INTO endpoints (id, record, tenant) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET record = excluded.record, tenant = excluded.tenant',
      ),
      deleteEndpoint: durable.prepare('DELETE FROM endpoints WHERE id = ?'),
      deleteEndpointAttempts: durable.prepare('DELETE FROM attempts WHERE delivery IN (SELECT n FROM deliveries WHERE endpoint_id = ?)'),
      deleteEndpointDeliveries: durable.prepare('DELETE FROM deliveries WHERE endpoint_id = ?'),
      allEndpoints: durable.prepare('SELECT record FROM endpoints'),
      cursors: db.prepare('SELECT channel, seq FROM delivery_cursors'),
      cursor: db.prepare('SELECT seq FROM delivery_cursors WHERE channel = ?'),
      cursorsOf: db.prepare('SELECT channel, seq FROM delivery_cursors WHERE channel IN (SELECT value FROM json_each(?))'),
      setCursor: db.prepare('INSERT INTO delivery_cursors (channel, seq) VALUES (?, ?) ON CONFLICT (channel) DO UPDATE SET seq = MAX(seq, excluded.seq)'),
      // Only while the endpoint exists: the dispatcher may still hold an endpoint deleted a moment ago, and a delivery
      // written after its delete would stay behind, owed to no endpoint. Writes take turns, so the test and the insert
      // see the same endpoints.
      insertDelivery: db.prepare(
        `INSERT INTO deliveries (endpoint_id, event_id, channel, seq, payload, status, next_attempt_at, created)
         SELECT ?, ?, ?, ?, ?, 'pending', ?, ? WHERE EXISTS (SELECT 1 FROM endpoints WHERE id = ?)
         ON CONFLICT (endpoint_id, event_id, channel, seq) DO NOTHING`,
      ),
      due: db.prepare(
        "SELECT * FROM deliveries WHERE endpoint_id = ? AND status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, n LIMIT ?",
      ),
      dueAfter: db.prepare(
        `SELECT * FROM deliveries WHERE endpoint_id = ? AND status = 'pending' AND next_attempt_at <= ?
         AND (next_attempt_at, n) > (?, ?) ORDER BY next_attempt_at, n LIMIT ?`,
      ),
      nextDue: db.prepare("SELECT next_attempt_at AS at FROM deliveries WHERE endpoint_id = ? AND status = 'pending' ORDER BY next_attempt_at LIMIT 1"),
      dueHeads: db.prepare(`${channelHeadsQuery('@endpoint')} WHERE d.next_attempt_at <= @now ORDER BY d.next_attempt_at, d.n LIMIT @limit`),
      nextHeadDue: db.prepare(channelHeadsQuery('@endpoint', 'min(d.next_attempt_at) AS at')),
      insertAttempt: db.prepare('INSERT INTO attempts (delivery, at, status_code, duration_ms, error, response_body) VALUES (?, ?, ?, ?, ?, ?)'),
      updateDelivery: db.prepare(
        `UPDATE deliveries SET status = ?, attempts = ?, next_attempt_at = ?, final_attempt = 0, last_status_code = ?, last_error = ?,
         payload = CASE WHEN ? = 'succeeded' THEN NULL ELSE payload END WHERE n = ?`,
      ),
      getDelivery: db.prepare('SELECT * FROM deliveries WHERE n = ?'),
      // Without the payload (the event, up to limits.bodyBytes, kept until delivered): a list of 1000 must not load 1000 events.
      listDeliveries: db.prepare(
        'SELECT n, endpoint_id, event_id, channel, seq, NULL AS payload, status, attempts, next_attempt_at, final_attempt, last_status_code, last_error, created FROM deliveries WHERE endpoint_id = ? AND (? IS NULL OR status = ?) ORDER BY n DESC LIMIT ?',
      ),
      listAttempts: db.prepare('SELECT * FROM attempts WHERE delivery = ? ORDER BY at'),
      retry: db.prepare("UPDATE deliveries SET status = 'pending', next_attempt_at = ?, final_attempt = 1 WHERE n = ? AND status = 'failed' AND payload IS NOT NULL"),
      statusCounts: db.prepare("SELECT status, count(*) AS n FROM deliveries WHERE status IN ('pending', 'failed') GROUP BY status"),
      recoverable: db.prepare(
        "SELECT DISTINCT channel FROM deliveries WHERE endpoint_id = ? AND status = 'failed' AND created >= ? AND created <= ? AND payload IS NOT NULL",
      ),
      recover: db.prepare(
        "UPDATE deliveries SET status = 'pending', next_attempt_at = ?, final_attempt = 1 WHERE endpoint_id = ? AND status = 'failed' AND created >= ? AND created <= ? AND payload IS NOT NULL" +
          // One statement for every channel: one per channel walked the endpoint's failed deliveries once each.
          ' AND channel IN (SELECT value FROM json_each(?))',
      ),
    };
    for (const row of this.s.allEndpoints!.all() as Array<{ record: string }>) {
      const record = JSON.parse(row.record) as EndpointRecord;
      this.endpoints.set(record.id, record);
    }
  }

  async insertEndpoint(record: EndpointRecord, tenantLimit?: number): Promise<boolean> {
    const tenant = record.tenant;
    if (tenantLimit === undefined || tenant === undefined) {
      await this.updateEndpoint(record);
      return true;
    }
    // One process owns the file: a tenant's inserts taking turns here is enough for the count to hold.
    return this.tenantInserts.run(tenant, async () => {
      if (this.tenantCount(tenant) >= tenantLimit) return false;
      await this.updateEndpoint(record);
      return true;
    });
  }

  private tenantCount(tenant: string): number {
    let n = 0;
    for (const record of this.endpoints.values()) if (record.tenant === tenant) n += 1;
    return n;
  }

  // Shallow copies: callers may reassign fields, and the lists inside are replaced, never edited in place.
  async getEndpoint(id: string): Promise<EndpointRecord | undefined> {
    const record = this.endpoints.get(id);
    return record && { ...record };
  }

  async listEndpoints(filter: { tenant?: string | undefined } = {}): Promise<EndpointRecord[]> {
    const all = [...this.endpoints.values()];
    const chosen = filter.tenant === undefined ? all : all.filter((r) => r.tenant === filter.tenant);
    return chosen.map((r) => ({ ...r }));
  }

  async updateEndpoint(record: EndpointRecord): Promise<void> {
    const copy = { ...record };
    await this.endpointWrites.run(() => this.s.putEndpoint!.run(copy.id, JSON.stringify(copy), copy.tenant ?? null));
    this.endpoints.set(copy.id, copy);
  }

  async deleteEndpoint(id: string): Promise<boolean> {
    if (!this.endpoints.has(id)) return false;
    await this.endpointWrites.run(() => {
      this.s.deleteEndpointAttempts!.run(id);
      this.s.deleteEndpointDeliveries!.run(id);
      this.s.deleteEndpoint!.run(id);
    });
    this.endpoints.delete(id);
    return true;
  }

  async cursors(): Promise<Map<string, number>> {
    const rows = this.s.cursors!.all() as Array<{ channel: string; seq: number }>;
    return new Map(rows.map((r) => [r.channel, r.seq]));
  }

  async cursor(channel: string): Promise<number | undefined> {
    return (this.s.cursor!.get(channel) as { seq: number } | undefined)?.seq;
  }

  async cursorsOf(channels: readonly string[]): Promise<Map<string, number>> {
    const rows = this.s.cursorsOf!.all(JSON.stringify(channels)) as Array<{ channel: string; seq: number }>;
    return new Map(rows.map((r) => [r.channel, r.seq]));
  }

  createDeliveries(channel: string, seq: number, deliveries: NewDelivery[]): Promise<void> {
    return this.writes.run(() => {
      for (const d of deliveries) {
        this.s.insertDelivery!.run(d.endpointId, d.eventId, d.channel, d.seq, d.payload, d.createdAt, d.createdAt, d.endpointId);
      }
      this.s.setCursor!.run(channel, seq);
    });
  }

  saveCursors(cursors: ReadonlyMap<string, number>): Promise<void> {
    return this.writes.run(() => {
      for (const [channel, seq] of cursors) this.s.setCursor!.run(channel, seq);
    });
  }

  async due(endpointId: string, now: number, limit: number, after?: DueCursor): Promise<DeliveryRecord[]> {
    const rows = after
      ? this.s.dueAfter!.all(endpointId, now, after.nextAttemptAt, rowOf(after.id), limit)
      : this.s.due!.all(endpointId, now, limit);
    return (rows as DeliveryRow[]).map(toDelivery);
  }

  async dueChannelHeads(endpointId: string, now: number, limit: number): Promise<DeliveryRecord[]> {
    return (this.s.dueHeads!.all({ endpoint: endpointId, now, limit }) as DeliveryRow[]).map(toDelivery);
  }

  async nextDue(endpointId: string, channelHeads = false): Promise<number | undefined> {
    if (channelHeads) return (this.s.nextHeadDue!.get({ endpoint: endpointId }) as { at: number | null }).at ?? undefined;
    return (this.s.nextDue!.get(endpointId) as { at: number } | undefined)?.at;
  }

  recordAttempt({ attempt: a, status, attempts, nextAttemptAt }: AttemptOutcome): Promise<void> {
    return this.writes.run(() => {
      const row = rowOf(a.deliveryId);
      // Only while the delivery exists (the update found it): one whose endpoint was deleted during the attempt
      // would leave an orphan row. Writes are serialized, so nothing deletes it in between.
      if (this.s.updateDelivery!.run(status, attempts, nextAttemptAt, a.statusCode ?? null, a.error ?? null, status, row).changes === 0) return;
      this.s.insertAttempt!.run(row, a.at, a.statusCode ?? null, a.durationMs, a.error ?? null, a.responseBody ?? null);
    });
  }

  async getDelivery(id: string): Promise<DeliveryRecord | undefined> {
    const row = this.s.getDelivery!.get(rowOf(id)) as DeliveryRow | undefined;
    return row && toDelivery(row);
  }

  async listDeliveries(endpointId: string, status: DeliveryStatus | undefined, limit: number): Promise<DeliveryRecord[]> {
    const s = status ?? null;
    return (this.s.listDeliveries!.all(endpointId, s, s, limit) as DeliveryRow[]).map(toDelivery);
  }

  async listAttempts(deliveryId: string): Promise<AttemptRecord[]> {
    return (this.s.listAttempts!.all(rowOf(deliveryId)) as AttemptRow[]).map(toAttempt);
  }

  retry(id: string, now: number): Promise<boolean> {
    return this.writes.run(() => this.s.retry!.run(now, rowOf(id)).changes > 0);
  }

  recover(endpointId: string, since: number, until: number, now: number, wanted: (channel: string) => boolean): Promise<number> {
    return this.writes.run(() => {
      const channels = (this.s.recoverable!.all(endpointId, since, until) as Array<{ channel: string }>).map((r) => r.channel).filter(wanted);
      return channels.length === 0 ? 0 : this.s.recover!.run(now, endpointId, since, until, JSON.stringify(channels)).changes;
    });
  }

  async statusCounts(): Promise<{ pending: number; failed: number }> {
    const counts = { pending: 0, failed: 0 };
    for (const row of this.s.statusCounts!.all() as Array<{ status: 'pending' | 'failed'; n: number }>) counts[row.status] = row.n;
    return counts;
  }

  /** Commits queued writes; called before the database closes. */
  flush(): void {
    this.endpointWrites.flush();
    this.writes.flush();
  }
}

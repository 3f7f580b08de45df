import { HeraldError, type HeraldEvent } from '@herald/protocol';
import { channelRangeEnd, type AppendRequest, type AppendResult, type ChannelPage, type ChannelState, type EventStore, type EventStub, type ReadResult, type StubPage, type TrimPolicy } from '../types.js';
import { eventFromRow, type EventRow } from '../rows.js';
import { storeError, writtenIfCommitted, type Database } from './database.js';
import { recordCommit } from '../../metrics/index.js';
import { IsolateRequests, writeFlush, type Outcome } from './append-writer.js';

interface Pending {
  request: AppendRequest;
  resolve: (result: AppendResult) => void;
  reject: (error: unknown) => void;
}

type NullableEventRow = { [K in keyof EventRow]: EventRow[K] | null };

/** Events per transaction at most, so one huge backlog does not become one huge transaction. */
const MAX_FLUSH_EVENTS = 10_000;
/** Rows deleted per statement while trimming, so a big trim never holds the channel row for long. */
const TRIM_CHUNK = 5000;

const SQL = {
  ensureChannels: `INSERT INTO channels (name, epoch) SELECT name, $2 FROM unnest($1::text[]) AS name ORDER BY name
                   ON CONFLICT (name) DO NOTHING`,
  channelIds: 'SELECT cid, name FROM channels WHERE name = ANY($1::text[])',
  expireKeys: 'DELETE FROM idempotency WHERE created < $1',
  state: 'SELECT cid, head, trimmed, epoch FROM channels WHERE name = $1',
  // One statement, so the head, the trim point and the events come from one snapshot.
  read: `SELECT c.head, c.trimmed, c.epoch, e.seq, e.id, e.type, e.time, e.data, e.meta FROM channels c LEFT JOIN LATERAL (
           SELECT * FROM events WHERE cid = c.cid
           AND seq > CASE WHEN $2 < c.trimmed OR $2 > c.head THEN c.trimmed ELSE $2 END ORDER BY seq LIMIT $3
         ) e ON true WHERE c.name = $1`,
  // The same read, stopping once the rows before an event hold $4 bytes or more of data and meta. octet_length()
  // reads a TOASTed value's size from its pointer, so the rows past the bound are counted but never loaded.
  readBounded: `SELECT c.head, c.trimmed, c.epoch, e.seq, e.id, e.type, e.time, e.data, e.meta FROM channels c LEFT JOIN LATERAL (
           SELECT * FROM (
             SELECT seq, id, type, time, data, meta,
               sum(octet_length(data) + coalesce(octet_length(meta), 0)) OVER (ORDER BY seq)
                 - (octet_length(data) + coalesce(octet_length(meta), 0)) AS before
             FROM events WHERE cid = c.cid
             AND seq > CASE WHEN $2 < c.trimmed OR $2 > c.head THEN c.trimmed ELSE $2 END ORDER BY seq LIMIT $3
           ) w WHERE w.before < $4 ORDER BY seq
         ) e ON true WHERE c.name = $1`,
  // The read's rows as stubs. octet_length() reads a TOASTed value's size from its pointer, so no data is loaded.
  stubs: `SELECT c.head, c.trimmed, c.epoch, e.seq, e.time, e.bytes FROM channels c LEFT JOIN LATERAL (
           SELECT seq, time, octet_length(data) + coalesce(octet_length(meta), 0) AS bytes FROM events WHERE cid = c.cid
           AND seq > CASE WHEN $2 < c.trimmed OR $2 > c.head THEN c.trimmed ELSE $2 END ORDER BY seq LIMIT $3
         ) e ON true WHERE c.name = $1`,
  lastSeqBefore: 'SELECT max(seq) AS seq FROM events WHERE cid = $1 AND time < $2',
  trimRange: `WITH moved AS (UPDATE channels SET trimmed = GREATEST(trimmed, $3) WHERE cid = $1),
              gone AS (DELETE FROM events WHERE cid = $1 AND seq > $2 AND seq <= $3 RETURNING 1)
              SELECT count(*) AS n FROM gone`,
  channelNames: 'SELECT name FROM channels WHERE head > 0 AND name > $1 AND name >= $2 AND name < $3 ORDER BY name LIMIT $4',
};

/** Channel ids kept in memory by a node's event store; see `cids`. */
const MAX_CACHED_CIDS = 10_000;
/** A flush whose COMMIT lost its answer is looked for this often, this many times at most (see findLateCommit). */
const LATE_COMMIT_EVERY_MS = 1000;
const LATE_COMMIT_LOOKS = 60;

/**
 * The shared log on PostgreSQL. Several nodes append to one database, so the
 * database, not this process, knows each channel's head: a flush locks the
 * rows of the channels it touches (in cid order), allocates seqs from the
 * locked heads and writes the heads back before COMMIT. A writer on another
 * node waits for the lock, then sees the new head: contiguous seqs whoever
 * writes. Ids and idempotency keys are checked before any seq is given out.
 *
 * Group commit as in the SQLite store: requests that arrive in one turn of
 * the event loop, or while a transaction is running, share the next one,
 * and a promise resolves only after COMMIT. The flush is written by
 * append-writer.ts: all requests at once, or, when one of them fails, each
 * in its own savepoint so that it fails alone.
 */
export class PostgresEventStore implements EventStore {
  private queue: Pending[] = [];
  private scheduled = false;
  private draining: Promise<void> | undefined;
  private closed = false;
  /**
   * A channel's cid never changes once its row exists, so any cid once read stays right. At most
   * MAX_CACHED_CIDS are kept: past it the cache starts again empty, rather than grow with every channel ever written.
   */
  private readonly cids = new Map<string, number>();

  private readonly lateCommitListeners: Array<(events: HeraldEvent[]) => void> = [];

  constructor(
    private readonly db: Database,
    private readonly storeEpoch: string,
  ) {}

  onLateCommit(listener: (events: HeraldEvent[]) => void): void {
    this.lateCommitListeners.push(listener);
  }

  /**
   * A flush whose COMMIT lost its answer: its new events are read back by (channel, seq) once the store answers
   * (tried every second, for a minute at most), and those there with their own ids were committed: handed to the
   * listeners, so subscribers see them now rather than with the channel's next event. One read that answers decides:
   * a COMMIT the server is still running then is announced by the channel's next event only.
   */
  private findLateCommit(written: readonly Outcome[]): void {
    const events = written.flatMap((outcome) => ('error' in outcome ? [] : outcome.events.filter((_, i) => outcome.created[i])));
    if (events.length === 0 || this.lateCommitListeners.length === 0) return;
    const byChannel = new Map<string, Map<number, string>>();
    for (const e of events) byChannel.set(e.channel, (byChannel.get(e.channel) ?? new Map()).set(e.seq, e.id));
    const look = async (attempt: number): Promise<void> => {
      const found: HeraldEvent[] = [];
      try {
        for (const [channel, ids] of byChannel) {
          const seqs = [...ids.keys()];
          const first = Math.min(...seqs);
          const page = await this.read(channel, first - 1, Math.max(...seqs) - first + 1);
          found.push(...page.events.filter((e) => ids.get(e.seq) === e.id));
        }
      } catch {
        if (attempt < LATE_COMMIT_LOOKS && !this.closed) setTimeout(() => void look(attempt + 1), LATE_COMMIT_EVERY_MS).unref();
        return;
      }
      if (found.length > 0) for (const listener of this.lateCommitListeners) listener(found);
    };
    setTimeout(() => void look(1), LATE_COMMIT_EVERY_MS).unref();
  }

  append(request: AppendRequest): Promise<AppendResult> {
    if (this.closed) return Promise.reject(new HeraldError('unavailable', 'The store is closed.'));
    return new Promise((resolve, reject) => {
      this.queue.push({ request, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.draining) return; // a running drain takes the queue when its transaction ends
    this.scheduled = true;
    // setImmediate, not a microtask: requests that arrive in the same I/O phase join this transaction.
    setImmediate(() => {
      this.scheduled = false;
      this.drain();
    });
  }

  private drain(): Promise<void> {
    this.draining ??= (async () => {
      while (this.queue.length > 0) await this.flush(this.takeBatch());
    })().finally(() => {
      this.draining = undefined;
      // An append made between the loop's last check and here found `draining` set and did not schedule.
      if (this.queue.length > 0) this.schedule();
    });
    return this.draining;
  }

  private takeBatch(): Pending[] {
    let events = 0;
    let n = 0;
    while (n < this.queue.length && (n === 0 || events + this.queue[n]!.request.events.length <= MAX_FLUSH_EVENTS)) {
      events += this.queue[n]!.request.events.length;
      n++;
    }
    return this.queue.splice(0, n);
  }

  private async flush(batch: Pending[]): Promise<void> {
    const requests = batch.map((p) => p.request);
    let outcomes: Outcome[];
    const started = performance.now();
    try {
      const cids = await this.channelIds(requests.flatMap((r) => r.events.map((e) => e.channel)));
      outcomes = await this.db
        .transaction((tx) => writeFlush(tx, requests, cids, false))
        .catch((error: unknown) => {
          if (!(error instanceof IsolateRequests)) throw error;
          return this.db.transaction((tx) => writeFlush(tx, requests, cids, true));
        });
    } catch (error) {
      const mapped = storeError(error);
      for (const pending of batch) pending.reject(mapped);
      const written = writtenIfCommitted(error) as Outcome[] | undefined;
      if (written) this.findLateCommit(written);
      return;
    }
    recordCommit('postgres', batch.length, (performance.now() - started) / 1000);
    outcomes.forEach((outcome, i) => ('error' in outcome ? batch[i]!.reject(outcome.error) : batch[i]!.resolve(outcome)));
  }

  /**
   * Creates missing channel rows outside the append transaction, in name
   * order, so two nodes creating the same channels never deadlock. An empty
   * row left by a request that then failed is harmless: head 0, not listed.
   */
  private async channelIds(names: string[]): Promise<Map<string, number>> {
    // The request's own ids, in a map of its own: another flush may empty the cache while this one waits.
    const ids = new Map<string, number>();
    const missing: string[] = [];
    for (const name of new Set(names)) {
      const cid = this.cids.get(name);
      if (cid === undefined) missing.push(name);
      else ids.set(name, cid);
    }
    if (missing.length > 0) {
      await this.db.query(SQL.ensureChannels, [missing, this.storeEpoch]);
      const rows = await this.db.rows<{ cid: number; name: string }>(SQL.channelIds, [missing]);
      if (this.cids.size + rows.length > MAX_CACHED_CIDS) this.cids.clear();
      for (const row of rows) {
        this.cids.set(row.name, row.cid);
        ids.set(row.name, row.cid);
      }
    }
    return ids;
  }

  async read(channel: string, after: number, limit: number, maxBytes?: number): Promise<ReadResult> {
    this.assertOpen();
    const rows = await this.db.rows<ChannelState & NullableEventRow>(
      maxBytes === undefined ? SQL.read : SQL.readBounded,
      maxBytes === undefined ? [channel, after, limit] : [channel, after, limit, maxBytes],
    );
    if (rows.length === 0) return { events: [], head: 0, trimmed: 0, epoch: this.storeEpoch, truncated: after > 0 };
    const { head, trimmed, epoch } = rows[0]!;
    // LEFT JOIN: a channel with nothing to return comes back as one row of nulls.
    const events = rows.filter((row): row is ChannelState & EventRow => row.id !== null).map((row) => eventFromRow(channel, row));
    return { events, head, trimmed, epoch, truncated: after < trimmed || after > head };
  }

  async stubs(channel: string, after: number, limit: number): Promise<StubPage> {
    this.assertOpen();
    const rows = await this.db.rows<ChannelState & { [K in keyof EventStub]: number | null }>(SQL.stubs, [channel, after, limit]);
    if (rows.length === 0) return { stubs: [], head: 0, trimmed: 0, epoch: this.storeEpoch, truncated: after > 0 };
    const { head, trimmed, epoch } = rows[0]!;
    const stubs = rows.filter((row): row is ChannelState & EventStub => row.seq !== null).map(({ seq, time, bytes }) => ({ seq, time, bytes }));
    return { stubs, head, trimmed, epoch, truncated: after < trimmed || after > head };
  }

  async head(channel: string): Promise<ChannelState> {
    this.assertOpen();
    const [row] = await this.db.rows<ChannelState>(SQL.state, [channel]);
    return row ? { head: row.head, trimmed: row.trimmed, epoch: row.epoch } : { head: 0, trimmed: 0, epoch: this.storeEpoch };
  }

  async trim(channel: string, policy: TrimPolicy): Promise<number> {
    this.assertOpen();
    const [row] = await this.db.rows<ChannelState & { cid: number }>(SQL.state, [channel]);
    if (!row) return 0;
    let cutoff = row.trimmed;
    if (policy.maxEvents !== undefined) cutoff = Math.max(cutoff, row.head - policy.maxEvents);
    if (policy.olderThan !== undefined) {
      const [last] = await this.db.rows<{ seq: number | null }>(SQL.lastSeqBefore, [row.cid, policy.olderThan]);
      cutoff = Math.max(cutoff, last?.seq ?? 0);
    }
    let removed = 0;
    for (let from = row.trimmed; from < cutoff && !this.closed; ) {
      const to = Math.min(cutoff, from + TRIM_CHUNK);
      // Idempotent: a node trimming the same range concurrently deletes nothing twice and never lowers `trimmed`.
      const [gone] = await this.db.rows<{ n: number }>(SQL.trimRange, [row.cid, from, to]);
      removed += gone!.n;
      from = to;
    }
    return removed;
  }

  async expireIdempotencyKeys(olderThan: number): Promise<number> {
    this.assertOpen();
    return (await this.db.query(SQL.expireKeys, [olderThan])).rowCount ?? 0;
  }

  async channels({ after = '', prefix = '', limit }: ChannelPage): Promise<string[]> {
    this.assertOpen();
    return (await this.db.rows<{ name: string }>(SQL.channelNames, [after, prefix, channelRangeEnd(prefix), limit])).map((r) => r.name);
  }

  async ping(): Promise<void> {
    this.assertOpen();
    await this.db.query('SELECT 1');
  }

  /** Commits whatever is queued, then refuses new work. The caller closes the pool. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.drain();
  }

  private assertOpen(): void {
    if (this.closed) throw new HeraldError('unavailable', 'The store is closed.');
  }
}

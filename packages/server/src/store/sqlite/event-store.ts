import type { Database, Statement } from 'better-sqlite3';
import { HeraldError, type HeraldEvent } from '@herald/protocol';
import type {
  AppendRequest,
  AppendResult,
  ChannelState,
  EventStore,
  ReadResult,
  TrimPolicy,
} from '../types.js';
import { dataText, eventFromInput as toEvent, eventFromRow, metaText, type EventRow as StoredEventRow } from '../rows.js';
import { recordCommit } from '../../metrics/index.js';

interface ChannelEntry {
  cid: number;
  name: string;
  epoch: string;
  head: number;
  trimmed: number;
  /** Work holding this entry across a turn of the event loop (a trim between chunks): never evicted while > 0. */
  pins: number;
}

interface Pending {
  request: AppendRequest;
  resolve: (result: AppendResult) => void;
  reject: (error: unknown) => void;
}

interface EventRow extends StoredEventRow {
  cid: number;
}

/** Channel states as they were before a request or a flush changed them; null = created by it. */
type Undo = Map<string, ChannelEntry | null>;

/** Rows deleted per transaction while trimming, so a big trim never stalls the event loop. */
const TRIM_CHUNK = 5000;

/** Channel entries kept in memory, least recently used evicted first; evicted channels reload from the database. */
export const DEFAULT_MAX_CACHED_CHANNELS = 10_000;

/**
 * SQLite event log with group commit. better-sqlite3 is synchronous, so
 * appends queue up and are written together at the next turn of the event
 * loop: one transaction and one fsync for every request that arrived in the
 * meantime, each request in its own savepoint so one bad request cannot fail
 * its neighbours. Only this process writes the database, which is what makes
 * the in-memory channel heads authoritative.
 */
export class SqliteEventStore implements EventStore {
  /** Insertion order is recency: a hit moves the entry to the end, eviction starts at the front. */
  private readonly channelsByName = new Map<string, ChannelEntry>();
  private readonly channelsById = new Map<number, ChannelEntry>();
  private queue: Pending[] = [];
  private flushScheduled = false;
  private closed = false;
  /** Channel states before the running flush, kept in case its COMMIT fails. */
  private lastFlushUndo: Undo = new Map();

  private readonly stmt: {
    channelByName: Statement<[string], { cid: number; epoch: string; trimmed: number }>;
    maxSeq: Statement<[number], { head: number | null }>;
    insertChannel: Statement<[string, string]>;
    insertEvent: Statement<[number, number, string, string, number, string, string | null]>;
    eventById: Statement<[string], EventRow>;
    readAfter: Statement<[number, number, number], EventRow>;
    idempotencyGet: Statement<[string], { ids: string }>;
    idempotencyPut: Statement<[string, string, number]>;
    idempotencyExpire: Statement<[number]>;
    lastSeqBefore: Statement<[number, number], { seq: number | null }>;
    deleteRange: Statement<[number, number, number]>;
    setTrimmed: Statement<[number, number]>;
    channelNames: Statement<[], { name: string }>;
    channelById: Statement<[number], { name: string }>;
  };

  private readonly flushTransaction: (batch: Pending[]) => Array<AppendResult | { error: unknown }>;
  private readonly requestTransaction: (request: AppendRequest, undo: Undo) => AppendResult;

  constructor(
    private readonly db: Database,
    private readonly storeEpoch: string,
    /**
     * How many channels' entries (head, trimmed, epoch) stay in memory. The in-memory head is authoritative
     * for appends, which is safe to drop only because every append is committed within one synchronous flush:
     * between flushes the database holds exactly what the entry held, so an evicted channel reloads unchanged.
     */
    private readonly maxCachedChannels = DEFAULT_MAX_CACHED_CHANNELS,
  ) {
    this.stmt = {
      channelByName: db.prepare('SELECT cid, epoch, trimmed FROM channels WHERE name = ?'),
      maxSeq: db.prepare('SELECT MAX(seq) AS head FROM events WHERE cid = ?'),
      insertChannel: db.prepare('INSERT INTO channels (name, epoch) VALUES (?, ?)'),
      insertEvent: db.prepare(
        'INSERT INTO events (cid, seq, id, type, time, data, meta) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING',
      ),
      eventById: db.prepare('SELECT cid, seq, id, type, time, data, meta FROM events WHERE id = ?'),
      readAfter: db.prepare(
        'SELECT cid, seq, id, type, time, data, meta FROM events WHERE cid = ? AND seq > ? ORDER BY seq LIMIT ?',
      ),
      idempotencyGet: db.prepare('SELECT ids FROM idempotency WHERE key = ?'),
      idempotencyPut: db.prepare('INSERT INTO idempotency (key, ids, created) VALUES (?, ?, ?)'),
      idempotencyExpire: db.prepare('DELETE FROM idempotency WHERE created < ?'),
      lastSeqBefore: db.prepare('SELECT MAX(seq) AS seq FROM events WHERE cid = ? AND time < ?'),
      deleteRange: db.prepare('DELETE FROM events WHERE cid = ? AND seq > ? AND seq <= ?'),
      setTrimmed: db.prepare('UPDATE channels SET trimmed = ? WHERE cid = ?'),
      channelNames: db.prepare('SELECT name FROM channels ORDER BY cid'),
      channelById: db.prepare('SELECT name FROM channels WHERE cid = ?'),
    };

    this.requestTransaction = db.transaction((request: AppendRequest, undo: Undo) => this.applyRequest(request, undo));
    this.flushTransaction = db.transaction((batch: Pending[]) => {
      const flushUndo: Undo = new Map();
      const results: Array<AppendResult | { error: unknown }> = [];
      try {
        for (const pending of batch) {
          const undo: Undo = new Map();
          try {
            // A nested better-sqlite3 transaction is a savepoint.
            results.push(this.requestTransaction(pending.request, undo));
            for (const [name, before] of undo) if (!flushUndo.has(name)) flushUndo.set(name, before);
          } catch (error) {
            this.restore(undo);
            // SQLITE_FULL (like IOERR or NOMEM) may roll back the whole transaction, not only the savepoint:
            // then every request in this flush failed with it, and there is nothing left to commit.
            if (!this.db.inTransaction) throw error;
            results.push({ error });
          }
        }
      } catch (error) {
        this.restore(flushUndo);
        throw error;
      }
      // The commit happens after this function returns; if it throws, the caller restores.
      this.lastFlushUndo = flushUndo;
      return results;
    });
  }

  append(request: AppendRequest): Promise<AppendResult> {
    if (this.closed) return Promise.reject(new HeraldError('unavailable', 'The store is closed.'));
    return new Promise((resolve, reject) => {
      this.queue.push({ request, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        // setImmediate, not a microtask: requests that arrive in the same I/O phase join this commit.
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    let results: Array<AppendResult | { error: unknown }>;
    const started = performance.now();
    try {
      results = this.flushTransaction(batch);
    } catch (error) {
      this.restore(this.lastFlushUndo);
      for (const pending of batch) pending.reject(error);
      return;
    } finally {
      this.lastFlushUndo = new Map();
    }
    recordCommit('sqlite', batch.length, (performance.now() - started) / 1000);
    for (let i = 0; i < batch.length; i++) {
      const result = results[i]!;
      if ('error' in result) batch[i]!.reject(result.error);
      else batch[i]!.resolve(result);
    }
    this.evictIdle();
  }

  /**
   * Drops the least recently used entries over the bound. Never inside a transaction (a flush's entries carry
   * uncommitted heads until it ends) and never a pinned entry.
   */
  private evictIdle(): void {
    if (this.channelsByName.size <= this.maxCachedChannels || this.db.inTransaction) return;
    for (const [name, entry] of this.channelsByName) {
      if (this.channelsByName.size <= this.maxCachedChannels) break;
      if (entry.pins > 0) continue;
      this.forget(name, entry);
    }
  }

  private forget(name: string, entry: ChannelEntry): void {
    this.channelsByName.delete(name);
    this.channelsById.delete(entry.cid);
  }

  /** How many channel entries are in memory now (for tests and diagnostics). */
  get cachedChannels(): number {
    return this.channelsByName.size;
  }

  private restore(undo: Undo): void {
    for (const [name, before] of undo) {
      const current = this.channelsByName.get(name);
      if (before === null) {
        this.channelsByName.delete(name);
        if (current) this.channelsById.delete(current.cid);
      } else if (current) {
        current.head = before.head;
        current.trimmed = before.trimmed;
      }
    }
  }

  private applyRequest(request: AppendRequest, undo: Undo): AppendResult {
    const key = request.idempotencyKey;
    if (key !== undefined) {
      const previous = this.stmt.idempotencyGet.get(key);
      if (previous) {
        const ids = JSON.parse(previous.ids) as string[];
        const events = ids
          .map((id) => this.stmt.eventById.get(id))
          .filter((row): row is EventRow => row !== undefined)
          .map((row) => this.toEvent(row));
        return { events, created: events.map(() => false), replayed: true };
      }
    }
    const events: HeraldEvent[] = [];
    const created: boolean[] = [];
    for (const input of request.events) {
      const entry = this.channelForWrite(input.channel, undo);
      const seq = entry.head + 1;
      const info = this.stmt.insertEvent.run(entry.cid, seq, input.id, input.type, input.time, dataText(input.data), metaText(input.meta));
      if (info.changes === 0) {
        const original = this.stmt.eventById.get(input.id)!;
        if (original.cid !== entry.cid) {
          throw new HeraldError('event_id_conflict', `Event id ${input.id} is already used on another channel.`);
        }
        events.push(this.toEvent(original));
        created.push(false);
        continue;
      }
      entry.head = seq;
      events.push(toEvent(input, seq));
      created.push(true);
    }
    if (key !== undefined) {
      this.stmt.idempotencyPut.run(key, JSON.stringify(events.map((e) => e.id)), Date.now());
    }
    return { events, created, replayed: false };
  }

  private channelForWrite(name: string, undo: Undo): ChannelEntry {
    let entry = this.loadChannel(name);
    if (!entry) {
      const info = this.stmt.insertChannel.run(name, this.storeEpoch);
      entry = { cid: Number(info.lastInsertRowid), name, epoch: this.storeEpoch, head: 0, trimmed: 0, pins: 0 };
      this.channelsByName.set(name, entry);
      this.channelsById.set(entry.cid, entry);
      if (!undo.has(name)) undo.set(name, null);
    } else if (!undo.has(name)) {
      undo.set(name, { ...entry });
    }
    return entry;
  }

  private loadChannel(name: string): ChannelEntry | undefined {
    const cached = this.channelsByName.get(name);
    if (cached) {
      // Most recently used: to the end of the eviction order.
      this.channelsByName.delete(name);
      this.channelsByName.set(name, cached);
      return cached;
    }
    const row = this.stmt.channelByName.get(name);
    if (!row) return undefined;
    const head = this.stmt.maxSeq.get(row.cid)?.head ?? row.trimmed;
    const entry: ChannelEntry = { cid: row.cid, name, epoch: row.epoch, head: Math.max(head, row.trimmed), trimmed: row.trimmed, pins: 0 };
    this.channelsByName.set(name, entry);
    this.channelsById.set(entry.cid, entry);
    this.evictIdle();
    return entry;
  }

  private channelName(cid: number): string {
    const cached = this.channelsById.get(cid);
    if (cached) return cached.name;
    const row = this.stmt.channelById.get(cid);
    if (!row) throw new Error(`Event refers to unknown channel ${cid}.`);
    return this.loadChannel(row.name)!.name;
  }

  private toEvent(row: EventRow): HeraldEvent {
    return eventFromRow(this.channelName(row.cid), row);
  }

  private state(name: string): ChannelState {
    const entry = this.loadChannel(name);
    if (!entry) return { head: 0, trimmed: 0, epoch: this.storeEpoch };
    return { head: entry.head, trimmed: entry.trimmed, epoch: entry.epoch };
  }

  async read(channel: string, after: number, limit: number): Promise<ReadResult> {
    this.assertOpen();
    const entry = this.loadChannel(channel);
    if (!entry) {
      return { events: [], head: 0, trimmed: 0, epoch: this.storeEpoch, truncated: after > 0 };
    }
    const truncated = after < entry.trimmed || after > entry.head;
    const from = truncated ? entry.trimmed : after;
    const events = from >= entry.head ? [] : this.stmt.readAfter.all(entry.cid, from, limit).map((row) => this.toEvent(row));
    return { events, head: entry.head, trimmed: entry.trimmed, epoch: entry.epoch, truncated };
  }

  async head(channel: string): Promise<ChannelState> {
    this.assertOpen();
    return this.state(channel);
  }

  async trim(channel: string, policy: TrimPolicy): Promise<number> {
    this.assertOpen();
    const wasCached = this.channelsByName.has(channel);
    const entry = this.loadChannel(channel);
    if (!entry) return 0;
    // Pinned while the trim runs: its chunks commit `trimmed` one by one, and readers must see each.
    entry.pins++;
    try {
      return await this.trimEntry(entry, policy);
    } finally {
      entry.pins--;
      // A retention pass visits every channel: do not let it push the channels in use out of memory.
      if (!wasCached && entry.pins === 0 && this.channelsByName.get(channel) === entry && !this.db.inTransaction) this.forget(channel, entry);
    }
  }

  private async trimEntry(entry: ChannelEntry, policy: TrimPolicy): Promise<number> {
    let cutoff = entry.trimmed;
    if (policy.maxEvents !== undefined) cutoff = Math.max(cutoff, entry.head - policy.maxEvents);
    if (policy.olderThan !== undefined) {
      cutoff = Math.max(cutoff, this.stmt.lastSeqBefore.get(entry.cid, policy.olderThan)?.seq ?? 0);
    }
    let removed = 0;
    while (entry.trimmed < cutoff && !this.closed) {
      const to = Math.min(cutoff, entry.trimmed + TRIM_CHUNK);
      const from = entry.trimmed;
      removed += this.db.transaction(() => {
        const n = this.stmt.deleteRange.run(entry.cid, from, to).changes;
        this.stmt.setTrimmed.run(to, entry.cid);
        return n;
      })();
      entry.trimmed = to;
      if (entry.trimmed < cutoff) await new Promise((r) => setImmediate(r));
    }
    return removed;
  }

  async expireIdempotencyKeys(olderThan: number): Promise<number> {
    this.assertOpen();
    return this.stmt.idempotencyExpire.run(olderThan).changes;
  }

  async channels(): Promise<string[]> {
    this.assertOpen();
    return this.stmt.channelNames.all().map((r) => r.name);
  }

  async ping(): Promise<void> {
    this.assertOpen();
    this.db.prepare('SELECT 1').get();
  }

  async probeWrite(): Promise<void> {
    this.assertOpen();
    // About a page of data, so a database that cannot grow by a page fails here as an append would.
    this.db.transaction(() => {
      this.db.prepare("INSERT INTO settings (name, value) VALUES ('write_probe', ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value").run('x'.repeat(4096));
      this.db.prepare("DELETE FROM settings WHERE name = 'write_probe'").run();
    })();
  }

  /** Commits whatever is queued, then refuses new work. The caller closes the database. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    this.closed = true;
  }

  private assertOpen(): void {
    if (this.closed) throw new HeraldError('unavailable', 'The store is closed.');
  }
}

import type { Database, Statement } from 'better-sqlite3';
import { HeraldError, type HeraldEvent } from '@herald/protocol';
import {
  channelRangeEnd,
  type AppendRequest,
  type AppendResult,
  type ChannelPage,
  type ChannelState,
  type EventStore,
  type EventStub,
  type ReadResult,
  type StubPage,
  type TrimPolicy,
} from '../types.js';
import { dataText, eventFromInput as toEvent, eventFromRow, indexesId, metaText, type EventRow as StoredEventRow } from '../rows.js';
import { EventRowWriter } from './event-rows.js';
import { WIDE_COMMIT_CHANNELS, type Checkpointer } from './checkpointer.js';

interface ChannelEntry {
  cid: number;
  name: string;
  epoch: string;
  head: number;
  trimmed: number;
  /**
   * Highest seq known to be on stable storage: what readers see. Behind `head` only while a flush waits for its
   * sync (see WalSync), so no reader is ever shown an event a power loss could take back.
   */
  durable: number;
  /** Work holding this entry across a turn of the event loop (a trim between chunks): never evicted while > 0. */
  pins: number;
  /** Used since eviction last passed it: it gets a second chance (see evictIdle). */
  used: boolean;
}

interface Pending {
  request: AppendRequest;
  resolve: (result: AppendResult) => void;
  reject: (error: unknown) => void;
}

interface EventRow extends StoredEventRow {
  cid: number;
}

/** What makes a commit durable when COMMIT itself does not sync: see WalSync. */
export interface Durability {
  /** Resolves once everything committed before the call is on stable storage. */
  afterWrites(): Promise<void>;
  /** Resolves once no sync is running. */
  drained(): Promise<void>;
  /** Whether a commit made now could not start its own sync before a running one ends. */
  readonly syncing: boolean;
  /** Set once a sync has failed: nothing written since can be vouched for. */
  readonly failure: Error | undefined;
}

/** Channel states as they were before a request or a flush changed them; null = created by it. */
type Undo = Map<string, ChannelEntry | null>;

/** Rows deleted per transaction while trimming, so a big trim never stalls the event loop. */
const TRIM_CHUNK = 5000;

/** Channel entries kept in memory, least recently used evicted first; evicted channels reload from the database. */
export const DEFAULT_MAX_CACHED_CHANNELS = 10_000;

export interface SqliteEventStoreOptions {
  /**
   * How many channels' entries (head, trimmed, epoch) stay in memory. The in-memory head is authoritative
   * for appends, which is safe to drop only because every append is committed within one synchronous flush:
   * between flushes the database holds exactly what the entry held, so an evicted channel reloads unchanged.
   */
  maxCachedChannels?: number | undefined;
  /**
   * When COMMIT does not sync (the append connection runs at `synchronous=NORMAL`), what does: appends resolve,
   * and readers see them, only after it. Without it a commit is as durable as the connection makes it.
   */
  durability?: Durability | undefined;
  /** Checkpoints after wide commits, off the event loop; commits wait while one runs. Without it, SQLite's own. */
  checkpoints?: Pick<Checkpointer, 'available' | 'running' | 'idle' | 'request'> | undefined;
  /** Told of each commit: how many requests it carried and how long it took (for the metrics). */
  onCommit?: ((writes: number, seconds: number) => void) | undefined;
}

/**
 * SQLite event log with group commit. better-sqlite3 is synchronous, so
 * appends queue up and are written together at the next turn of the event
 * loop: one transaction and one fsync for every request that arrived in the
 * meantime, each request in its own savepoint so one bad request cannot fail
 * its neighbours. With a {@link Durability} (on disk, `synchronous: full`) the
 * fsync runs off the event loop after the commit, and appends are answered,
 * and shown to readers, only once it is done. Only this process writes the
 * database, which is what makes the in-memory channel heads authoritative.
 */
export class SqliteEventStore implements EventStore {
  /**
   * Eviction order is insertion order with a second chance (the CLOCK approximation of least recently used): a hit
   * only marks the entry used, so the hot path never reorders the map; eviction moves used entries to the end.
   */
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
    eventByChosenId: Statement<[string], EventRow>;
    eventAt: Statement<[number, number], EventRow>;
    readAfter: Statement<[number, number, number, number], EventRow>;
    stubsAfter: Statement<[number, number, number, number], EventStub>;
    idempotencyGet: Statement<[string], { positions: string }>;
    idempotencyPut: Statement<[string, string, string, number]>;
    idempotencyExpire: Statement<[number]>;
    lastSeqBefore: Statement<[number, number], { seq: number | null }>;
    deleteRange: Statement<[number, number, number]>;
    setTrimmed: Statement<[number, number]>;
    channelNamesAfter: Statement<[string, string, number], { name: string }>;
    channelNamesFrom: Statement<[string, string, number], { name: string }>;
    channelById: Statement<[number], { name: string }>;
  };

  private readonly rows: EventRowWriter;
  /** The connection's own checkpoint threshold, put back after a wide commit (see Checkpointer). */
  private readonly autocheckpointPages: number;
  /** Set by a flush wide enough that its checkpoint runs on the Checkpointer's thread. */
  private wideCommit = false;
  private readonly flushTransaction: (batch: Pending[]) => Array<AppendResult | { error: unknown }>;
  private readonly requestTransaction: (request: AppendRequest, undo: Undo) => AppendResult;

  private readonly maxCachedChannels: number;
  private readonly durability: Durability | undefined;
  private readonly checkpoints: SqliteEventStoreOptions['checkpoints'];
  private readonly onCommit: SqliteEventStoreOptions['onCommit'];

  constructor(
    private readonly db: Database,
    private readonly storeEpoch: string,
    options: SqliteEventStoreOptions = {},
  ) {
    this.maxCachedChannels = options.maxCachedChannels ?? DEFAULT_MAX_CACHED_CHANNELS;
    this.durability = options.durability;
    this.checkpoints = options.checkpoints;
    this.onCommit = options.onCommit;
    this.autocheckpointPages = db.pragma('wal_autocheckpoint', { simple: true }) as number;
    // A savepoint keeps the original of every page it changes in a sub-journal, which SQLite holds in memory up to
    // 64 KiB and then moves to a temporary file, one write() per page for the rest of the transaction. A request's
    // savepoint passes that with a batch over a few channels, and with one over many channels at once. In memory it
    // never spills, and it is emptied as each savepoint ends, so it holds one request's pages at a time. Runs of
    // bench:publish's batches alternating with the file: 13% less CPU per event for batches of 100, 25% less for
    // batches over 1,000 channels (a profile of those had put 28% of the process in those writes). Sort indices built
    // on this connection stay in memory too: the event store's queries build none, and of the stores that share its
    // connection under `synchronous: normal`, only the API key list sorts without an index.
    db.pragma('temp_store = MEMORY');
    this.stmt = {
      channelByName: db.prepare('SELECT cid, epoch, trimmed FROM channels WHERE name = ?'),
      maxSeq: db.prepare('SELECT MAX(seq) AS head FROM events WHERE cid = ?'),
      insertChannel: db.prepare('INSERT INTO channels (name, epoch) VALUES (?, ?)'),
      // `chosen = 1` repeats the partial index's predicate, which is what lets SQLite use that index.
      eventByChosenId: db.prepare('SELECT cid, seq, id, type, time, data, meta FROM events WHERE id = ? AND chosen = 1'),
      eventAt: db.prepare('SELECT cid, seq, id, type, time, data, meta FROM events WHERE cid = ? AND seq = ?'),
      readAfter: db.prepare(
        'SELECT cid, seq, id, type, time, data, meta FROM events WHERE cid = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?',
      ),
      // octet_length() reads a text's size from its row's header, so a big event's overflow pages are never loaded.
      stubsAfter: db.prepare(
        'SELECT seq, time, octet_length(data) + ifnull(octet_length(meta), 0) AS bytes FROM events WHERE cid = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?',
      ),
      idempotencyGet: db.prepare('SELECT positions FROM idempotency WHERE key = ?'),
      idempotencyPut: db.prepare('INSERT INTO idempotency (key, ids, positions, created) VALUES (?, ?, ?, ?)'),
      idempotencyExpire: db.prepare('DELETE FROM idempotency WHERE created < ?'),
      lastSeqBefore: db.prepare('SELECT MAX(seq) AS seq FROM events WHERE cid = ? AND time < ?'),
      deleteRange: db.prepare('DELETE FROM events WHERE cid = ? AND seq > ? AND seq <= ?'),
      setTrimmed: db.prepare('UPDATE channels SET trimmed = ? WHERE cid = ?'),
      // One lower bound each: SQLite starts an index range at one of them only, and would scan from the other.
      channelNamesAfter: db.prepare('SELECT name FROM channels WHERE name > ? AND name < ? ORDER BY name LIMIT ?'),
      channelNamesFrom: db.prepare('SELECT name FROM channels WHERE name >= ? AND name < ? ORDER BY name LIMIT ?'),
      channelById: db.prepare('SELECT name FROM channels WHERE cid = ?'),
    };

    this.rows = new EventRowWriter(db);
    this.requestTransaction = db.transaction((request: AppendRequest, undo: Undo) => this.applyRequest(request, undo));
    this.flushTransaction = db.transaction((batch: Pending[]) => {
      const flushUndo: Undo = new Map();
      const results: Array<AppendResult | { error: unknown }> = [];
      try {
        for (const pending of batch) {
          if (this.isOneStatement(pending.request)) {
            // SQLite undoes a failed statement by itself, so a request that is one INSERT needs no savepoint
            // (which costs about a quarter of such a request's time here); a failed insert leaves the head as it was.
            try {
              results.push(this.applyRequest(pending.request, flushUndo));
            } catch (error) {
              if (!this.db.inTransaction) throw error;
              results.push({ error });
            }
            continue;
          }
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
      if (this.checkpoints?.available && flushUndo.size >= WIDE_COMMIT_CHANNELS) {
        // Its checkpoint runs on the Checkpointer's thread once it is committed, not inside its COMMIT.
        this.wideCommit = true;
        this.db.pragma('wal_autocheckpoint = 0');
      }
      return results;
    });
  }

  append(request: AppendRequest): Promise<AppendResult> {
    if (this.closed) return Promise.reject(new HeraldError('unavailable', 'The store is closed.'));
    if (this.durability?.failure) return Promise.reject(this.durability.failure);
    return new Promise((resolve, reject) => {
      this.queue.push({ request, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        // setImmediate, not a microtask: requests that arrive in the same I/O phase join this commit.
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(now = false): void {
    if (!now && this.durability?.syncing) {
      // Whatever commits now waits for a sync that can only start once a running one ends: committing then
      // instead answers no later, and makes one transaction (and one write of the pages it touches) of
      // everything that arrived meanwhile. `flushScheduled` stays set, so appends keep joining this flush.
      void this.durability.drained().then(() => this.flush());
      return;
    }
    if (!now && this.checkpoints?.running) {
      // Held until the checkpoint has copied every frame, so this commit starts the WAL file over (see Checkpointer).
      // Either way: nothing may leave commits held behind a checkpoint.
      const flush = () => this.flush();
      void this.checkpoints.idle().then(flush, flush);
      return;
    }
    this.flushScheduled = false;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    const failure = this.durability?.failure;
    if (failure) {
      // Queued before a sync failed: nothing written from now on could be vouched for, so nothing is written.
      for (const pending of batch) pending.reject(failure);
      return;
    }
    let results: Array<AppendResult | { error: unknown }>;
    let touched: Undo;
    const started = performance.now();
    try {
      results = this.flushTransaction(batch);
      touched = this.lastFlushUndo;
    } catch (error) {
      this.restore(this.lastFlushUndo);
      for (const pending of batch) pending.reject(error);
      return;
    } finally {
      this.lastFlushUndo = new Map();
      if (this.wideCommit) {
        this.wideCommit = false;
        this.afterWideCommit();
      }
    }
    this.onCommit?.(batch.length, (performance.now() - started) / 1000);
    // The heads this commit reached, to show readers once it is durable.
    const heads: Array<[ChannelEntry, number]> = [];
    for (const name of touched.keys()) {
      const entry = this.channelsByName.get(name);
      if (entry && entry.head > entry.durable) heads.push([entry, entry.head]);
    }
    if (!this.durability) {
      this.settle(batch, results, heads);
      return;
    }
    this.durability.afterWrites().then(
      () => this.settle(batch, results, heads),
      (error: unknown) => {
        for (const pending of batch) pending.reject(error);
      },
    );
  }

  /** SQLite's own checkpoint back on, and the thread asked for this commit's. Never throws: the batch is committed. */
  private afterWideCommit(): void {
    try {
      this.db.pragma(`wal_autocheckpoint = ${this.autocheckpointPages}`);
    } catch {
      // A connection that refuses a pragma fails its next statement too, and that failure reaches its caller.
    }
    this.checkpoints!.request();
  }

  private settle(batch: Pending[], results: Array<AppendResult | { error: unknown }>, heads: Array<[ChannelEntry, number]>): void {
    for (const [entry, head] of heads) if (head > entry.durable) entry.durable = head;
    for (let i = 0; i < batch.length; i++) {
      const result = results[i]!;
      if ('error' in result) batch[i]!.reject(result.error);
      else batch[i]!.resolve(result);
    }
    this.evictIdle();
  }

  /**
   * Drops entries over the bound, oldest first, except those used since the last pass (they get a second chance).
   * Never inside a transaction (a flush's entries carry uncommitted heads until it ends), never a pinned entry,
   * never one whose head is not yet durable (reloaded, it would show readers the events still waiting for their
   * sync), and never `keep`.
   */
  private evictIdle(keep?: ChannelEntry): void {
    if (this.channelsByName.size <= this.maxCachedChannels || !this.db.open || this.db.inTransaction) return;
    // Each entry is looked at once per pass (an entry given its second chance comes round again at the end).
    let left = this.channelsByName.size;
    for (const [name, entry] of this.channelsByName) {
      if (this.channelsByName.size <= this.maxCachedChannels || left-- === 0) break;
      // `keep`: the entry its caller just loaded, and is about to use (a trim pins it only once it has it).
      if (entry.pins > 0 || entry.durable < entry.head || entry === keep) continue;
      if (entry.used) {
        entry.used = false;
        this.channelsByName.delete(name);
        this.channelsByName.set(name, entry);
        continue;
      }
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

  /**
   * A request whose only write is one event's INSERT: no idempotency key to read or store, and a channel whose entry
   * is in memory, so no channel row to create. Anything else runs in a savepoint of its own, which a multi-row INSERT
   * needs (see EventRowWriter): one event is never more than one row.
   */
  private isOneStatement(request: AppendRequest): boolean {
    return request.idempotencyKey === undefined && request.events.length === 1 && this.channelsByName.has(request.events[0]!.channel);
  }

  private applyRequest(request: AppendRequest, undo: Undo): AppendResult {
    const key = request.idempotencyKey;
    if (key !== undefined) {
      const previous = this.stmt.idempotencyGet.get(key);
      if (previous) {
        // Found by position, as generated ids are not indexed; an event trimmed since is left out, as it always was.
        // Every record has them: schema 8 filled those written before, and every one since is written with them.
        const positions = JSON.parse(previous.positions) as Array<[number, number]>;
        const events = positions
          .map(([cid, seq]) => this.stmt.eventAt.get(cid, seq))
          .filter((row): row is EventRow => row !== undefined)
          .map((row) => this.toEvent(row));
        return { events, created: events.map(() => false), replayed: true };
      }
    }
    const events: HeraldEvent[] = [];
    const created: boolean[] = [];
    const positions: Array<[number, number]> = [];
    // A batch names few channels many times: look each up (and move it in the eviction order) once per request.
    // Heads move only once every row is written: a request that fails part way leaves them as they were.
    const slots = new Map<string, { entry: ChannelEntry; head: number }>();
    const rows = this.rows;
    try {
      for (const input of request.events) {
        let slot = slots.get(input.channel);
        if (!slot) {
          const entry = this.channelForWrite(input.channel, undo);
          slots.set(input.channel, (slot = { entry, head: entry.head }));
        }
        const seq = slot.head + 1;
        const data = dataText(input.data);
        const meta = metaText(input.meta);
        if (!indexesId(input)) {
          rows.queueGenerated(slot.entry.cid, seq, input.id, input.type, input.time, data, meta);
        } else if (!rows.insertChosen(slot.entry.cid, seq, input.id, input.type, input.time, data, meta)) {
          const original = this.stmt.eventByChosenId.get(input.id)!;
          if (original.cid !== slot.entry.cid) {
            throw new HeraldError('event_id_conflict', `Event id ${input.id} is already used on another channel.`);
          }
          events.push(this.toEvent(original));
          created.push(false);
          positions.push([original.cid, original.seq]);
          continue;
        }
        slot.head = seq;
        events.push(toEvent(input, seq));
        created.push(true);
        positions.push([slot.entry.cid, seq]);
      }
      rows.flush();
    } catch (error) {
      rows.discard();
      throw error;
    }
    if (key !== undefined) {
      this.stmt.idempotencyPut.run(key, JSON.stringify(events.map((e) => e.id)), JSON.stringify(positions), Date.now());
    }
    for (const slot of slots.values()) slot.entry.head = slot.head;
    return { events, created, replayed: false };
  }

  private channelForWrite(name: string, undo: Undo): ChannelEntry {
    let entry = this.loadChannel(name);
    if (!entry) {
      const info = this.stmt.insertChannel.run(name, this.storeEpoch);
      entry = { cid: Number(info.lastInsertRowid), name, epoch: this.storeEpoch, head: 0, trimmed: 0, durable: 0, pins: 0, used: false };
      this.channelsByName.set(name, entry);
      this.channelsById.set(entry.cid, entry);
      if (!undo.has(name)) undo.set(name, null);
    } else if (!undo.has(name)) {
      undo.set(name, { ...entry });
    }
    return entry;
  }

  /** `touch`: counts as a use for eviction (a retention pass, which visits every channel, does not). */
  private loadChannel(name: string, touch = true): ChannelEntry | undefined {
    const cached = this.channelsByName.get(name);
    if (cached) {
      if (touch) cached.used = true;
      return cached;
    }
    const row = this.stmt.channelByName.get(name);
    if (!row) return undefined;
    // Loaded only while nothing of this channel waits for a sync (see evictIdle): all of it is durable.
    const head = Math.max(this.stmt.maxSeq.get(row.cid)?.head ?? row.trimmed, row.trimmed);
    const entry: ChannelEntry = { cid: row.cid, name, epoch: row.epoch, head, trimmed: row.trimmed, durable: head, pins: 0, used: false };
    this.channelsByName.set(name, entry);
    this.channelsById.set(entry.cid, entry);
    this.evictIdle(entry);
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
    return { head: entry.durable, trimmed: entry.trimmed, epoch: entry.epoch };
  }

  async read(channel: string, after: number, limit: number, maxBytes?: number): Promise<ReadResult> {
    this.assertOpen();
    const { entry, from, state } = this.readRange(channel, after);
    const events = entry && from < state.head ? this.readRows(entry.cid, from, state.head, limit, maxBytes).map((row) => this.toEvent(row)) : [];
    return { events, ...state };
  }

  async stubs(channel: string, after: number, limit: number): Promise<StubPage> {
    this.assertOpen();
    const { entry, from, state } = this.readRange(channel, after);
    const stubs = entry && from < state.head ? this.stmt.stubsAfter.all(entry.cid, from, state.head, limit) : [];
    return { stubs, ...state };
  }

  /** Where a read after `after` starts, and the channel's state it answers with. */
  private readRange(channel: string, after: number): { entry: ChannelEntry | undefined; from: number; state: ChannelState & { truncated: boolean } } {
    const entry = this.loadChannel(channel);
    if (!entry) return { entry, from: 0, state: { head: 0, trimmed: 0, epoch: this.storeEpoch, truncated: after > 0 } };
    // Readers see the durable head: events committed but still waiting for their sync are not there yet.
    const head = entry.durable;
    const truncated = after < entry.trimmed || after > head;
    return { entry, from: truncated ? entry.trimmed : after, state: { head, trimmed: entry.trimmed, epoch: entry.epoch, truncated } };
  }

  /** Rows one at a time when a byte bound applies, so the rows past it are never loaded. */
  private readRows(cid: number, from: number, head: number, limit: number, maxBytes: number | undefined): EventRow[] {
    if (maxBytes === undefined) return this.stmt.readAfter.all(cid, from, head, limit);
    const rows: EventRow[] = [];
    let bytes = 0;
    for (const row of this.stmt.readAfter.iterate(cid, from, head, limit)) {
      rows.push(row);
      // Bytes as stored (UTF-8), as PostgreSQL's octet_length() counts them: a string's length undercounts non-ASCII text.
      bytes += Buffer.byteLength(row.data) + (row.meta === null ? 0 : Buffer.byteLength(row.meta));
      if (bytes >= maxBytes) break;
    }
    return rows;
  }

  async head(channel: string): Promise<ChannelState> {
    this.assertOpen();
    return this.state(channel);
  }

  async trim(channel: string, policy: TrimPolicy): Promise<number> {
    this.assertOpen();
    const wasCached = this.channelsByName.has(channel);
    const entry = this.loadChannel(channel, false);
    if (!entry) return 0;
    // Pinned while the trim runs: its chunks commit `trimmed` one by one, and readers must see each.
    entry.pins++;
    try {
      return await this.trimEntry(entry, policy);
    } finally {
      entry.pins--;
      // A retention pass visits every channel: do not let it push the channels in use out of memory.
      const idle = entry.pins === 0 && entry.durable === entry.head;
      if (!wasCached && idle && this.channelsByName.get(channel) === entry && !this.db.inTransaction) this.forget(channel, entry);
    }
  }

  private async trimEntry(entry: ChannelEntry, policy: TrimPolicy): Promise<number> {
    let cutoff = entry.trimmed;
    if (policy.maxEvents !== undefined) cutoff = Math.max(cutoff, entry.durable - policy.maxEvents);
    if (policy.olderThan !== undefined) {
      cutoff = Math.max(cutoff, this.stmt.lastSeqBefore.get(entry.cid, policy.olderThan)?.seq ?? 0);
    }
    // Never past what readers can see: an event waiting for its sync is not trimmed before anyone could read it.
    cutoff = Math.min(cutoff, Math.max(entry.trimmed, entry.durable));
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

  async channels({ after = '', prefix = '', limit }: ChannelPage): Promise<string[]> {
    this.assertOpen();
    const end = channelRangeEnd(prefix);
    const rows = after >= prefix ? this.stmt.channelNamesAfter.all(after, end, limit) : this.stmt.channelNamesFrom.all(prefix, end, limit);
    return rows.map((r) => r.name);
  }

  async ping(): Promise<void> {
    this.assertOpen();
    // /readyz pings: after a failed sync nothing can be acknowledged until a restart, so the store is not ready.
    if (this.durability?.failure) throw this.durability.failure;
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
    this.flush(true);
    this.closed = true;
    // Every queued append is answered before the caller closes the database.
    await this.durability?.drained();
  }

  private assertOpen(): void {
    if (this.closed) throw new HeraldError('unavailable', 'The store is closed.');
  }
}

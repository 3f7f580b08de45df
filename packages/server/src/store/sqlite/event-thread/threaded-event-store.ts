import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
import { HeraldError } from '@herald/protocol';
import type { AppendRequest, AppendResult, ChannelPage, ChannelState, EventStore, ReadResult, StubPage, TrimPolicy } from '../../types.js';
import { eventFromInput } from '../../rows.js';
import type { CheckpointFailureListener } from '../checkpointer.js';
import { fromWire, packEvents, type PackedEvents, type AppendReply, type Call, type Operation, type Post, type ThreadDiagnostics, type ThreadOptions } from './protocol.js';

/** The thread's program: this module's sibling, as .js when built and as .ts when run from source (through tsx). */
const WORKER_URL = new URL(`./worker${import.meta.url.slice(import.meta.url.lastIndexOf('.'))}`, import.meta.url);

/**
 * Started by an import, not as the worker's main script, which Node loads itself. From source, the thread first
 * registers tsx: on Node 20 a worker runs none of the `--import` loaders of the process that started it.
 */
function workerSource(): string {
  const program = `import(${JSON.stringify(WORKER_URL.href)})`;
  if (!WORKER_URL.pathname.endsWith('.ts')) return program;
  const tsx = import.meta.resolve('tsx/esm/api');
  return `import(${JSON.stringify(tsx)}).then(({ register }) => { register(); return ${program}; })`;
}

/**
 * Calls are posted together once per turn of the event loop, or at once when they carry this many events, or when
 * the thread has nothing to do. Posting each at once cost single publishes a sixth of their CPU (a post wakes the
 * other thread); posting only once per turn held a turn's batches back until all were parsed, so the thread sat
 * idle while this one parsed, then this one while the thread committed (bench:publish, batches of 100: 1,600 to
 * 1,900 requests/s posted per turn, 2,500 to 2,900 posted at 100 events).
 */
const POST_AT_EVENTS = 100;

export interface ThreadedEventStoreOptions extends ThreadOptions {
  /** Told of each commit on the thread: how many requests it carried and how long it took. */
  onCommit?: ((writes: number, seconds: number) => void) | undefined;
  onCheckpointFailure?: CheckpointFailureListener | undefined;
  /** Told once, when the thread fails or ends other than by close(): the store refuses everything from then on. */
  onThreadFailure?: ((error: Error) => void) | undefined;
}

interface Waiting {
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  /** An append: if the thread stops before it answers, the append may have been committed, or not. */
  writes: boolean;
}

/**
 * The SQLite event store (SqliteEventStore) on a thread of its own, with its own connection: its inserts, commits
 * and reads run beside the event loop instead of on it. better-sqlite3 is synchronous, so in the server's thread
 * every append's SQLite work (a third of a batched publish's CPU, bench:publish) stopped everything else; on its own
 * thread it runs on the machine's other core while this one parses, validates and answers.
 *
 * Nothing about the store changes: the same class, on the same file, with the same WAL sync and checkpoints, is the
 * only writer of events, and answers an append only once it is durable. This thread serializes each event's data and
 * meta (once, as the store would have) and sends texts; an append comes back as seqs, and the events are built here
 * around the caller's own data objects, as the store builds them. Calls made in one turn of the event loop cross in
 * one message, and so do the answers, so a commit of many appends costs a message each way, not one per append.
 */
export class ThreadedEventStore implements EventStore {
  private readonly waiting = new Map<number, Waiting>();
  private nextId = 0;
  private outbox: Call[] = [];
  private outboxEvents = 0;
  private posting = false;
  /** Set once the thread has failed or ended: every call is refused with it. */
  private failure: Error | undefined;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly worker: Worker,
    private readonly options: ThreadedEventStoreOptions,
  ) {
    worker.on('message', (post: Post) => this.received(post));
    worker.on('error', (error) => this.fail(error));
    worker.on('exit', (code) => this.fail(new Error(`the event store's thread ended (exit code ${code})`)));
    // Idle, the thread keeps no process alive; a call waiting for it does (see call()).
    worker.unref();
  }

  /** Starts the thread; rejects with what stopped it opening the database. */
  static async start(options: ThreadedEventStoreOptions): Promise<ThreadedEventStore> {
    const { onCommit: _onCommit, onCheckpointFailure: _onCheckpointFailure, onThreadFailure: _onThreadFailure, ...threadOptions } = options;
    const worker = new Worker(workerSource(), { eval: true, workerData: threadOptions });
    // Rejects with the thread's error, if it fails to open the database instead.
    const [first] = (await once(worker, 'message')) as [unknown];
    if (first !== 'ready') {
      await worker.terminate();
      throw new Error(`the event store's thread sent ${String(first)} first`);
    }
    return new ThreadedEventStore(worker, options);
  }

  append(request: AppendRequest): Promise<AppendResult> {
    let packed: PackedEvents;
    try {
      packed = packEvents(request.events);
    } catch (error) {
      // Data JSON cannot hold (a BigInt, a cycle): refused as the store would refuse it, with nothing written.
      return Promise.reject(error);
    }
    return this.call<AppendReply>('append', [packed, request.idempotencyKey], request.events.length).then((reply) => {
      if (reply.replayed) return { events: reply.events, created: reply.events.map(() => false), replayed: true };
      const events = request.events.map((input, i) => (reply.created[i] ? eventFromInput(input, reply.seqs[i]!) : reply.originals![i]!));
      return { events, created: reply.created, replayed: false };
    });
  }

  read(channel: string, after: number, limit: number, maxBytes?: number): Promise<ReadResult> {
    return this.call('read', [channel, after, limit, maxBytes]);
  }

  stubs(channel: string, after: number, limit: number): Promise<StubPage> {
    return this.call('stubs', [channel, after, limit]);
  }

  head(channel: string): Promise<ChannelState> {
    return this.call('head', [channel]);
  }

  trim(channel: string, policy: TrimPolicy): Promise<number> {
    return this.call('trim', [channel, policy]);
  }

  expireIdempotencyKeys(olderThan: number): Promise<number> {
    return this.call('expireIdempotencyKeys', [olderThan]);
  }

  channels(page: ChannelPage): Promise<string[]> {
    return this.call('channels', [page]);
  }

  ping(): Promise<void> {
    return this.call('ping', []);
  }

  probeWrite(): Promise<void> {
    return this.call('probeWrite', []);
  }

  diagnostics(): Promise<ThreadDiagnostics> {
    return this.call('diagnostics', []);
  }

  /** Commits and answers whatever is queued, closes the thread's database, and ends the thread. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        if (!this.failure) await this.call('close', []);
      } finally {
        this.failure ??= new HeraldError('unavailable', 'The store is closed.');
        // Even when its close failed: the thread, and the connection it holds, end with the store.
        await this.worker.terminate();
      }
    })();
    return this.closing;
  }

  private call<T>(op: Operation, args: unknown[], events = 0): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<T>((resolve, reject) => {
      const id = ++this.nextId;
      const idle = this.waiting.size === 0;
      if (idle) this.worker.ref();
      this.waiting.set(id, { resolve: resolve as (value: unknown) => void, reject, writes: op === 'append' });
      this.outbox.push({ id, op, args });
      this.outboxEvents += events;
      if (idle || this.outboxEvents >= POST_AT_EVENTS) this.post();
      else if (!this.posting) {
        this.posting = true;
        setImmediate(() => {
          this.posting = false;
          this.post();
        });
      }
    });
  }

  private post(): void {
    const calls = this.outbox;
    this.outbox = [];
    this.outboxEvents = 0;
    if (calls.length > 0) this.worker.postMessage(calls);
  }

  private received(post: Post): void {
    for (const [writes, seconds] of post.commits) this.options.onCommit?.(writes, seconds);
    for (const [error, givenUp] of post.checkpointFailures) {
      try {
        this.options.onCheckpointFailure?.(fromWire(error), givenUp);
      } catch {
        // A listener's fault is no answer's.
      }
    }
    for (const reply of post.replies) {
      const waiting = this.waiting.get(reply.id);
      if (!waiting) continue;
      this.waiting.delete(reply.id);
      if ('error' in reply) waiting.reject(fromWire(reply.error));
      else waiting.resolve(reply.ok);
    }
    if (this.waiting.size === 0) this.worker.unref();
  }

  /** The thread failed or ended: nothing waiting will be answered, and nothing more can be asked. */
  private fail(cause: Error): void {
    if (this.failure && this.waiting.size === 0) return;
    const first = this.failure === undefined;
    if (first) {
      const failure = new HeraldError('unavailable', `The event store's thread stopped: ${cause.message}`);
      failure.cause = cause;
      this.failure = failure;
    }
    this.outbox = [];
    // An append the thread took may be committed and synced, its answer lost with the thread: as PostgreSQL's
    // lost COMMIT answers (store/postgres/database.ts), not "nothing was written", or a retry without a key writes
    // it twice.
    const unknown = new HeraldError(
      'store_unavailable',
      "The event store's thread stopped while it appended: the events may have been written, or not. Retry with the same Idempotency-Key (or the same event ids), which answers with what was written if it was; a retry without them may write it twice.",
      { outcome: 'unknown' },
    );
    unknown.cause = this.failure;
    for (const waiting of this.waiting.values()) waiting.reject(waiting.writes ? unknown : this.failure);
    this.waiting.clear();
    this.worker.unref();
    if (!first) return;
    try {
      this.options.onThreadFailure?.(this.failure!);
    } catch {
      // A listener's fault changes nothing here.
    }
  }
}

import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * Channels a commit must touch for its checkpoint to run off the event loop. Such a commit writes about a page of
 * the (channel, seq) index per channel, so a commit of events spread over 1,000 channels (one per user, say) is
 * past SQLite's 1,000-page checkpoint on its own, and that checkpoint would copy every one of those pages into the
 * database, and sync it, inside the COMMIT, on the event loop.
 */
export const WIDE_COMMIT_CHANNELS = 64;

/** Failed checkpoints in a row after which the thread is given up and wide commits checkpoint themselves again. */
export const MAX_FAILED_CHECKPOINTS = 3;

/**
 * The worker's whole program, as text (`eval`): no file has to be found beside this module, whether it runs built
 * or from source. One PASSIVE checkpoint per message, on a connection of its own; at `synchronous=NORMAL` a
 * checkpoint syncs the WAL before it copies anything into the database, and the database after.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file);
db.pragma('busy_timeout = 0');
db.pragma('synchronous = NORMAL');
db.pragma('wal_autocheckpoint = 0');
parentPort.on('message', (message) => {
  if (message === 'close') {
    db.close();
    parentPort.close();
    return;
  }
  try {
    const [result] = db.pragma('wal_checkpoint(PASSIVE)');
    if (result.busy) parentPort.postMessage({ busy: true });
    else parentPort.postMessage({ log: result.log, checkpointed: result.checkpointed });
  } catch (error) {
    parentPort.postMessage({ error: String((error && error.message) || error) });
  }
});
`;

/**
 * Told of each failed checkpoint (an error, a busy result, a thread that cannot start or ended), and whether the
 * thread is given up with it. openSqliteStorage counts each in `herald_store_checkpoint_failures_total`.
 */
export type CheckpointFailureListener = (error: Error, givenUp: boolean) => void;

/** What a background checkpoint reports: frames in the WAL, and how many of them are in the database now. */
export interface CheckpointResult {
  log: number;
  checkpointed: number;
}

/**
 * Checkpoints the WAL on a thread of its own after wide commits (see {@link WIDE_COMMIT_CHANNELS}); the event store
 * turns SQLite's own checkpoint off for those commits. Measured with batches of 1,000 events to 1,000 channels:
 * 112,000 to 123,000 events/s against 84,000 to 102,000 with the checkpoint in the COMMIT. For narrow commits SQLite's
 * own stays cheaper (a thread for every checkpoint cost `bench:publish`'s 4-channel batches 6 to 10% more CPU).
 *
 * SQLite starts the WAL file over only when a write begins with every frame copied, which a checkpoint racing
 * steady writes on another thread would seldom leave; the file would grow. So the event store holds its commits
 * while one runs (as it holds them while a WAL sync runs): the event loop stays free, appends wait for the copy,
 * and the next commit starts the file over. One starts as soon as a wide commit asks (waiting to gather several
 * measured the same, and left the WAL past SQLite's threshold meanwhile, for the store's other connections to
 * checkpoint in their COMMITs); while it runs, those connections' own checkpoints find it busy and skip.
 * The thread starts with the first wide commit, and is given up if it cannot start or keeps failing.
 */
/** A checkpoint that found another one running (SQLite's `busy`). */
class CheckpointBusy extends Error {
  constructor() {
    super('another checkpoint was running');
  }
}

export class Checkpointer {
  private worker: Worker | undefined;
  private pending: ((result: CheckpointResult | Error) => void) | undefined;
  private current: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private exited = false;
  private failures = 0;
  private toldGivenUp = false;
  /** The last checkpoint's failure, until one succeeds. */
  lastError: Error | undefined;
  /** What the last checkpoint that succeeded reported. */
  lastResult: CheckpointResult | undefined;
  /** Checkpoints started so far. */
  runs = 0;

  constructor(
    private readonly file: string,
    private readonly onFailure: CheckpointFailureListener = () => {},
  ) {}

  /** Whether it still runs checkpoints (not closed, not given up); if not, SQLite's own must. */
  get available(): boolean {
    return this.closing === undefined && !this.exited && this.failures < MAX_FAILED_CHECKPOINTS;
  }

  /** Whether a checkpoint is running now. */
  get running(): boolean {
    return this.current !== undefined;
  }

  /** Resolves once no checkpoint is running. */
  idle(): Promise<void> {
    return this.current ?? Promise.resolve();
  }

  /** Starts one, unless one is running or it is no longer available. Never throws. */
  request(): void {
    if (!this.available || this.current) return;
    let worker: Worker;
    try {
      worker = this.worker ??= this.spawn();
    } catch (error) {
      // A thread that cannot start (a permission model without --allow-worker, say): SQLite's own checkpoints it is.
      this.exited = true;
      this.failed(error as Error);
      return;
    }
    this.runs += 1;
    // Kept alive while it runs: commits wait for its answer.
    worker.ref();
    this.current = new Promise<CheckpointResult | Error>((resolve) => {
      this.pending = resolve;
      worker.postMessage('checkpoint');
    }).then((result) => {
      worker.unref();
      this.current = undefined;
      if (result instanceof CheckpointBusy) {
        // Another connection's checkpoint holds the lock: it is copying the same frames, so nothing failed. Counted
        // as a failure, three in a row under steady load gave the thread up for good (and logged each at warn).
        this.lastError = result;
      } else if (result instanceof Error) {
        this.failures += 1;
        this.failed(result);
      } else {
        this.failures = 0;
        this.lastError = undefined;
        this.lastResult = result;
      }
    });
  }

  private failed(error: Error): void {
    this.lastError = error;
    // Closing ends the thread too: that is no failure, and nothing is told. A thread already given up (three
    // failures, then its end) is told of once.
    if (this.closing !== undefined || this.toldGivenUp) return;
    const givenUp = !this.available;
    this.toldGivenUp = givenUp;
    try {
      this.onFailure(error, givenUp);
    } catch {
      // A listener's fault must not leave commits held behind this checkpoint.
    }
  }

  private spawn(): Worker {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { file: this.file, driver } });
    // A store left open must not keep the process alive while no checkpoint runs.
    worker.unref();
    worker.on('message', (message: CheckpointResult | { error: string } | { busy: true }) =>
      this.settle('error' in message ? new Error(message.error) : 'busy' in message ? new CheckpointBusy() : message),
    );
    let failure: Error | undefined;
    worker.on('error', (error) => (failure = error));
    // Ended, by close or by a failure: nothing will answer again, so nothing may wait for it. Ended while idle, it
    // is given up all the same, and told as a failure (the one running, if any, reports it when it settles).
    worker.on('exit', () => {
      this.exited = true;
      const error = failure ?? new Error('the checkpoint thread ended');
      if (this.pending) this.settle(error);
      else this.failed(error);
    });
    return worker;
  }

  private settle(result: CheckpointResult | Error): void {
    const resolve = this.pending;
    this.pending = undefined;
    resolve?.(result);
  }

  /** Waits for a running checkpoint, then closes the thread's connection and ends the thread. */
  close(): Promise<void> {
    return (this.closing ??= this.shut());
  }

  private async shut(): Promise<void> {
    await this.current;
    const worker = this.worker;
    if (!worker || this.exited) return;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    // Alive until it has closed its connection: the last connection to close is the one that cleans the WAL up.
    worker.ref();
    worker.postMessage('close');
    await exited;
  }
}

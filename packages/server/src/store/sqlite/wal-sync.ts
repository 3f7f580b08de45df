import { closeSync, fdatasync, fdatasyncSync, fstatSync, openSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { HeraldError } from '@herald/protocol';

/**
 * Makes committed SQLite transactions durable without blocking the event loop.
 *
 * In WAL mode a transaction is committed once its frames (the last one
 * marked as a commit) are written to the `-wal` file, and durable once those
 * bytes are on stable storage. `synchronous=FULL` gets there by calling
 * fdatasync() inside COMMIT, on the thread that runs it: with
 * better-sqlite3 that is the event loop, which then sits idle for the whole
 * flush to disk (milliseconds on ordinary disks) while requests wait. The
 * append connection runs at `synchronous=NORMAL` instead (COMMIT only
 * write()s; the WAL is still synced before every checkpoint and the database
 * after it, so nothing is ever checkpointed from a WAL that is not on disk),
 * and this class fdatasync()s the same `-wal` file on libuv's thread pool.
 * fdatasync() flushes the file, not one descriptor, so our own descriptor
 * covers SQLite's writes. Callers acknowledge a write only after
 * {@link afterWrites} resolves, which gives the guarantee FULL gives: a 2xx
 * survives a power loss, not only a `kill -9`.
 *
 * Up to `maxInFlight` syncs run at once, each started right after a commit,
 * so a commit waits for one sync rather than for the end of a running one and
 * then its own. Beyond that, callers join the next sync to start (and the
 * event store holds its commits back until one ends, so they become one
 * transaction). A sync covers everything written before it began, so when one
 * completes, every caller of the syncs started before it is done too,
 * whichever order the kernel finishes them in.
 */
/**
 * Syncs of the WAL run at once by default (`store.syncsInFlight`). One: measured with bench:publish on a 2-core
 * machine whose fdatasync() takes 0.3 ms, against 3 (the earlier default, chosen on a disk that took 5 to 15 ms),
 * single publishes answered 8 to 20% more requests per second for 5 to 12% less CPU per request, at 4, 16 and 64
 * connections, with the same p99: each sync is a journal commit that costs the kernel CPU, and while one runs the
 * commits that wait for it become one transaction and share the next. More than one can help where a sync takes
 * milliseconds; at most 3 (syncs run on libuv's thread pool, 4 threads unless UV_THREADPOOL_SIZE says otherwise, so
 * one thread always stays free for other file work; endpoint host lookups take what is left, at least one, through
 * delivery/lookup-gate.ts).
 */
export const DEFAULT_SYNCS_IN_FLIGHT = 1;
export const MAX_SYNCS_IN_FLIGHT = 3;

interface Waiter {
  resolve: () => void;
  reject: (error: unknown) => void;
}

interface Sync {
  callers: Waiter[];
  /** The descriptor slot this sync runs on. */
  slot: number;
}

export class WalSync {
  /**
   * One descriptor per sync slot. Linux reports a writeback error to each open file description once: with one
   * descriptor shared by concurrent syncs, only the first would see it and another could succeed over pages that
   * were lost. Each slot's descriptor is opened at start-up, so it sees every error from then on.
   */
  private readonly fds: Array<number | undefined>;
  private readonly busy = new Set<number>();
  /** The running syncs, oldest first, each with the callers it answers. */
  private readonly running: Sync[] = [];
  /** Callers waiting for the next sync to start (all syncs are running). */
  private waiting: Waiter[] = [];
  private idle: Array<() => void> = [];
  /** Set by a failed sync: the kernel may have dropped the dirty pages, so no later sync can vouch for them. */
  private failed: Error | undefined;
  /** Syncs started so far, after the one at start-up. */
  started = 0;

  constructor(
    private readonly walFile: string,
    private readonly maxInFlight = DEFAULT_SYNCS_IN_FLIGHT,
  ) {
    this.fds = Array.from({ length: maxInFlight }, () => undefined);
    for (let slot = 0; slot < maxInFlight; slot++) this.reopen(slot);
    // Whatever a previous process committed but never synced becomes durable before anyone reads it.
    fdatasyncSync(this.fds[0]!);
    // The WAL's directory entry too, once: the file may have been created by this start.
    const dir = openSync(dirname(walFile), 'r');
    try {
      fdatasyncSync(dir);
    } finally {
      closeSync(dir);
    }
  }

  /** Whether every sync slot is taken: a commit now would wait for a slot anyway. */
  get syncing(): boolean {
    return this.running.length >= this.maxInFlight;
  }

  get failure(): Error | undefined {
    return this.failed;
  }

  /** Resolves once everything written to the WAL before this call is on stable storage. */
  afterWrites(): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      if (!this.syncing) this.start();
    });
  }

  /** Resolves when no sync is running (for close, and for commits held back while every slot is taken). */
  drained(): Promise<void> {
    if (this.running.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  close(): void {
    for (let slot = 0; slot < this.fds.length; slot++) this.closeSlot(slot);
  }

  private start(): void {
    let slot = 0;
    while (this.busy.has(slot)) slot++;
    this.busy.add(slot);
    this.started += 1;
    const sync: Sync = { callers: this.waiting, slot };
    this.waiting = [];
    this.running.push(sync);
    let fd: number;
    try {
      fd = this.currentFd(slot);
    } catch (error) {
      this.finish(sync, error as Error);
      return;
    }
    fdatasync(fd, (error) => this.finish(sync, error ?? undefined));
  }

  private finish(sync: Sync, error: Error | undefined): void {
    this.busy.delete(sync.slot);
    if (error && !this.failed) {
      this.failed = new HeraldError(
        'store_unavailable',
        `Syncing ${this.walFile} to disk failed (${error.message}): appends are refused until Herald restarts. Events of the requests that failed with this may or may not be in the log.`,
        { reason: 'sync_failed' },
      );
      this.failed.cause = error;
    }
    // This sync covers what the ones started before it were asked to cover: they are done too.
    const done = this.running.splice(0, this.running.indexOf(sync) + 1);
    for (const { callers } of done) {
      for (const caller of callers) {
        if (this.failed) caller.reject(this.failed);
        else caller.resolve();
      }
    }
    if (this.waiting.length > 0 && !this.syncing) this.start();
    if (this.running.length > 0) return;
    const idle = this.idle;
    this.idle = [];
    for (const resolve of idle) resolve();
  }

  /**
   * Our descriptor, reopened if the WAL was replaced. SQLite deletes the WAL only when its last connection
   * closes, which never happens while the store is open, so this is a safeguard that costs a stat() and an fstat() per sync.
   */
  private currentFd(slot: number): number {
    const fd = this.fds[slot];
    if (fd === undefined || statSync(this.walFile).ino !== fstatSync(fd).ino) this.reopen(slot);
    return this.fds[slot]!;
  }

  private reopen(slot: number): void {
    this.closeSlot(slot);
    this.fds[slot] = openSync(this.walFile, 'r');
  }

  private closeSlot(slot: number): void {
    const fd = this.fds[slot];
    if (fd !== undefined) closeSync(fd);
    this.fds[slot] = undefined;
  }
}

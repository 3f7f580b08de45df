import type { Database } from 'better-sqlite3';

interface Op {
  fn: () => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/**
 * Runs small writes together: every write queued in one turn of the event
 * loop shares one transaction and one fsync, each in its own savepoint so a
 * failing write fails alone. The promise resolves after the commit.
 */
export class GroupCommit {
  private queue: Op[] = [];
  private scheduled = false;
  private readonly flushTxn: (ops: Op[]) => Array<{ ok: unknown } | { error: unknown }>;

  constructor(db: Database) {
    const one = db.transaction((op: Op) => op.fn());
    this.flushTxn = db.transaction((ops: Op[]) =>
      ops.map((op) => {
        try {
          return { ok: one(op) };
        } catch (error) {
          // A full disk (SQLITE_FULL) may roll back the whole transaction: then every op in it failed.
          if (!db.inTransaction) throw error;
          return { error };
        }
      }),
    );
  }

  run<T>(fn: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ fn, resolve: resolve as (v: unknown) => void, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Commits whatever is queued now; also used at close. */
  flush(): void {
    this.scheduled = false;
    const ops = this.queue;
    this.queue = [];
    if (ops.length === 0) return;
    let results: Array<{ ok: unknown } | { error: unknown }>;
    try {
      results = this.flushTxn(ops);
    } catch (error) {
      for (const op of ops) op.reject(error);
      return;
    }
    results.forEach((r, i) => ('error' in r ? ops[i]!.reject(r.error) : ops[i]!.resolve(r.ok)));
  }
}

import type { Database, Statement } from 'better-sqlite3';

/** Columns of one event row, in the statements' order; `chosen` (last) is 1 for an id the publisher chose. */
type Row = [cid: number, seq: number, id: string, type: string, time: number, data: string, meta: string | null, chosen: 0 | 1];
const COLUMNS = 8;

/**
 * Rows per INSERT for events with generated ids. bench/sqlite-floor.ts, 100-event batches: one INSERT per row
 * 2.73–2.83 µs per event; 4 rows 2.51–2.79; 8 rows 2.35–2.46; 16 rows 2.27–2.37; 32 rows 2.28–2.45; 100 rows
 * 2.54–2.58. Each statement run pays binding, a step and a reset, and hands back an object; past 16 rows the
 * statement's own size costs more than that saves.
 *
 * The statements are INSERT OR IGNORE. A statement that writes several rows and could stop part way needs a
 * statement journal to take back the rows before, and inside a savepoint (each request's, see SqliteEventStore)
 * keeping one cost more than the rows saved: 3.9 µs per event against 3.1 for one row at a time. One that cannot
 * fail on a constraint needs none (2.7 µs). No row of these can break one (the id is not indexed, the seq is the
 * channel's next), so a row skipped would be a fault of Herald's: the count of rows written finds it, and the
 * error fails the request, whose savepoint takes back the rest.
 */
export const ROWS_PER_INSERT = 16;

const valuesFor = (rows: number) => Array.from({ length: rows }, () => '(?, ?, ?, ?, ?, ?, ?, ?)').join(', ');
const INTO_EVENTS = 'INTO events (cid, seq, id, type, time, data, meta, chosen) VALUES';

/**
 * How one event is written: its id, when the publisher chose it, may already be in the log, which the
 * partial unique index over chosen ids finds and the statement then skips (no row changed).
 */
const INSERT_EVENT_SQL = `INSERT ${INTO_EVENTS} ${valuesFor(1)} ON CONFLICT (id) WHERE chosen = 1 DO NOTHING`;

/**
 * Writes one request's event rows. A row with a chosen id is written at once (its caller learns whether it was a
 * duplicate); rows with generated ids, whose ids no index holds and so can never be duplicates, are queued and
 * written {@link ROWS_PER_INSERT} to a statement. Shared with bench/sqlite-floor.ts, so SQLite is timed alone doing
 * what Herald does.
 *
 * A statement of several rows keeps no statement journal (see above): when it fails, the rows it wrote before the
 * failure stay until the caller's savepoint or transaction is rolled back. So more than one row may be queued only
 * inside a savepoint of the request's own (the event store runs a one-event request without one).
 */
export class EventRowWriter {
  private readonly one: Statement<Row>;
  /** Multi-row statements by row count, prepared on first use (at most ROWS_PER_INSERT of them). */
  private readonly many: Array<Statement<[unknown[]]> | undefined> = [];
  private readonly queued: unknown[] = new Array<unknown>(ROWS_PER_INSERT * COLUMNS);
  private filled = 0;

  constructor(private readonly db: Database) {
    this.one = db.prepare(INSERT_EVENT_SQL);
  }

  /** Writes a row whose id the publisher chose; false when an event with that id is in the log (nothing written). */
  insertChosen(cid: number, seq: number, id: string, type: string, time: number, data: string, meta: string | null): boolean {
    this.flush();
    return this.one.run(cid, seq, id, type, time, data, meta, 1).changes > 0;
  }

  /** Queues a row whose id was generated; it is written once a statement's worth is queued, or by {@link flush}. */
  queueGenerated(cid: number, seq: number, id: string, type: string, time: number, data: string, meta: string | null): void {
    const q = this.queued;
    let k = this.filled;
    q[k++] = cid;
    q[k++] = seq;
    q[k++] = id;
    q[k++] = type;
    q[k++] = time;
    q[k++] = data;
    q[k++] = meta;
    q[k++] = 0;
    this.filled = k;
    if (k === q.length) this.flush();
  }

  /**
   * Writes every queued row. Emptied first: a statement that throws leaves nothing behind for the next request. Throws
   * when a row was skipped (OR IGNORE skips a row that breaks a constraint, a NOT NULL as well as the seq's index).
   */
  flush(): void {
    const count = this.filled / COLUMNS;
    if (count === 0) return;
    this.filled = 0;
    const values = count === ROWS_PER_INSERT ? this.queued : this.queued.slice(0, count * COLUMNS);
    try {
      const written = this.statementFor(count).run(values).changes;
      // A plain Error: the client is told only of an internal error, and the log gets this.
      if (written !== count) {
        throw new Error(`Only ${written} of ${count} event rows were written (from channel ${String(values[0])} seq ${String(values[1])}).`);
      }
    } finally {
      // Holds no request's data past its write.
      this.queued.fill(undefined);
    }
  }

  /** Forgets queued rows unwritten (their request failed). */
  discard(): void {
    this.filled = 0;
    this.queued.fill(undefined);
  }

  private statementFor(rows: number): Statement<[unknown[]]> {
    return (this.many[rows] ??= this.db.prepare(`INSERT OR IGNORE ${INTO_EVENTS} ${valuesFor(rows)}`));
  }
}

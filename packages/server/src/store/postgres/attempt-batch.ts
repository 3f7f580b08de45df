import type { AttemptOutcome } from '../types.js';
import { deliveryRowOf } from '../rows.js';
import { isUnavailable, type Database } from './database.js';

/** Outcomes written per statement at most; more wait for the next one. */
const MAX_BATCH = 500;

// Each delivery's new state (the latest outcome of a delivery, should one batch hold two), then every outcome's attempt
// row, for the deliveries updated only. An endpoint deleted while its delivery was being sent took its deliveries and
// their attempts with it, and a row written after would be an orphan nothing ever removes. The UPDATE's row lock
// orders this against that delete: taken first, the delete waits for this commit and its own statement for attempts
// then sees these rows; taken second, it waits for the delete and finds the delivery gone, so nothing is written.
const RECORD = `WITH updated AS (
                  UPDATE deliveries d SET status = u.status, attempts = u.attempts, next_attempt_at = u.next_attempt_at,
                    final_attempt = false, last_status_code = u.status_code, last_error = u.error,
                    payload = CASE WHEN u.status = 'succeeded' THEN NULL ELSE d.payload END
                  FROM unnest($7::bigint[], $8::text[], $9::int[], $10::bigint[], $11::int[], $12::text[])
                    AS u(n, status, attempts, next_attempt_at, status_code, error)
                  WHERE d.n = u.n
                  RETURNING d.n)
                INSERT INTO attempts (delivery, at, status_code, duration_ms, error, response_body)
                SELECT a.* FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::float8[], $5::text[], $6::text[])
                  AS a(delivery, at, status_code, duration_ms, error, response_body)
                WHERE a.delivery IN (SELECT n FROM updated)`;

interface Queued {
  outcome: AttemptOutcome;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Writes attempt outcomes in batches: one statement at a time, for every outcome that arrived while the previous
 * one ran. A node sending thousands of webhooks a second would otherwise make a round trip (and wake a PostgreSQL
 * backend) per attempt. Each caller's promise settles with its batch.
 */
export class AttemptBatch {
  private queue: Queued[] = [];
  private running = false;

  constructor(private readonly db: Database) {}

  record(outcome: AttemptOutcome): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ outcome, resolve, reject });
      if (!this.running) this.run();
    });
  }

  private run(): void {
    this.running = true;
    // The next turn of the event loop: outcomes of the same I/O phase join this statement.
    setImmediate(() => void this.drain());
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, MAX_BATCH);
      try {
        await this.db.query(RECORD, columns(batch.map((q) => q.outcome)));
        for (const q of batch) q.resolve();
      } catch (error) {
        if (batch.length === 1 || isUnavailable(error)) {
          for (const q of batch) q.reject(error);
          continue;
        }
        // Refused for something one outcome holds: write them one by one, so only that one fails.
        for (const q of batch) await this.db.query(RECORD, columns([q.outcome])).then(q.resolve, q.reject);
      }
    }
    this.running = false;
  }
}

function columns(outcomes: AttemptOutcome[]): unknown[] {
  const latest = new Map<number, AttemptOutcome>();
  for (const o of outcomes) latest.set(deliveryRowOf(o.attempt.deliveryId), o);
  const updates = [...latest];
  return [
    outcomes.map((o) => deliveryRowOf(o.attempt.deliveryId)),
    outcomes.map((o) => o.attempt.at),
    outcomes.map((o) => o.attempt.statusCode ?? null),
    outcomes.map((o) => o.attempt.durationMs),
    outcomes.map((o) => textOrNull(o.attempt.error)),
    outcomes.map((o) => textOrNull(o.attempt.responseBody)),
    updates.map(([n]) => n),
    updates.map(([, o]) => o.status),
    updates.map(([, o]) => o.attempts),
    updates.map(([, o]) => o.nextAttemptAt),
    updates.map(([, o]) => o.attempt.statusCode ?? null),
    updates.map(([, o]) => textOrNull(o.attempt.error)),
  ];
}

/** PostgreSQL's text cannot hold NUL: one in a receiver's answer would fail the whole statement. */
const textOrNull = (text: string | undefined) => (text === undefined ? null : text.replace(/\0/g, '\uFFFD'));

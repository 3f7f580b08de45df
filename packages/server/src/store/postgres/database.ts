import pg from 'pg';
import { HeraldError } from '@herald/protocol';

export interface PostgresOptions {
  /** `postgres://user:password@host:port/database` */
  url: string;
  /** Connections per node (default 10). Group commit needs only one for writes; the rest serve reads. */
  poolSize?: number | undefined;
  /**
   * How long a call waits for a connection, new or free, before it fails with
   * `store_unavailable` (ms, default 5000). This is what keeps calls from
   * hanging while the server is down.
   */
  connectTimeoutMs?: number | undefined;
  /** How long one statement may take before it fails with `store_unavailable` (ms, default 30000). */
  queryTimeoutMs?: number | undefined;
  /** Its connections' `application_name` in `pg_stat_activity` (default `herald`): a node's is `herald:<node id>`. */
  applicationName?: string | undefined;
}

interface PoolOptions extends PostgresOptions {
  /**
   * Commit without waiting for the WAL flush (`synchronous_commit = off`).
   * Only for writes whose loss in a PostgreSQL crash costs a repeat, never
   * a loss: see PostgresDeliveryStore.
   */
  asyncCommit?: boolean;
}

export type Row = pg.QueryResultRow;
/** What a transaction body gets: one connection, inside BEGIN. */
export type Tx = Pick<pg.PoolClient, 'query'>;

/** Connection-level failures: the server is down, restarting, unreachable, or out of connections. */
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, or in recovery)
  '57014', // query_canceled: our statement_timeout fired
  '53300', // too_many_connections
  // Logins the server refuses: the store is as unreachable as when it is down, and nothing was written.
  '55000', // object_not_in_prerequisite_state: the database does not allow connections (ALLOW_CONNECTIONS false)
  '28000', // invalid_authorization_specification (no pg_hba.conf entry, a role without LOGIN)
  '28P01', // invalid_password
  '3D000', // invalid_catalog_name: the database does not exist
]);
const UNAVAILABLE_MESSAGES = /Connection terminated|timeout exceeded when trying to connect|Query read timeout|connection error|Client was closed/i;

/** Errors after which the whole transaction, rolled back by the server, can simply run again. */
const RETRYABLE_CODES = new Set(['40P01', '40001']); // deadlock_detected, serialization_failure
const MAX_ATTEMPTS = 5;

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * The connection failed while COMMIT was on the wire: the server may have committed (the answer was lost) or not
 * (the statement never arrived), and nothing here can tell which.
 */
export class CommitOutcomeUnknown extends Error {
  constructor(
    cause: unknown,
    /** What the transaction's body returned: what was written, if the COMMIT took. */
    readonly written: unknown,
  ) {
    super(`the connection failed during COMMIT: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/** The `written` of a COMMIT whose outcome is unknown, behind the error a store call rejected with; else undefined. */
export function writtenIfCommitted(error: unknown): unknown {
  const inner = error instanceof HeraldError ? error.cause : error;
  return inner instanceof CommitOutcomeUnknown ? inner.written : undefined;
}

export function isUnavailable(error: unknown): boolean {
  if (error instanceof HeraldError) return error.code === 'store_unavailable';
  if (error instanceof CommitOutcomeUnknown) return true;
  const code = codeOf(error);
  if (code !== undefined && (UNAVAILABLE_CODES.has(code) || code.startsWith('08'))) return true; // class 08: connection exception
  return error instanceof Error && UNAVAILABLE_MESSAGES.test(error.message);
}

export const isRetryable = (error: unknown): boolean => RETRYABLE_CODES.has(codeOf(error) ?? '');

/**
 * A statement prepared on this connection that a schema change has made unusable ("cached plan must not change
 * result type"), or that the server no longer has: the connection is closed, so the transaction runs again on one
 * that prepares it anew.
 */
const isStalePrepared = (error: unknown): boolean =>
  codeOf(error) === '26000' || (codeOf(error) === '0A000' && /cached plan must not change result type/.test((error as Error).message));
export const isUniqueViolation = (error: unknown, constraint: string): boolean =>
  codeOf(error) === '23505' && (error as { constraint?: string }).constraint === constraint;

/** The error a store call rejects with: `store_unavailable` for any connection trouble, anything else unchanged. */
export function storeError(error: unknown): unknown {
  if (error instanceof HeraldError || !isUnavailable(error)) return error;
  if (error instanceof CommitOutcomeUnknown) {
    // Not "nothing was written": a client that believed it and retried without a key wrote the events twice.
    const unknown = new HeraldError(
      'store_unavailable',
      'The store stopped answering while it committed: the write may have been made, or not. Retry with the same Idempotency-Key (or the same event ids), which answers with what was written if it was; a retry without them may write it twice.',
      { outcome: 'unknown' },
    );
    unknown.cause = error;
    return unknown;
  }
  // Reads fail this way too: the protocol's default message speaks of writes only.
  const mapped = new HeraldError('store_unavailable', 'The store cannot be reached; nothing was written. Retry later.');
  mapped.cause = error;
  return mapped;
}

const backoff = (attempt: number) => new Promise((r) => setTimeout(r, 2 ** attempt * 5 * (0.5 + Math.random())));

/** Runs `once`, and again after a growing pause while it fails with an error `retry` accepts, MAX_ATTEMPTS times at most. */
export async function withRetries<T>(once: () => Promise<T>, retry: (error: unknown) => boolean = isRetryable): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await once();
    } catch (error) {
      if (!retry(error) || attempt >= MAX_ATTEMPTS) throw error;
      await backoff(attempt);
    }
  }
}

// Counts and times are bigints in the schema but stay far below 2^53: read them as numbers, not strings.
const INT8_OID = 20;
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID ? Number : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/**
 * The pool, with the two rules every PostgreSQL store call follows: connection
 * trouble becomes `store_unavailable` within a bounded time, and work the
 * server aborted to break a deadlock runs again.
 */
/**
 * A connection of `pool`, held for several statements (a transaction, the migration). While a connection is checked
 * out the pool stops listening for its `error` event, so a server that closes it between two statements (a restart,
 * a failover, an administrator's command) raised an `error` nobody heard, and Node ended the process. The listener
 * here hears it for as long as the connection is held: the next statement on it then fails (the store's usual
 * `store_unavailable`), and `release` with that error closes the connection rather than pool it again.
 */
export async function checkOut(pool: pg.Pool): Promise<pg.PoolClient> {
  const client = await pool.connect();
  const heard = () => {};
  client.on('error', heard);
  const release = client.release;
  client.release = (error?: Error | boolean) => {
    client.off('error', heard);
    release(error);
  };
  return client;
}

export class Database {
  readonly pool: pg.Pool;

  constructor(options: PoolOptions) {
    const queryTimeout = options.queryTimeoutMs ?? 30_000;
    this.pool = new pg.Pool({
      connectionString: options.url,
      max: options.poolSize ?? 10,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
      // The client-side timeout catches a server that stopped answering; the server-side one
      // (a little shorter) ends the statement there too, so it stops holding locks.
      query_timeout: queryTimeout,
      statement_timeout: Math.max(1, queryTimeout - 1000),
      // A node that dies inside a transaction must not hold its channel locks for long.
      idle_in_transaction_session_timeout: Math.max(queryTimeout, 10_000),
      keepAlive: true,
      // PostgreSQL keeps at most 63 bytes of it.
      application_name: (options.applicationName ?? 'herald').slice(0, 63),
      ...(options.asyncCommit ? { options: '-c synchronous_commit=off' } : {}),
      types,
    });
    // An idle connection the server closed (a restart): the pool drops it and opens a new one when needed.
    // Without a listener the 'error' event would crash the process.
    this.pool.on('error', () => {});
  }

  /** One statement, in its own implicit transaction. */
  async query<R extends Row = Row>(sql: string, params?: unknown[]): Promise<pg.QueryResult<R>> {
    try {
      return await withRetries(() => this.pool.query<R>(sql, params));
    } catch (error) {
      throw storeError(error);
    }
  }

  async rows<R extends Row = Row>(sql: string, params?: unknown[]): Promise<R[]> {
    return (await this.query<R>(sql, params)).rows;
  }

  /** Runs `body` inside BEGIN … COMMIT on one connection; runs it again from the start after a deadlock. */
  async transaction<T>(body: (tx: Tx) => Promise<T>): Promise<T> {
    try {
      return await withRetries(() => this.transactionOnce(body), (error) => isRetryable(error) || isStalePrepared(error));
    } catch (error) {
      throw storeError(error);
    }
  }

  private async transactionOnce<T>(body: (tx: Tx) => Promise<T>): Promise<T> {
    const client = await checkOut(this.pool);
    try {
      await client.query('BEGIN');
      const result = await body(client);
      await client.query('COMMIT').catch((error: unknown) => {
        throw isUnavailable(error) ? new CommitOutcomeUnknown(error, result) : error;
      });
      client.release();
      return result;
    } catch (error) {
      // A dead or stuck connection would make ROLLBACK wait out another timeout: close it, the server rolls back.
      if (isUnavailable(error) || isStalePrepared(error)) {
        client.release(error as Error);
        throw error;
      }
      await client.query('ROLLBACK').then(
        () => client.release(),
        // The connection is broken: destroy it rather than hand it to the next caller.
        (rollbackError: Error) => client.release(rollbackError),
      );
      throw error;
    }
  }

  end(): Promise<void> {
    return this.pool.end();
  }
}

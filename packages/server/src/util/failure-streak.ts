/** While a task keeps failing, at most one line per this long after the first. */
export const STREAK_LOG_MS = 60_000;

/**
 * The log of a task that runs on a timer (the node heartbeat, the credential sweep, cursor saves). While the store
 * is down such a task fails on every run, every second or two: a line with a stack for each would bury the outage's
 * first line under thousands. So a streak of failures is logged at its first failure, then at most once per
 * `STREAK_LOG_MS` with the count so far, and once at info when the task succeeds again.
 */
export class FailureStreak {
  private failures = 0;
  private lastLogged = 0;

  constructor(
    private readonly logger: Record<'warn' | 'error' | 'info', (fields: object, message: string) => void>,
    /** The task's name in its lines: `${what} failed`. */
    private readonly what: string,
    private readonly level: 'warn' | 'error' = 'warn',
    private readonly now: () => number = Date.now,
  ) {}

  failed(err: unknown): void {
    this.failures += 1;
    const now = this.now();
    if (this.failures === 1) {
      this.lastLogged = now;
      this.logger[this.level]({ err }, `${this.what} failed`);
    } else if (now - this.lastLogged >= STREAK_LOG_MS) {
      this.lastLogged = now;
      this.logger[this.level]({ err, failures: this.failures }, `${this.what} still failing (${this.failures} failures in a row)`);
    }
  }

  succeeded(): void {
    if (this.failures === 0) return;
    this.logger.info({ failures: this.failures }, `${this.what} works again after ${this.failures} failures in a row`);
    this.failures = 0;
  }

  /** For callers that take one function for errors. */
  readonly onError = (err: unknown): void => this.failed(err);
}

/** Rejects with a timeout error if `promise` has not settled after `ms`. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Checks a link end to end every `intervalMs` (a socket can look open on a
 * dead network for minutes) and reports each result; a check that takes
 * longer than `timeoutMs` failed. Checks never overlap.
 */
export class HealthCheck {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;

  constructor(
    private readonly check: () => Promise<void>,
    private readonly report: (ok: boolean, error?: unknown) => void,
    private readonly intervalMs: number,
    private readonly timeoutMs: number,
  ) {}

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  /** Checks now instead of at the next tick (after a reconnect, say). */
  now(): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(delay: number): void {
    this.timer = setTimeout(() => void this.run(), delay);
    this.timer.unref();
  }

  private running = false;

  private async run(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      await withTimeout(this.check(), this.timeoutMs, 'bus health check');
      if (!this.stopped) this.report(true);
    } catch (error) {
      if (!this.stopped) this.report(false, error);
    } finally {
      this.running = false;
      if (!this.stopped) this.schedule(this.intervalMs);
    }
  }
}

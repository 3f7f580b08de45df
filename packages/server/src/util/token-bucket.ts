/**
 * A token bucket: `rate` tokens a second, with bursts of up to one second's worth, or of one token when the rate is
 * below one a second (a bucket that held less than one token would never let anything through). Times are
 * milliseconds, passed in so that one reading of the clock serves a whole pass (and tests need no clock).
 */
export class TokenBucket {
  private tokens: number;
  private updated: number;
  private readonly capacity: number;

  constructor(
    private readonly rate: number,
    now = Date.now(),
  ) {
    this.capacity = Math.max(1, rate);
    this.tokens = this.capacity;
    this.updated = now;
  }

  /** Whole tokens there now. */
  available(now = Date.now()): number {
    this.refill(now);
    return Math.floor(this.tokens);
  }

  /** Takes one token; false when there is none. */
  take(now = Date.now()): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Full again: a bucket in this state holds nothing worth keeping. */
  idle(now = Date.now()): boolean {
    return this.tokens + ((now - this.updated) / 1000) * this.rate >= this.capacity;
  }

  /** Milliseconds until one token is there. */
  msUntilNext(): number {
    return Math.max(1, Math.ceil(((1 - this.tokens) / this.rate) * 1000));
  }

  private refill(now: number): void {
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.updated) / 1000) * this.rate);
    this.updated = now;
  }
}

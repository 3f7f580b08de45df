/**
 * A token bucket: `rate` requests per second, with bursts of up to one second's worth, or of one request when the
 * rate is below one a second (a bucket that holds less than one token never lets a request through).
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

  available(now = Date.now()): number {
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.updated) / 1000) * this.rate);
    this.updated = now;
    return Math.floor(this.tokens);
  }

  take(): void {
    this.tokens -= 1;
  }

  /** Milliseconds until one token is there. */
  msUntilNext(): number {
    return Math.max(1, Math.ceil(((1 - this.tokens) / this.rate) * 1000));
  }
}

/** A token bucket: `rate` requests per second, with bursts of up to one second's worth. */
export class TokenBucket {
  private tokens: number;
  private updated: number;

  constructor(
    private readonly rate: number,
    now = Date.now(),
  ) {
    this.tokens = rate;
    this.updated = now;
  }

  available(now = Date.now()): number {
    this.tokens = Math.min(this.rate, this.tokens + ((now - this.updated) / 1000) * this.rate);
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

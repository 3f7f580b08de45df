/** A token bucket: `rate` per second, bursts of as many. */
export class TokenBucket {
  private tokens: number;
  private at = Date.now();

  constructor(private readonly rate: number) {
    this.tokens = rate;
  }

  /** Takes one token; false when there is none left this second. */
  take(now = Date.now()): boolean {
    this.tokens = Math.min(this.rate, this.tokens + ((now - this.at) / 1000) * this.rate);
    this.at = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Full again: nothing taken for a second or more. */
  idle(now = Date.now()): boolean {
    return this.tokens + ((now - this.at) / 1000) * this.rate >= this.rate;
  }
}

/** Buckets kept per key before idle ones are swept; a full bucket holds no state worth keeping. */
const SWEEP_AT = 10_000;

/** One bucket per key (a credential), with idle buckets swept so the map stays bounded by the active keys. */
export class KeyedRateLimit {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(private readonly rate: number) {}

  take(key: string): boolean {
    let bucket = this.buckets.get(key);
    if (!bucket) {
      if (this.buckets.size >= SWEEP_AT) this.sweep();
      bucket = new TokenBucket(this.rate);
      this.buckets.set(key, bucket);
    }
    return bucket.take();
  }

  private sweep(): void {
    const now = Date.now();
    for (const [key, bucket] of this.buckets) if (bucket.idle(now)) this.buckets.delete(key);
  }
}

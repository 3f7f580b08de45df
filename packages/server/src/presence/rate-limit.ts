import { TokenBucket } from '../util/token-bucket.js';

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

import { TokenBucket } from './token-bucket.js';

/**
 * Which of a stream of like log lines are written: per key, `linesPerSecond` (bursts of as many, or of one below one
 * a second), the rest counted into the next line written. For lines anyone can cause as fast as they like (a forged
 * webhook, a request while the store is down): one per occurrence would fill the operator's disk and bury every
 * other line, while the first few still show the problem at once. Keys must be few (source names, error codes).
 */
export class LogBudget {
  private readonly byKey = new Map<string, { bucket: TokenBucket; unlogged: number }>();

  constructor(private readonly linesPerSecond: number) {}

  /** Undefined: do not log this one. Otherwise log it, with `unlogged` of the key's since the last line. */
  admit(key: string, now = Date.now()): { unlogged: number } | undefined {
    let entry = this.byKey.get(key);
    if (!entry) {
      entry = { bucket: new TokenBucket(this.linesPerSecond, now), unlogged: 0 };
      this.byKey.set(key, entry);
    }
    if (!entry.bucket.take(now)) {
      entry.unlogged += 1;
      return undefined;
    }
    const unlogged = entry.unlogged;
    entry.unlogged = 0;
    return { unlogged };
  }
}

import { TokenBucket } from '../util/token-bucket.js';

/** `webhook refused` lines per source per second, in bursts of as many; the rest are counted into the next line. */
export const REFUSAL_LINES_PER_SECOND = 10;

/**
 * Which refusals of a source get their own log line. Anyone who knows a source's URL can send it unsigned
 * requests as fast as they like, and a warning per request would let them fill the operator's disk and bury
 * every other line. A few a second still show a misconfigured secret at once; the others are counted in
 * metrics and the source's recent ingests as before, and the next line logged says how many were not.
 */
export class RefusalLog {
  private readonly bySource = new Map<string, { bucket: TokenBucket; unlogged: number }>();

  /** Undefined: do not log this refusal. Otherwise log it, with `unlogged` refusals of the source since the last line. */
  admit(source: string, now = Date.now()): { unlogged: number } | undefined {
    let entry = this.bySource.get(source);
    if (!entry) {
      // One entry per source name that has refused a request: only admins make sources, so this stays small.
      entry = { bucket: new TokenBucket(REFUSAL_LINES_PER_SECOND), unlogged: 0 };
      this.bySource.set(source, entry);
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

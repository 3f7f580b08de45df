/** Exponential backoff with full jitter: a random delay between 0 and min(max, base·2^attempt). */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  return Math.round(random() * Math.min(maxMs, baseMs * 2 ** attempt));
}

/** Seconds until a JWT expires, or undefined when the token is not a JWT with `exp`. */
export function secondsToExpiry(token: string, now = Date.now()): number | undefined {
  const part = token.split('.')[1];
  if (!part || token.split('.').length !== 3) return undefined;
  try {
    const json = atob(part.replace(/-/g, '+').replace(/_/g, '/'));
    const exp = (JSON.parse(json) as { exp?: unknown }).exp;
    return typeof exp === 'number' ? exp - now / 1000 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Milliseconds on a monotonic clock, for every interval the client measures (the watchdogs, the wait before trying a
 * better transport again). The wall clock (`Date.now()`) may be wrong and may be stepped (NTP, the user, a VM
 * resumed): stepped back an hour, a watchdog reading it would keep a dead connection for that hour.
 */
export function monotonicNow(): number {
  return performance.now();
}

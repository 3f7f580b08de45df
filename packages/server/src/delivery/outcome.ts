/** What one attempt's answer means for the delivery (Standard Webhooks' status handling). */
export type Verdict =
  | { kind: 'success' }
  /** 410 Gone: the receiver wants no more; the endpoint is disabled. */
  | { kind: 'gone' }
  /** Any other failure; `retryAfterMs` when the receiver said when to come back. */
  | { kind: 'retry'; retryAfterMs?: number };

const HONOURS_RETRY_AFTER = new Set([429, 502, 503, 504]);

/** `Retry-After` is seconds or an HTTP date (RFC 9110 §10.2.3). */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** 2xx succeeds; 3xx fails (redirects are not followed); 410 disables; the rest retry. */
export function judge(status: number, retryAfter: string | undefined, now: number, retryAfterMaxMs: number): Verdict {
  if (status >= 200 && status < 300) return { kind: 'success' };
  if (status === 410) return { kind: 'gone' };
  const after = HONOURS_RETRY_AFTER.has(status) ? parseRetryAfter(retryAfter, now) : undefined;
  return after === undefined ? { kind: 'retry' } : { kind: 'retry', retryAfterMs: Math.min(after, retryAfterMaxMs) };
}

/**
 * When the next attempt is due after `attempts` attempts, or undefined when
 * the schedule is spent and the delivery is dead. `random` is injectable so
 * tests can pin the jitter. A `Retry-After` can put the retry later than the
 * schedule, never sooner: each answer spends one of the schedule's retries, so
 * a receiver answering `Retry-After: 0` (or a date gone by) would otherwise
 * spend them all in milliseconds and make the delivery a dead letter long
 * before the schedule's hours are up.
 */
export function nextAttemptAt(
  attempts: number,
  now: number,
  schedule: readonly number[],
  jitter: number,
  retryAfterMs?: number,
  random: () => number = Math.random,
): number | undefined {
  if (attempts > schedule.length) return undefined;
  const base = schedule[attempts - 1]! * 1000;
  const delay = Math.round(base * (1 + jitter * (2 * random() - 1)));
  return now + Math.max(delay, retryAfterMs ?? 0);
}

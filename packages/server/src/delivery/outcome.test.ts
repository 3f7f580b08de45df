import { it } from 'node:test';
import assert from 'node:assert/strict';
import { judge, nextAttemptAt, parseRetryAfter } from './outcome.js';

it('judges answers the way the Standard Webhooks spec asks', () => {
  assert.deepEqual(judge(200, undefined, 0, 1e6), { kind: 'success' });
  assert.deepEqual(judge(204, undefined, 0, 1e6), { kind: 'success' });
  assert.deepEqual(judge(301, undefined, 0, 1e6), { kind: 'retry' });
  assert.deepEqual(judge(410, undefined, 0, 1e6), { kind: 'gone' });
  assert.deepEqual(judge(500, '10', 0, 1e6), { kind: 'retry' }, 'Retry-After only counts on 429, 502, 503 and 504');
  assert.deepEqual(judge(503, '10', 0, 1e6), { kind: 'retry', retryAfterMs: 10_000 });
  assert.deepEqual(judge(429, '99999', 0, 60_000), { kind: 'retry', retryAfterMs: 60_000 }, 'capped');
});

it('reads Retry-After as seconds or as a date', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  assert.equal(parseRetryAfter('5', now), 5000);
  assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now), 30_000);
  assert.equal(parseRetryAfter('soon', now), undefined);
});

it('follows the retry schedule with bounded jitter, then gives up', () => {
  const schedule = [5, 300];
  assert.equal(nextAttemptAt(1, 0, schedule, 0.2, undefined, () => 0.5), 5000);
  assert.equal(nextAttemptAt(1, 0, schedule, 0.2, undefined, () => 0), 4000);
  assert.equal(nextAttemptAt(1, 0, schedule, 0.2, undefined, () => 1), 6000);
  assert.equal(nextAttemptAt(2, 0, schedule, 0.2, undefined, () => 0.5), 300_000);
  assert.equal(nextAttemptAt(3, 0, schedule, 0.2), undefined);
  assert.equal(nextAttemptAt(1, 100, schedule, 0.2, 7000), 7100, 'a longer Retry-After replaces the schedule delay');
});

it('never retries sooner than the schedule, whatever Retry-After says', () => {
  // Each answer spends a retry: Retry-After 0 would spend the whole schedule (27.6 h by default) in milliseconds.
  const schedule = [5, 300];
  assert.equal(nextAttemptAt(1, 100, schedule, 0, 0), 5100);
  assert.equal(nextAttemptAt(1, 100, schedule, 0, 1000), 5100);
  assert.equal(nextAttemptAt(2, 100, schedule, 0, 60_000), 300_100);
  assert.equal(nextAttemptAt(2, 100, schedule, 0.2, 0, () => 0), 240_100, 'the jittered delay is the floor');
  assert.equal(nextAttemptAt(3, 100, schedule, 0, 0), undefined, 'and the schedule still ends');
});

it('draws the line between success and failure exactly at 200 and 300', () => {
  for (const status of [200, 201, 299]) assert.deepEqual(judge(status, undefined, 0, 1e6), { kind: 'success' }, String(status));
  for (const status of [100, 199, 300, 302, 400, 404, 500]) assert.deepEqual(judge(status, undefined, 0, 1e6), { kind: 'retry' }, String(status));
  for (const status of [429, 502, 503, 504]) {
    assert.deepEqual(judge(status, '3', 0, 1e6), { kind: 'retry', retryAfterMs: 3000 }, String(status));
  }
  for (const status of [408, 500, 501]) assert.deepEqual(judge(status, '3', 0, 1e6), { kind: 'retry' }, String(status));
});

it('reads Retry-After with surrounding spaces, and ignores an empty or partial one', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  assert.equal(parseRetryAfter(' 7 ', now), 7000);
  assert.equal(parseRetryAfter('7 ', now), 7000);
  assert.equal(parseRetryAfter(undefined, now), undefined);
  assert.equal(parseRetryAfter('', now), undefined);
  assert.equal(parseRetryAfter('   ', now), undefined, 'blank is absent, not a date and not zero seconds');
  // Digits followed or preceded by other text are not a number of seconds (and not a date either).
  assert.equal(parseRetryAfter('5x', now), undefined);
  assert.equal(parseRetryAfter('x5', now), undefined);
  assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT ', now), 30_000);
  assert.equal(parseRetryAfter('Wed, 31 Dec 2025 23:59:00 GMT', now), 0, 'a date in the past means now');
});

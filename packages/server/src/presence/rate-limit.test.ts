import { it } from 'node:test';
import assert from 'node:assert/strict';
import { KeyedRateLimit, TokenBucket } from './rate-limit.js';

it('a token bucket allows a burst of `rate`, then refills at `rate` per second', () => {
  const bucket = new TokenBucket(3);
  const t = Date.now();
  assert.deepEqual([1, 2, 3, 4].map(() => bucket.take(t)), [true, true, true, false]);
  assert.equal(bucket.take(t + 200), false, 'a fifth of a second refills 0.6 of a token');
  assert.equal(bucket.take(t + 400), true, 'and two fifths 1.2');
  assert.equal(bucket.idle(t + 400), false);
  assert.equal(bucket.idle(t + 2000), true);
});

it('keyed limits are separate per key', () => {
  const limits = new KeyedRateLimit(1);
  assert.equal(limits.take('a'), true);
  assert.equal(limits.take('a'), false);
  assert.equal(limits.take('b'), true);
});

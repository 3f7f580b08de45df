import { it } from 'node:test';
import assert from 'node:assert/strict';
import { TokenBucket } from './token-bucket.js';

it('lets a burst of one second’s worth through, then one token per 1/rate seconds', () => {
  const bucket = new TokenBucket(4, 0);
  assert.equal(bucket.available(0), 4);
  assert.deepEqual([1, 2, 3, 4, 5].map(() => bucket.take(0)), [true, true, true, true, false]);
  assert.equal(bucket.available(0), 0);
  assert.equal(bucket.msUntilNext(), 250);
  assert.equal(bucket.take(100), false, 'a tenth of a second refills 0.4 of a token');
  assert.equal(bucket.available(250), 1);
  assert.equal(bucket.take(250), true);
  assert.equal(bucket.idle(250), false);
  assert.equal(bucket.idle(1250), true);
  assert.equal(bucket.available(60_000), 4, 'an idle bucket saves up no more than one second’s worth');
});

it('below one token a second, lets one through every 1/rate seconds (it once let none through at all)', () => {
  const bucket = new TokenBucket(0.5, 0);
  assert.equal(bucket.available(0), 1);
  assert.equal(bucket.take(0), true);
  assert.equal(bucket.available(1000), 0);
  assert.equal(bucket.msUntilNext(), 1000);
  assert.equal(bucket.take(1000), false);
  assert.equal(bucket.available(2000), 1);
  assert.equal(bucket.available(60_000), 1, 'and saves up no more than one');
  assert.equal(bucket.idle(60_000), true);
});

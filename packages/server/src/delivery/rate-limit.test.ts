import { it } from 'node:test';
import assert from 'node:assert/strict';
import { TokenBucket } from './rate-limit.js';

it('lets a burst of one second’s worth through, then one request per 1/rate seconds', () => {
  const bucket = new TokenBucket(4, 0);
  assert.equal(bucket.available(0), 4);
  for (let i = 0; i < 4; i++) bucket.take();
  assert.equal(bucket.available(0), 0);
  assert.equal(bucket.msUntilNext(), 250);
  assert.equal(bucket.available(250), 1);
  assert.equal(bucket.available(60_000), 4, 'an idle endpoint saves up no more than one second’s worth');
});

it('below one request a second, lets one through every 1/rate seconds (it once let none through at all)', () => {
  const bucket = new TokenBucket(0.5, 0);
  assert.equal(bucket.available(0), 1);
  bucket.take();
  assert.equal(bucket.available(1000), 0);
  assert.equal(bucket.msUntilNext(), 1000);
  assert.equal(bucket.available(2000), 1);
  assert.equal(bucket.available(60_000), 1, 'and saves up no more than one');
});

import { it } from 'node:test';
import assert from 'node:assert/strict';
import { KeyedRateLimit } from './rate-limit.js';

it('keyed limits are separate per key', () => {
  const limits = new KeyedRateLimit(1);
  assert.equal(limits.take('a'), true);
  assert.equal(limits.take('a'), false);
  assert.equal(limits.take('b'), true);
});

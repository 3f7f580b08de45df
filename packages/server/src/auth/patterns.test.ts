import { it } from 'node:test';
import assert from 'node:assert/strict';
import { matchesPattern, patternCovered } from './patterns.js';

it('matches literal names and * wildcards, and nothing else', () => {
  assert.ok(matchesPattern('orders', 'orders'));
  assert.ok(!matchesPattern('orders', 'orders2'));
  assert.ok(matchesPattern('user:*', 'user:42'));
  assert.ok(!matchesPattern('user:*', 'users:42'));
  assert.ok(matchesPattern('*', 'anything.at:all'));
  assert.ok(matchesPattern('a.*.z', 'a.b.z'));
  assert.ok(!matchesPattern('a.*.z', 'aXbXz'), 'the dot is literal');
});

it('decides whether one pattern is covered by granted ones', () => {
  assert.ok(patternCovered(['user:*'], 'user:42'));
  assert.ok(patternCovered(['user:*'], 'user:*'));
  assert.ok(patternCovered(['user:*'], 'user:a*'));
  assert.ok(!patternCovered(['user:*'], '*'));
  assert.ok(!patternCovered(['user:*'], 'u*'));
  assert.ok(patternCovered(['*'], 'anything:*'));
});

import { it } from 'node:test';
import assert from 'node:assert/strict';
import { Counts } from './counts.js';

it('holds a key until its last release, and releasing a key not held changes nothing', () => {
  const counts = new Counts<string>();
  counts.add('a');
  counts.add('a');
  counts.add('b');
  assert.deepEqual([counts.has('a'), counts.has('b'), counts.size], [true, true, 2]);
  assert.equal(counts.release('a'), 1);
  assert.equal(counts.has('a'), true);
  assert.equal(counts.release('a'), 0);
  assert.deepEqual([counts.has('a'), counts.size], [false, 1]);
  assert.equal(counts.release('c'), 0);
  assert.deepEqual([counts.has('c'), counts.size], [false, 1]);
  counts.add('a');
  assert.equal(counts.release('a'), 0);
  assert.equal(counts.has('a'), false);
});

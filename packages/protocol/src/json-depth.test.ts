import { it } from 'node:test';
import assert from 'node:assert/strict';
import { exceedsDepth } from './json-depth.js';

function nested(depth: number, leaf: unknown = 1, kind: 'array' | 'object' = 'array'): unknown {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = kind === 'array' ? [v] : { k: v };
  return v;
}

it('counts arrays and objects as one level each, scalars as none', () => {
  assert.equal(exceedsDepth(1, 0), false);
  assert.equal(exceedsDepth('x', 0), false);
  assert.equal(exceedsDepth(null, 0), false);
  assert.equal(exceedsDepth([], 0), true);
  assert.equal(exceedsDepth([], 1), false);
  assert.equal(exceedsDepth(nested(64), 64), false);
  assert.equal(exceedsDepth(nested(65), 64), true);
  assert.equal(exceedsDepth(nested(65, 1, 'object'), 64), true);
  assert.equal(exceedsDepth({ a: [1, { b: [2] }], c: nested(3) }, 4), false);
  assert.equal(exceedsDepth({ a: [1, { b: [2] }], c: nested(4) }, 4), true);
});

it('finds the deep branch among wide siblings', () => {
  const wide = Array.from({ length: 1000 }, () => ({ x: 1 }));
  wide.push(nested(70) as { x: number });
  assert.equal(exceedsDepth({ wide }, 64), true);
});

it('walks values far deeper than the call stack allows without throwing', () => {
  assert.equal(exceedsDepth(nested(200_000), 64), true);
  assert.equal(exceedsDepth(nested(200_000), 300_000), false);
});

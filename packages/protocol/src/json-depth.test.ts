import { it } from 'node:test';
import assert from 'node:assert/strict';
import { exceedsDepth, payloadFault } from './json-depth.js';

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

it('finds a number JSON cannot write anywhere in a payload, and depth as exceedsDepth does', () => {
  const huge = JSON.parse('1e400') as number;
  assert.equal(huge, Infinity);
  assert.equal(payloadFault(huge, 64), 'non_finite');
  assert.equal(payloadFault(-huge, 64), 'non_finite');
  assert.equal(payloadFault(Number.NaN, 64), 'non_finite');
  assert.equal(payloadFault(JSON.parse('{"a":[1,{"b":[2,-1e400]}]}'), 64), 'non_finite');
  assert.equal(payloadFault({ a: 1.7976931348623157e308, b: -5e-324, c: 'Infinity', d: [null, true] }, 64), undefined);
  assert.equal(payloadFault(nested(65), 64), 'too_deep');
  assert.equal(payloadFault(nested(64, huge), 64), 'non_finite');
  assert.equal(payloadFault(nested(64), 64), undefined);
  assert.equal(payloadFault(undefined, 64), undefined);
});

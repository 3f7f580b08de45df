import { it } from 'node:test';
import fc from 'fast-check';
import { exceedsDepth } from './json-depth.js';

/** The reference: the nesting depth by plain recursion (fine at the sizes generated here). */
function depth(value: unknown): number {
  if (typeof value !== 'object' || value === null) return 0;
  const children = Array.isArray(value) ? value : Object.values(value);
  return 1 + children.reduce((max: number, child) => Math.max(max, depth(child)), 0);
}

it('says a value is too deep exactly when its depth passes the limit', () => {
  const json = fc.letrec((tie) => ({
    value: fc.oneof({ depthSize: 'large', withCrossShrink: true }, fc.integer(), fc.string(), fc.constant(null), tie('array'), tie('object')),
    array: fc.array(tie('value'), { maxLength: 4 }),
    object: fc.dictionary(fc.string({ maxLength: 3 }), tie('value'), { maxKeys: 4 }),
  })).value;
  fc.assert(
    fc.property(json, fc.integer({ min: 0, max: 12 }), (value, max) => exceedsDepth(value, max) === depth(value) > max),
    { numRuns: 5000 },
  );
});

it('agrees with the reference on a deep chain hidden among wide siblings', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 200 }), fc.integer({ min: 0, max: 50 }), fc.integer({ min: 1, max: 200 }), (chain, width, max) => {
      let deep: unknown = 0;
      for (let i = 0; i < chain; i++) deep = { k: deep };
      const value = [...Array.from({ length: width }, (_, i) => [i]), deep];
      return exceedsDepth(value, max) === depth(value) > max;
    }),
  );
});

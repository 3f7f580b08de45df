import { it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { assertPattern, isValidPattern, matchesPattern, MAX_PATTERN_STARS, PATTERN_SCHEMA_REGEX } from './patterns.js';

/**
 * The reference: the textbook dynamic program over (pattern position, name
 * position). Quadratic but never exponential, and obviously right.
 */
function reference(pattern: string, name: string): boolean {
  let row = new Array<boolean>(name.length + 1).fill(false);
  row[0] = true;
  for (const p of pattern) {
    const next = new Array<boolean>(name.length + 1).fill(false);
    if (p === '*') {
      next[0] = row[0]!;
      for (let j = 1; j <= name.length; j++) next[j] = row[j]! || next[j - 1]!;
    } else {
      for (let j = 1; j <= name.length; j++) next[j] = row[j - 1]! && name[j - 1] === p;
    }
    row = next;
  }
  return row[name.length]!;
}

// A small alphabet makes overlapping parts (the hard cases for a matcher) common.
const letter = fc.constantFrom('a', 'b', ':');
const name = fc.array(letter, { maxLength: 40 }).map((a) => a.join(''));
const pattern = fc.array(fc.oneof(letter, fc.constant('*')), { minLength: 1, maxLength: 20 }).map((a) => a.join(''));

it('answers as the reference matcher does, for any pattern and name', () => {
  fc.assert(
    fc.property(pattern, name, (p, n) => matchesPattern(p, n) === reference(p, n)),
    { numRuns: 20_000 },
  );
});

it('matches every name built by filling the stars in', () => {
  fc.assert(
    fc.property(pattern, fc.array(name, { minLength: 21, maxLength: 21 }), (p, fills) => {
      const parts = p.split('*');
      const n = parts.map((part, i) => (i === 0 ? part : fills[i]! + part)).join('');
      return matchesPattern(p, n);
    }),
  );
});

it('stays fast on adversarial input that makes a backtracking matcher exponential', { timeout: 10_000 }, () => {
  // Each case would take a regex `^user:.*a.*a…b$` minutes to hours; the node:test timeout fails a regression.
  fc.assert(
    fc.property(fc.integer({ min: 1, max: MAX_PATTERN_STARS - 1 }), fc.integer({ min: 50, max: 120 }), (stars, length) => {
      const p = 'user:' + '*a'.repeat(stars) + '*b';
      return matchesPattern(p, 'user:' + 'a'.repeat(length)) === false;
    }),
    { numRuns: 500 },
  );
});

it('accepts a pattern exactly when the schema regex does, and bounds length and stars', () => {
  const schema = new RegExp(PATTERN_SCHEMA_REGEX);
  const anyPattern = fc.array(fc.constantFrom('a', 'Z', '9', '_', '.', ':', '-', '*', ' ', '/'), { maxLength: 140 }).map((a) => a.join(''));
  fc.assert(
    fc.property(anyPattern, (p) => {
      const valid = isValidPattern(p);
      assert.equal(valid, p.length >= 1 && p.length <= 128 && schema.test(p));
      if (valid) assertPattern(p);
      else assert.throws(() => assertPattern(p), { code: 'invalid_pattern' });
    }),
    { numRuns: 5000 },
  );
  assert.equal(isValidPattern('*'.repeat(MAX_PATTERN_STARS)), true);
  assert.equal(isValidPattern('*'.repeat(MAX_PATTERN_STARS + 1)), false);
});

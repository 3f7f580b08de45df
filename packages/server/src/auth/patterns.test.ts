import { it } from 'node:test';
import assert from 'node:assert/strict';
import { HeraldError } from '@herald/protocol';
import { assertPattern, isValidPattern, matchesAny, matchesPattern, patternCovered } from './patterns.js';

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

it('accepts patterns of 1 to 128 characters with at most 8 stars, and says why it refuses the rest', () => {
  assert.ok(isValidPattern('a'));
  assert.ok(isValidPattern('a'.repeat(128)));
  assert.ok(!isValidPattern('a'.repeat(129)));
  assert.ok(!isValidPattern(''));
  assert.ok(!isValidPattern(7));
  assert.ok(!isValidPattern(undefined));
  assert.ok(!isValidPattern(['a']));
  assert.ok(isValidPattern('A-z_0.9:*'));
  for (const bad of ['a b', 'a/b', 'ü', 'a\n', '\na', 'a,b']) assert.ok(!isValidPattern(bad), JSON.stringify(bad));
  assert.ok(isValidPattern('*a*b*c*d*e*f*g*'), 'eight stars');
  assert.ok(!isValidPattern('*a*b*c*d*e*f*g*h*'), 'nine stars');
  assert.throws(
    () => assertPattern('a b'),
    (e: unknown) =>
      e instanceof HeraldError &&
      e.code === 'invalid_pattern' &&
      e.message === 'Invalid channel pattern "a b": 1 to 128 of [A-Za-z0-9_.:*-], at most 8 `*`.',
  );
  assert.doesNotThrow(() => assertPattern('user:*'));
});

it('anchors a pattern at both ends, and its fixed prefix and suffix may not overlap in the name', () => {
  assert.ok(!matchesPattern('user:*', 'evil:user:1'), 'no match in the middle of a name');
  assert.ok(!matchesPattern('*:admin', 'x:admin:y'));
  assert.ok(!matchesPattern('ab*ba', 'aba'), 'prefix and suffix share the middle b');
  assert.ok(matchesPattern('ab*ba', 'abba'));
  assert.ok(matchesPattern('a*', 'a'), 'a star matches nothing too');
  assert.ok(matchesPattern('*a', 'a'));
  assert.ok(matchesPattern('a**b', 'ab'), 'two stars in a row are one');
  assert.ok(matchesPattern('a*b*c', 'abc'));
  assert.ok(!matchesPattern('a*b*c', 'acb'), 'the middle parts keep their order');
  assert.ok(!matchesPattern('a*bb*c', 'abc'));
  assert.ok(matchesPattern('a*aab*c', 'aaaabc'), 'a middle part found after a false start (the KMP fallback)');
  assert.ok(matchesPattern('x*abab*y', 'xababcababy'));
  assert.ok(matchesPattern('x*abac*y', 'xababacy'));
  assert.ok(!matchesPattern('x*yy*y', 'xyy'), 'the middle part may not use the suffix');
  assert.ok(!matchesPattern('xy*yy*', 'xyy'), 'nor the prefix');
  assert.ok(matchesPattern('x*yy*y', 'xyyy'));
  assert.ok(!matchesPattern('a*', ''), 'an empty name matches no prefix');
});

it('matches any of several patterns, and none of none', () => {
  assert.ok(matchesAny(['a', 'b:*'], 'b:1'));
  assert.ok(matchesAny(['a', 'b:*'], 'a'));
  assert.ok(!matchesAny(['a', 'b:*'], 'c'));
  assert.ok(!matchesAny([], 'a'));
});

it('gives the same answers once its cache of compiled patterns is full and cleared', () => {
  for (let i = 0; i < 10_050; i++) assert.ok(matchesPattern(`p${i}:*`, `p${i}:x`));
  assert.ok(matchesPattern('p0:*', 'p0:y'));
  assert.ok(!matchesPattern('p0:*', 'p1:y'));
});

it('finds middle parts that overlap themselves (the cases a wrong KMP table gets wrong), against every short name', () => {
  // Every name of up to 9 letters over {a, b}, against patterns whose middle part repeats its own prefix.
  const names = [''];
  for (let length = 1; length <= 9; length++) {
    for (let n = 0; n < 2 ** length; n++) names.push(n.toString(2).padStart(length, '0').replace(/0/g, 'a').replace(/1/g, 'b'));
  }
  const parts = ['aab', 'aaab', 'abab', 'aabaab', 'abaab', 'aabaa', 'abaaba', 'aabab', 'babba'];
  for (const part of parts) {
    for (const pattern of [`*${part}*`, `a*${part}*b`, `*${part}*${part}*`]) {
      const regex = new RegExp(`^${pattern.replace(/\*/g, '.*')}$`);
      for (const name of names) assert.equal(matchesPattern(pattern, name), regex.test(name), `${pattern} against ${name}`);
    }
  }
});

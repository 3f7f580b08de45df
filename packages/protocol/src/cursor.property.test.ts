// Property-based tests (fast-check) for the multi-channel cursor codec.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { HeraldError } from './errors.js';
import { isValidChannel } from './events.js';
import { decodeCursor, encodeCursor, MAX_CURSOR_LENGTH } from './cursor.js';

const channel = fc.oneof(
  // Every name of the character class but `.` and `..`, which CHANNEL_PATTERN refuses (fast-check reads no lookahead).
  fc.stringMatching(/^[A-Za-z0-9_.:-]{1,128}$/).filter(isValidChannel),
  // Names that are also Object.prototype keys must survive the JSON object round trip.
  fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', '0', '-1', 'a.b', 'user:1'),
);
const positions = fc.uniqueArray(fc.tuple(channel, fc.maxSafeNat()), { selector: ([c]) => c, maxLength: 30 }).map((entries) => new Map(entries));

const base64url = (text: string) => Buffer.from(text, 'utf8').toString('base64url');

/** Decoding either gives a map of valid channels to safe seqs, or throws HeraldError('invalid_cursor'); nothing else. */
function decodesOrRefuses(cursor: string): void {
  let decoded: Map<string, number>;
  try {
    decoded = decodeCursor(cursor);
  } catch (error) {
    assert.ok(error instanceof HeraldError, `threw ${String(error)}`);
    assert.equal(error.code, 'invalid_cursor');
    return;
  }
  assert.ok(decoded instanceof Map);
  for (const [name, seq] of decoded) {
    assert.ok(isValidChannel(name), `decoded an invalid channel ${JSON.stringify(name)}`);
    assert.ok(Number.isSafeInteger(seq) && seq >= 0, `decoded an invalid seq ${seq}`);
  }
}

it('encode then decode gives back the same positions', () => {
  fc.assert(
    fc.property(positions, (map) => {
      const cursor = encodeCursor(map);
      assert.match(cursor, /^[A-Za-z0-9_-]*$/, 'a cursor is base64url, safe in a query string and a header');
      assert.deepEqual(decodeCursor(cursor), map);
    }),
    { numRuns: 500 },
  );
});

it('decoding an arbitrary string returns a valid map or throws invalid_cursor, never anything else', () => {
  fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 300 }), decodesOrRefuses), { numRuns: 2000 });
  fc.assert(fc.property(fc.stringMatching(/^[A-Za-z0-9_-]{0,200}$/), decodesOrRefuses), { numRuns: 2000 });
});

it('decoding arbitrary JSON, or cursor-shaped JSON with arbitrary positions, is just as safe', () => {
  fc.assert(fc.property(fc.jsonValue({ maxDepth: 6 }), (value) => decodesOrRefuses(base64url(JSON.stringify(value) ?? 'null'))), { numRuns: 1000 });
  const shaped = fc.record({
    v: fc.oneof(fc.constant(1), fc.jsonValue({ maxDepth: 1 })),
    p: fc.oneof(fc.dictionary(fc.oneof(channel, fc.string({ unit: 'binary', maxLength: 140 })), fc.oneof(fc.maxSafeNat(), fc.jsonValue({ maxDepth: 2 }), fc.double(), fc.integer({ min: -10, max: -1 }))), fc.jsonValue({ maxDepth: 2 })),
  });
  fc.assert(fc.property(shaped, (value) => decodesOrRefuses(base64url(JSON.stringify(value)))), { numRuns: 2000 });
});

it('a cursor with any one position made invalid is refused as a whole', () => {
  const bad = fc.oneof(fc.constant(-1), fc.constant(1.5), fc.constant(2 ** 53), fc.constant('3'), fc.constant(null), fc.constant(true));
  fc.assert(
    fc.property(positions.filter((m) => m.size > 0), fc.nat(), bad, (map, at, value) => {
      const entries: Array<[string, unknown]> = [...map];
      entries[at % entries.length]![1] = value;
      const cursor = base64url(JSON.stringify({ v: 1, p: Object.fromEntries(entries) }));
      assert.throws(() => decodeCursor(cursor), (e: unknown) => e instanceof HeraldError && e.code === 'invalid_cursor');
    }),
    { numRuns: 500 },
  );
});

it('the longest legitimate cursor (100 channels, 128-character names, the largest seqs) fits the bound; a longer one is refused', () => {
  fc.assert(
    fc.property(fc.uniqueArray(fc.stringMatching(/^[A-Za-z0-9_.:-]{128}$/), { minLength: 100, maxLength: 100 }), (names) => {
      const cursor = encodeCursor(new Map(names.map((n) => [n, Number.MAX_SAFE_INTEGER])));
      assert.ok(cursor.length <= MAX_CURSOR_LENGTH, `${cursor.length} characters`);
      assert.equal(decodeCursor(cursor).size, 100);
    }),
    { numRuns: 20 },
  );
  assert.throws(() => decodeCursor('A'.repeat(MAX_CURSOR_LENGTH + 1)), (e: unknown) => e instanceof HeraldError && e.code === 'invalid_cursor');
});

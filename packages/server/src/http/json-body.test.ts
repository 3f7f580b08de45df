import { it } from 'node:test';
import assert from 'node:assert/strict';
import { HeraldError } from '@herald/protocol';
import { decodeJsonBody, nestsDeeperThan, NESTING_CEILING, parseJsonBody, parseJsonText } from './json-body.js';

const refusal = (code: string, message?: RegExp) => (error: unknown) => {
  assert.ok(error instanceof HeraldError, String(error));
  assert.equal(error.code, code);
  if (message) assert.match(error.message, message);
  return true;
};

it('names the first poisoning key in document order, in arrays and objects', () => {
  assert.throws(() => parseJsonBody('{"data":{"a":{"__proto__":{"admin":true}}}}'), refusal('bad_request', /"__proto__" at body\.data\.a\.__proto__:/));
  assert.throws(() => parseJsonBody('[1,{"x":[{},{"constructor":{"prototype":{}}}]}]'), refusal('bad_request', /"constructor\.prototype" at body\[1\]\.x\[1\]\.constructor\.prototype:/));
  assert.throws(() => parseJsonBody('{"a":{"b":{"__proto__":1}},"__proto__":2}'), refusal('bad_request', / at body\.a\.b\.__proto__:/), 'depth first, as written');
  assert.deepEqual(parseJsonBody('{"constructor":{"name":"x"},"text":"\\u0041"}'), { constructor: { name: 'x' }, text: 'A' }, 'a constructor without prototype is fine');
});

it('walks a body nested as deep as any setting allows without failing, and quotes the end of a long path', () => {
  const depth = NESTING_CEILING - 1;
  const deep = `${'{"a":'.repeat(depth)}"\\u0041"${'}'.repeat(depth)}`;
  const parsed = parseJsonBody(deep) as { a: unknown };
  assert.equal(typeof parsed.a, 'object', 'parsed: the configured depth limit is checked later, on the value');
  const poisoned = `${'['.repeat(depth)}{"__proto__":1}${']'.repeat(depth)}`;
  assert.throws(() => parseJsonBody(poisoned), (error: unknown) => {
    assert.ok(error instanceof HeraldError);
    assert.match(error.message, /"__proto__" at …\]?(\[0\]){60,}\.__proto__:/);
    assert.ok(error.message.length < 400, `the message stays short (${error.message.length})`);
    return true;
  });
});

it('refuses text nested deeper than any setting allows before parsing it, whatever the text holds', () => {
  const arrays = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;
  assert.deepEqual(parseJsonBody(`{"a":${arrays(NESTING_CEILING - 1)}}`) !== undefined, true, 'at the ceiling: parsed');
  assert.throws(() => parseJsonBody(`{"a":${arrays(NESTING_CEILING)}}`), refusal('payload_too_deep', /more than 1008 levels/));
  // A megabyte of `[` with no end: refused as too deep, not parsed first (a parse would say it is not valid JSON).
  assert.throws(() => parseJsonBody('['.repeat(1 << 20)), refusal('payload_too_deep'));
  assert.throws(() => parseJsonText(`${'{"x":'.repeat(600)}[${'['.repeat(500)}`, 'frame', () => 'not JSON'), refusal('payload_too_deep', /^The frame /));
});

it('counts the nesting of the text outside strings only, escapes included', () => {
  assert.equal(nestsDeeperThan('[[[]]', 2), false, 'text too short to be valid JSON that deep is not scanned (the parse refuses it)');
  assert.equal(nestsDeeperThan('[[[]]]', 2), true);
  const padded = (json: string) => `${json}${' '.repeat(64)}`;
  assert.equal(nestsDeeperThan(padded('[[[]]]'), 2), true);
  assert.equal(nestsDeeperThan(padded('[[]]'), 2), false);
  assert.equal(nestsDeeperThan(padded('[["[[[[{{{{"]]'), 2), false, 'brackets inside a string');
  assert.equal(nestsDeeperThan(padded('[["\\"[[[[", "\\\\"]]'), 2), false, 'an escaped quote does not end the string');
  assert.equal(nestsDeeperThan(padded('["\\\\", [[1]]]'), 2), true, 'an escaped backslash does: the brackets after it count');
  assert.equal(nestsDeeperThan(padded('[{}, {}, [], [[]], {"a": {}}]'), 3), false, 'siblings do not add up');
});

it('decodes a body as UTF-8 only: bytes that are not UTF-8 are invalid_json, never replaced with U+FFFD', () => {
  assert.equal(decodeJsonBody(Buffer.from('{"data":"café €"}')), '{"data":"café €"}');
  assert.throws(() => decodeJsonBody(Buffer.from('{"data":"caf\xe9"}', 'latin1')), refusal('invalid_json', /not UTF-8/));
  assert.throws(() => decodeJsonBody(Buffer.from([0x22, 0xed, 0xa0, 0x80, 0x22])), refusal('invalid_json', /not UTF-8/), 'an encoded surrogate');
  // A byte order mark stays, so the parser refuses it as before (RFC 8259 §8.1: senders must not add one).
  assert.throws(() => parseJsonBody(decodeJsonBody(Buffer.from('\ufeff{}'))), refusal('invalid_json'));
});

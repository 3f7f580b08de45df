import { it } from 'node:test';
import assert from 'node:assert/strict';
import { HeraldError } from '@herald/protocol';
import { decodeJsonBody, parseJsonBody } from './json-body.js';

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

it('walks a body nested far deeper than the call stack without failing, and quotes the end of a long path', () => {
  const depth = 200_000;
  const deep = `${'{"a":'.repeat(depth)}"\\u0041"${'}'.repeat(depth)}`;
  const parsed = parseJsonBody(deep) as { a: unknown };
  assert.equal(typeof parsed.a, 'object', 'parsed: the depth limit is checked later, on the value');
  const poisoned = `${'['.repeat(depth)}{"__proto__":1}${']'.repeat(depth)}`;
  assert.throws(() => parseJsonBody(poisoned), (error: unknown) => {
    assert.ok(error instanceof HeraldError);
    assert.match(error.message, /"__proto__" at …\]?(\[0\]){60,}\.__proto__:/);
    assert.ok(error.message.length < 400, `the message stays short (${error.message.length})`);
    return true;
  });
});

it('decodes a body as UTF-8 only: bytes that are not UTF-8 are invalid_json, never replaced with U+FFFD', () => {
  assert.equal(decodeJsonBody(Buffer.from('{"data":"café €"}')), '{"data":"café €"}');
  assert.throws(() => decodeJsonBody(Buffer.from('{"data":"caf\xe9"}', 'latin1')), refusal('invalid_json', /not UTF-8/));
  assert.throws(() => decodeJsonBody(Buffer.from([0x22, 0xed, 0xa0, 0x80, 0x22])), refusal('invalid_json', /not UTF-8/), 'an encoded surrogate');
  // A byte order mark stays, so the parser refuses it as before (RFC 8259 §8.1: senders must not add one).
  assert.throws(() => parseJsonBody(decodeJsonBody(Buffer.from('\ufeff{}'))), refusal('invalid_json'));
});

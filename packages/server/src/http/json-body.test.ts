import { it } from 'node:test';
import assert from 'node:assert/strict';
import { HeraldError } from '@herald/protocol';
import { parseJsonBody } from './json-body.js';

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

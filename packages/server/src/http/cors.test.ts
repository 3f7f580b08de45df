import { it } from 'node:test';
import assert from 'node:assert/strict';
import { HeraldError } from '@herald/protocol';
import { assertOriginAllowed, isSameOrigin } from './cors.js';

it('takes a page on the server it reached as same-origin, port and default port included', () => {
  assert.equal(isSameOrigin('http://127.0.0.1:7700', '127.0.0.1:7700'), true);
  assert.equal(isSameOrigin('http://herald.example', 'herald.example:80'), true);
  assert.equal(isSameOrigin('https://herald.example', 'herald.example'), true, 'behind a TLS proxy Herald hears plain HTTP');
  assert.equal(isSameOrigin('http://HERALD.example:7700', 'herald.EXAMPLE:7700'), true, 'host names are case-insensitive');
  assert.equal(isSameOrigin('http://127.0.0.1:7701', '127.0.0.1:7700'), false, 'another port is another origin');
  assert.equal(isSameOrigin('http://evil.example', 'herald.example'), false);
  assert.equal(isSameOrigin('http://herald.example.evil.example', 'herald.example'), false);
  assert.equal(isSameOrigin('null', 'herald.example'), false, 'an opaque origin is never the server');
  assert.equal(isSameOrigin('file://herald.example', 'herald.example'), false);
  assert.equal(isSameOrigin('http://herald.example', undefined), false, 'no Host: nothing to be the same as');
  assert.equal(isSameOrigin('http://herald.example', 'bad host/'), false);
});

it('allows the same origin without cors.origins, and refuses other origins unless listed', () => {
  assert.doesNotThrow(() => assertOriginAllowed('http://h:7700', [], 'h:7700'));
  assert.doesNotThrow(() => assertOriginAllowed(undefined, [], 'h:7700'), 'no Origin: not a cross-origin browser request');
  assert.throws(() => assertOriginAllowed('http://other:7700', [], 'h:7700'), (e: unknown) => e instanceof HeraldError && e.status === 403);
  assert.throws(() => assertOriginAllowed('http://other:7700', ['http://listed'], 'h:7700'), HeraldError);
  assert.doesNotThrow(() => assertOriginAllowed('http://listed', ['http://listed'], 'h:7700'));
  assert.doesNotThrow(() => assertOriginAllowed('http://h:7700', ['http://listed'], 'h:7700'), 'a list does not shut the server out of itself');
});

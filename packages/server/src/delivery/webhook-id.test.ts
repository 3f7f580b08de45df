import { it } from 'node:test';
import assert from 'node:assert/strict';
import { eventJson } from '../log/event-json.js';
import { schemeHeaders, webhookIdOf } from './webhook-id.js';

const payload = (type: string, id = 'evt_1') => eventJson({ id, channel: 'orders', seq: 7, type, data: { a: '"type":"fake"' }, time: '2026-01-01T00:00:00.000Z' });

it('github deliveries name the event type in x-github-event, read from the payload the way Herald writes it', () => {
  assert.deepEqual(schemeHeaders('github', payload('order.created')), { 'x-github-event': 'order.created' });
  assert.deepEqual(schemeHeaders('github', payload('a"b\\c', 'my:id.1')), { 'x-github-event': 'a"b\\c' }, 'escapes read back');
  // A type a header cannot carry as it is goes without the header, rather than failing the attempt.
  for (const type of ['two words', 'line\nbreak', 'café']) assert.deepEqual(schemeHeaders('github', payload(type)), {}, type);
  // Another shape (not Herald's key order) is never guessed at.
  assert.deepEqual(schemeHeaders('github', JSON.stringify({ type: 'x', id: 'evt_1' })), {});
  assert.deepEqual(schemeHeaders('standard', payload('order.created')), {});
  assert.deepEqual(schemeHeaders('stripe', payload('order.created')), {});
  // The endpoint's own header of that name wins, whatever its case; another of its headers changes nothing.
  assert.deepEqual(schemeHeaders('github', payload('order.created'), { 'X-GitHub-Event': 'push' }), {});
  assert.deepEqual(schemeHeaders('github', payload('order.created'), { 'x-tenant': 't1' }), { 'x-github-event': 'order.created' });
});

it('a standard webhook-id holds no full stop; other schemes send the id as it is', () => {
  assert.equal(webhookIdOf('standard', 'a.b.c'), 'a~b~c');
  assert.equal(webhookIdOf('github', 'a.b.c'), 'a.b.c');
});

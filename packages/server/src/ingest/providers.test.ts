import { it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { HeraldError } from '@herald/protocol';
import { describe as describeWebhook, parseBody } from './providers.js';

const body = (text: string) => Buffer.from(text, 'utf8');
const sha = (text: string) => `sha256:${createHash('sha256').update(text).digest('hex')}`;

it('parses JSON by content type, or by its first character when no type says otherwise', () => {
  assert.deepEqual(parseBody(body('{"a":1}'), 'application/json'), { a: 1 });
  assert.deepEqual(parseBody(body('{"a":1}'), 'Application/JSON; charset=utf-8'), { a: 1 }, 'any casing');
  assert.deepEqual(parseBody(body('{"a":1}'), 'application/vnd.api+json'), { a: 1 });
  assert.deepEqual(parseBody(body('  [1,2]'), undefined), [1, 2], 'leading space, then an array');
  assert.deepEqual(parseBody(body('\n{"a":1}'), 'text/plain'), { a: 1 });
  assert.equal(parseBody(body('"just a string"'), undefined), '"just a string"', 'only objects and arrays are sniffed');
  assert.equal(parseBody(body('hello'), 'text/plain'), 'hello');
  assert.equal(parseBody(body('hello'), undefined), 'hello');
  assert.equal(parseBody(body(''), undefined), '');
  assert.equal(parseBody(body('x{"a":1}'), undefined), 'x{"a":1}', 'the brace must come first');
});

it('refuses a body that claims JSON but is not, as invalid_json', () => {
  for (const [text, type] of [['{"a":', 'application/json'], ['not json', 'application/json'], ['{oops}', undefined]] as const) {
    assert.throws(
      () => parseBody(body(text), type),
      (e: unknown) => e instanceof HeraldError && e.code === 'invalid_json' && /signed but is not valid JSON/.test(e.message),
      text,
    );
  }
});

it('parses forms, and the JSON in a Slack interactivity payload field', () => {
  assert.deepEqual(parseBody(body('command=%2Fdeploy&text=now+please'), 'application/x-www-form-urlencoded'), { command: '/deploy', text: 'now please' });
  const payload = encodeURIComponent(JSON.stringify({ type: 'block_actions', actions: [1] }));
  assert.deepEqual(parseBody(body(`payload=${payload}`), 'application/x-www-form-urlencoded'), { payload: { type: 'block_actions', actions: [1] } });
  assert.deepEqual(parseBody(body('payload=%7Bnot'), 'application/x-www-form-urlencoded'), { payload: '{not' }, 'a payload that is not JSON stays text');
  // A form whose text starts with a brace is still a form: the content type says so.
  assert.deepEqual(parseBody(body('{a}=1'), 'application/x-www-form-urlencoded; charset=utf-8'), { '{a}': '1' });
  assert.equal(parseBody(body('a=1'), 'multipart/form-data'), 'a=1', 'other forms are kept as text');
});

it('dedupes on each provider’s own event id and names the type where each provider keeps it', () => {
  const none = Buffer.alloc(0);
  assert.deepEqual(describeWebhook('stripe', {}, { id: 'evt_1', type: 'charge.succeeded' }, none, undefined), { eventId: 'evt_1', type: 'charge.succeeded' });
  assert.deepEqual(describeWebhook('standard', {}, { type: 'invoice.paid' }, none, 'msg_1'), { eventId: 'msg_1', type: 'invoice.paid' });
  assert.deepEqual(
    describeWebhook('github', { 'x-github-delivery': 'd-1', 'x-github-event': 'issues' }, { action: 'opened' }, none, undefined),
    { eventId: 'd-1', type: 'issues.opened' },
  );
  assert.deepEqual(describeWebhook('github', { 'x-github-delivery': 'd-2', 'x-github-event': 'push' }, {}, none, undefined), { eventId: 'd-2', type: 'push' });
  assert.deepEqual(describeWebhook('github', { 'x-github-delivery': 'd-3' }, { action: 'opened' }, none, undefined), { eventId: 'd-3', type: 'github.webhook' }, 'an action without an event names nothing');
  assert.deepEqual(
    describeWebhook('shopify', { 'x-shopify-webhook-id': 'w-1', 'x-shopify-topic': 'orders/create' }, {}, none, undefined),
    { eventId: 'w-1', type: 'orders/create' },
  );
  assert.deepEqual(
    describeWebhook('slack', {}, { type: 'event_callback', event_id: 'Ev1', event: { type: 'app_mention' } }, none, undefined),
    { eventId: 'Ev1', type: 'app_mention' },
  );
  assert.deepEqual(describeWebhook('slack', {}, { type: 'event_callback', event_id: 'Ev2' }, none, undefined), { eventId: 'Ev2', type: 'event_callback' });
});

it('reads the action or type of a form’s payload field: GitHub’s form content type, Slack’s interactivity', () => {
  // GitHub's "application/x-www-form-urlencoded" content type (its API's default) sends the JSON as `payload=`;
  // the same delivery as JSON was `issues.opened`, and an endpoint filtering on that type missed the form one.
  const formType = { 'content-type': 'application/x-www-form-urlencoded' };
  const github = `payload=${encodeURIComponent('{"action":"opened","issue":{"number":1}}')}`;
  const githubData = parseBody(body(github), formType['content-type']);
  assert.deepEqual(describeWebhook('github', { ...formType, 'x-github-delivery': 'd-f', 'x-github-event': 'issues' }, githubData, body(github), undefined), {
    eventId: 'd-f',
    type: 'issues.opened',
  });
  // Slack's interactivity names its kind in the payload's type (block_actions, view_submission…), not `slack.webhook`.
  const slack = `payload=${encodeURIComponent('{"type":"block_actions","actions":[{"action_id":"approve"}]}')}`;
  const slackData = parseBody(body(slack), `${formType['content-type']}; charset=utf-8`);
  assert.deepEqual(describeWebhook('slack', { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' }, slackData, body(slack), undefined), {
    eventId: sha(slack),
    type: 'block_actions',
  });
  // Only a form's payload field: a JSON body with a payload key is read as before.
  assert.equal(describeWebhook('github', { 'content-type': 'application/json', 'x-github-event': 'deployment' }, { payload: { action: 'x' } }, body('n'), undefined).type, 'deployment');
  assert.equal(describeWebhook('slack', { 'content-type': 'application/json' }, { payload: { type: 'block_actions' } }, body('o'), undefined).type, 'slack.webhook');
});

it('ignores ids that are not non-empty strings, and then dedupes on the body’s hash', () => {
  const raw = '{"id":42,"type":"x"}';
  assert.deepEqual(describeWebhook('stripe', {}, JSON.parse(raw), body(raw), undefined), { eventId: sha(raw), type: 'x' });
  assert.equal(describeWebhook('stripe', {}, { id: '' }, body('a'), undefined).eventId, sha('a'));
  assert.equal(describeWebhook('standard', {}, {}, body('b'), undefined).eventId, sha('b'), 'standard without a verified id');
  assert.equal(describeWebhook('github', { 'x-github-delivery': '' }, {}, body('c'), undefined).eventId, sha('c'));
  assert.equal(describeWebhook('github', { 'x-github-delivery': ['a', 'b'] as unknown as string }, {}, body('d'), undefined).eventId, sha('d'));
  assert.equal(describeWebhook('shopify', {}, {}, body('e'), undefined).eventId, sha('e'));
  assert.equal(describeWebhook('slack', {}, { event_id: 7 }, body('f'), undefined).eventId, sha('f'));
  // The same bytes are the same event; other bytes are another.
  assert.equal(describeWebhook('shopify', {}, {}, body('e'), undefined).eventId, describeWebhook('shopify', {}, {}, body('e'), undefined).eventId);
  assert.notEqual(describeWebhook('shopify', {}, {}, body('e'), undefined).eventId, describeWebhook('shopify', {}, {}, body('e '), undefined).eventId);
});

it('does not take the dedupe id from the body where the provider puts it in a header, nor the other way round', () => {
  assert.equal(describeWebhook('github', {}, { id: 'from-body' }, body('g'), undefined).eventId, sha('g'));
  assert.equal(describeWebhook('shopify', {}, { id: 'from-body' }, body('h'), undefined).eventId, sha('h'));
  assert.equal(describeWebhook('stripe', { 'x-github-delivery': 'hdr' }, {}, body('i'), undefined).eventId, sha('i'));
  assert.equal(describeWebhook('standard', {}, { id: 'from-body' }, body('j'), undefined).eventId, sha('j'), 'standard uses the verified webhook-id only');
});

it('falls back to <provider>.webhook for a missing type, and caps a type at 128 characters', () => {
  for (const provider of ['stripe', 'standard', 'github', 'shopify', 'slack'] as const) {
    assert.equal(describeWebhook(provider, {}, 'not an object', body('k'), 'id').type, `${provider}.webhook`);
    assert.equal(describeWebhook(provider, {}, [1, 2], body('k'), 'id').type, `${provider}.webhook`);
    assert.equal(describeWebhook(provider, {}, null, body('k'), 'id').type, `${provider}.webhook`);
  }
  assert.equal(describeWebhook('stripe', {}, { type: '' }, body('k'), undefined).type, 'stripe.webhook');
  const long = 't'.repeat(200);
  assert.equal(describeWebhook('stripe', {}, { type: long }, body('k'), undefined).type, 't'.repeat(128));
  assert.equal(describeWebhook('stripe', {}, { type: 't'.repeat(128) }, body('k'), undefined).type.length, 128);
});

it('answers Slack’s url_verification with the challenge instead of appending', () => {
  assert.deepEqual(describeWebhook('slack', {}, { type: 'url_verification', challenge: 'abc' }, body('l'), undefined), {
    eventId: '',
    type: 'url_verification',
    reply: { challenge: 'abc' },
  });
  assert.equal(describeWebhook('stripe', {}, { type: 'url_verification', id: 'evt_9' }, body('m'), undefined).reply, undefined, 'only for Slack');
});

it('refuses a body whose bytes are not UTF-8, whatever its type, instead of decoding U+FFFD into it', () => {
  const latin1 = Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]); // {"a":"\xff\xfe"}
  for (const type of ['application/json', 'application/x-www-form-urlencoded', 'text/plain', undefined]) {
    assert.throws(
      () => parseBody(latin1, type),
      (e: unknown) => e instanceof HeraldError && e.code === 'invalid_json' && /not UTF-8/.test(e.message),
      String(type),
    );
  }
  assert.deepEqual(parseBody(Buffer.from('{"a":"café ✓"}'), 'application/json'), { a: 'café ✓' });
});

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './helpers.js';

describe('publish and poll through the real server', () => {
  let h: TestServer;
  before(async () => {
    h = await startTestServer();
  });
  after(async () => {
    await h.stop();
  });

  it('publishes an event and reads it back with the cursor', async () => {
    const pub = await h.call('POST', '/v1/channels/orders/events', { body: { type: 'order.created', data: { id: 7 } } });
    assert.equal(pub.status, 201);
    assert.match(pub.body.id, /^evt_[0-9A-HJKMNP-TV-Z]{26}$/);
    assert.equal(pub.body.channel, 'orders');
    assert.equal(pub.body.seq, 1);
    assert.equal(pub.body.type, 'order.created');
    assert.deepEqual(pub.body.data, { id: 7 });
    assert.ok(!Number.isNaN(Date.parse(pub.body.time)));

    const second = await h.call('POST', '/v1/channels/orders/events', { body: { data: 'plain' } });
    assert.equal(second.body.seq, 2);
    assert.equal(second.body.type, 'message');

    const page = await h.call('GET', '/v1/channels/orders/events?after=0');
    assert.equal(page.status, 200);
    assert.deepEqual(page.body.events, [pub.body, second.body]);
    assert.equal(page.body.next, 2);
    assert.equal(page.body.truncated, false);
    assert.equal(typeof page.body.epoch, 'string');

    const rest = await h.call('GET', `/v1/channels/orders/events?after=1&limit=5`);
    assert.deepEqual(rest.body.events.map((e: any) => e.seq), [2]);
    const none = await h.call('GET', `/v1/channels/orders/events?after=${page.body.next}`);
    assert.deepEqual(none.body.events, []);
    assert.equal(none.body.next, 2);
  });

  it('replays an Idempotency-Key or a repeated id with 200 and the original event', async () => {
    const headers = { 'idempotency-key': 'pay-123' };
    const first = await h.call('POST', '/v1/channels/idem/events', { body: { data: { n: 1 } }, headers });
    const again = await h.call('POST', '/v1/channels/idem/events', { body: { data: { n: 2 } }, headers });
    assert.equal(first.status, 201);
    assert.equal(again.status, 200);
    assert.deepEqual(again.body, first.body);

    const byId = await h.call('POST', '/v1/channels/idem/events', { body: { id: 'my-own-id', data: 1 } });
    const byIdAgain = await h.call('POST', '/v1/channels/idem/events', { body: { id: 'my-own-id', data: 2 } });
    assert.equal(byId.status, 201);
    assert.equal(byIdAgain.status, 200);
    assert.deepEqual(byIdAgain.body, byId.body);

    const page = await h.call('GET', '/v1/channels/idem/events');
    assert.deepEqual(page.body.events.map((e: any) => e.data), [{ n: 1 }, 1]);

    const elsewhere = await h.call('POST', '/v1/channels/other/events', { body: { id: 'my-own-id', data: 3 } });
    assert.equal(elsewhere.status, 409);
    assert.equal(elsewhere.body.error.code, 'event_id_conflict');
  });

  it('refuses a chosen id of the form Herald generates, and appends nothing', async () => {
    const generated = (await h.call('POST', '/v1/channels/reserved/events', { body: { data: 0 } })).body.id as string;
    const lookalike = `evt_${'0123456789ABCDEFGHJKMNPQRS'}`;
    for (const id of [generated, lookalike]) {
      const single = await h.call('POST', '/v1/channels/reserved/events', { body: { id, data: 1 } });
      assert.equal(single.status, 400, id);
      assert.equal(single.body.error.code, 'bad_request');
      assert.match(single.body.error.message, /form of the ids Herald generates/);
      const batch = await h.call('POST', '/v1/events', { body: { events: [{ channel: 'reserved', data: 2 }, { channel: 'reserved', id, data: 3 }] } });
      assert.equal(batch.status, 400, id);
    }
    // Near misses are ordinary ids: lower case, a letter outside the alphabet, one character short.
    for (const id of ['evt_0123456789abcdefghjkmnpqrs', 'evt_0123456789ABCDEFGHJKMNPQRU'.replace('U', 'I'), 'evt_0123456789ABCDEFGHJKMNPQR']) {
      assert.equal((await h.call('POST', '/v1/channels/reserved/events', { body: { id, data: id } })).status, 201, id);
    }
    const page = await h.call('GET', '/v1/channels/reserved/events');
    assert.deepEqual(page.body.events.map((e: any) => e.data), [0, 'evt_0123456789abcdefghjkmnpqrs', 'evt_0123456789ABCDEFGHJKMNPQRI', 'evt_0123456789ABCDEFGHJKMNPQR']);
  });

  it('appends a batch atomically across channels', async () => {
    const batch = await h.call('POST', '/v1/events', {
      body: { events: [{ channel: 'b1', id: 'b1-first', data: 1 }, { channel: 'b2', type: 't', data: 2 }, { channel: 'b1', data: 3 }] },
    });
    assert.equal(batch.status, 201);
    assert.deepEqual(batch.body.events.map((e: any) => [e.channel, e.seq]), [['b1', 1], ['b2', 1], ['b1', 2]]);

    const conflicting = await h.call('POST', '/v1/events', {
      body: { events: [{ channel: 'b1', data: 4 }, { channel: 'b3', id: 'b1-first', data: 5 }] },
    });
    assert.equal(conflicting.status, 409);
    const b1 = await h.call('GET', '/v1/channels/b1/events');
    assert.equal(b1.body.events.length, 2, 'nothing of the failed batch was appended');
  });

  it('gives 50 concurrent publishers gapless seqs', async () => {
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => h.call('POST', '/v1/channels/race/events', { body: { data: { i } } })),
    );
    assert.ok(results.every((r) => r.status === 201));
    const seqs = results.map((r) => r.body.seq).sort((a, b) => a - b);
    assert.deepEqual(seqs, Array.from({ length: 50 }, (_, i) => i + 1));
    const page = await h.call('GET', '/v1/channels/race/events?limit=100');
    assert.deepEqual(page.body.events.map((e: any) => e.seq), seqs);
  });

  it('reads several channels with one resumable cursor', async () => {
    await h.call('POST', '/v1/channels/m1/events', { body: { data: 'a1' } });
    await h.call('POST', '/v1/channels/m2/events', { body: { data: 'b1' } });
    await h.call('POST', '/v1/channels/m1/events', { body: { data: 'a2' } });
    const first = await h.call('GET', '/v1/events?channel=m1&channel=m2&limit=2');
    assert.equal(first.status, 200);
    assert.deepEqual(first.body.events.map((e: any) => e.data), ['a1', 'b1']);
    assert.equal(first.body.truncated, false);
    await h.call('POST', '/v1/channels/m2/events', { body: { data: 'b2' } });
    const second = await h.call('GET', `/v1/events?channel=m1&channel=m2&cursor=${first.body.cursor}`);
    assert.deepEqual(second.body.events.map((e: any) => e.data), ['a2', 'b2']);
    const third = await h.call('GET', `/v1/events?channel=m1&channel=m2&cursor=${second.body.cursor}`);
    assert.deepEqual(third.body.events, []);
    const bad = await h.call('GET', '/v1/events?channel=m1&cursor=not-a-cursor');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'invalid_cursor');
  });
});

describe('poll bounds set lower than what clients ask for', () => {
  let h: TestServer;
  before(async () => {
    h = await startTestServer({ limits: { pageSize: 50 } });
  });
  after(async () => {
    await h.stop();
  });

  it('reads a limit past limits.pageSize, or none, as the bound instead of refusing every poll', async () => {
    const events = Array.from({ length: 60 }, (_, i) => ({ channel: 'small', data: i }));
    assert.equal((await h.call('POST', '/v1/events', { body: { events: events.slice(0, 30) } })).status, 201);
    assert.equal((await h.call('POST', '/v1/events', { body: { events: events.slice(30) } })).status, 201);
    // No limit: the default (100) was over the bound, so every plain poll was a 400.
    const plain = await h.call('GET', '/v1/channels/small/events?after=0');
    assert.equal(plain.status, 200, JSON.stringify(plain.body));
    assert.equal(plain.body.events.length, 50);
    // What `herald replay` and the SDK's long polling send.
    const asked = await h.call('GET', '/v1/channels/small/events?after=0&limit=1000');
    assert.equal(asked.status, 200, JSON.stringify(asked.body));
    assert.equal(asked.body.events.length, 50);
    assert.equal(asked.body.next, 50);
    const multi = await h.call('GET', '/v1/events?channel=small&channel=other&limit=1000&wait=25');
    assert.equal(multi.status, 200, JSON.stringify(multi.body));
    assert.equal(multi.body.events.length, 50);
  });
});

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { encodeCursor } from '@herald/protocol';
import { startTestServer, type TestServer, until } from './helpers.js';

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
    // A page is the log as it stood: no cache may keep one and answer the same position with it again.
    for (const page of [first, second, third, await h.call('GET', '/v1/channels/m1/events?after=0')]) assert.equal(page.headers.get('cache-control'), 'no-store');
    const bad = await h.call('GET', '/v1/events?channel=m1&cursor=not-a-cursor');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'invalid_cursor');
  });

  it("names each channel's head in a multi-channel page, as each channel's own page does, whatever was read of it", async () => {
    for (const [channel, count] of [['h-many', 3], ['h-one', 1], ['h-caught-up', 2]] as const) {
      for (let i = 0; i < count; i++) assert.equal((await h.call('POST', `/v1/channels/${channel}/events`, { body: { data: i } })).status, 201);
    }
    const heads: Record<string, number> = {};
    for (const channel of ['h-many', 'h-one', 'h-caught-up', 'h-never']) heads[channel] = (await h.call('GET', `/v1/channels/${channel}/events?limit=1`)).body.head;
    assert.deepEqual(heads, { 'h-many': 3, 'h-one': 1, 'h-caught-up': 2, 'h-never': 0 });
    // h-many read only in part (limit 1), h-caught-up from its head (nothing to read), h-one from past its head (a
    // position from a lost history: a gap), h-never never published to.
    const cursor = encodeCursor(new Map([['h-caught-up', 2], ['h-one', 9]]));
    const channels = ['h-many', 'h-one', 'h-caught-up', 'h-never'].map((c) => `channel=${c}`).join('&');
    const page = await h.call('GET', `/v1/events?${channels}&limit=1&cursor=${encodeURIComponent(cursor)}`);
    assert.equal(page.status, 200, JSON.stringify(page.body));
    assert.deepEqual(page.body.truncatedChannels, ['h-one']);
    assert.equal(page.body.events.length, 1);
    assert.deepEqual(page.body.heads, heads);
    // A parked poll woken by news names the head the news reached.
    const waiting = h.call('GET', `/v1/events?${channels}&wait=10&cursor=${encodeURIComponent(encodeCursor(new Map([['h-many', 3], ['h-one', 1], ['h-caught-up', 2]])))}`);
    await until(() => h.longPoll.parked > 0, 5000, 'the poll parked');
    await h.call('POST', '/v1/channels/h-never/events', { body: { data: 'first' } });
    const woken = await waiting;
    assert.deepEqual(woken.body.events.map((e: any) => e.data), ['first']);
    assert.deepEqual(woken.body.heads, { ...heads, 'h-never': 1 });
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

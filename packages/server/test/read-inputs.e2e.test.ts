// Hostile read inputs through the real server: non-finite numbers in query strings, repeated stream positions,
// and long polls whose first read fails.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { suiteServers } from './helpers.js';

describe('read inputs', () => {
  const servers = suiteServers({ channels: { public: ['pub:*'] } });

  it('refuses non-finite numbers that Ajv coerces past its range checks, with 400 and not a 500', async () => {
    const h = await servers.start();
    assert.equal((await h.call('POST', '/v1/channels/pub:a/events', { body: { data: 1 } })).status, 201);
    assert.equal((await h.call('POST', '/v1/channels/pub:b/events', { body: { data: 2 } })).status, 201);
    for (const value of ['Infinity', '-Infinity', '1e400', '-1e400']) {
      for (const path of [
        `/v1/channels/pub:a/events?limit=${value}`,
        `/v1/channels/pub:a/events?limit=${value}&wait=5`,
        `/v1/events?channel=pub:a&channel=pub:b&limit=${value}`,
        `/v1/channels?limit=${value}`,
      ]) {
        const res = await h.call('GET', path, { token: path.startsWith('/v1/channels?') ? undefined : null });
        assert.equal(res.status, 400, `${path}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.error.code, 'bad_request');
        assert.match(res.body.error.message, /must be a finite number/);
      }
      const minted = await h.call('POST', '/v1/tokens', { body: { sub: 'u', channels: ['pub:*'], ttl: value } });
      assert.equal(minted.status, 400, JSON.stringify(minted.body));
    }
    // Not one parked wait outlived its refused request.
    assert.equal(h.longPoll.waiting, 0);
    // Finite numbers as text are still coerced; a string that reads "Infinity" is only a string.
    assert.equal((await h.call('GET', '/v1/channels/pub:a/events?limit=1e2&after=0', { token: null })).body.events.length, 1);
    assert.equal((await h.call('POST', '/v1/tokens', { body: { sub: 'u', channels: ['pub:*'], ttl: '60' } })).status, 201);
    assert.equal((await h.call('POST', '/v1/channels/pub:a/events', { raw: '{"data":"1e400","type":"Infinity"}' })).status, 201);
  });

  it('says a query parameter is given more than once, rather than that it is of the wrong type', async () => {
    const h = await servers.start();
    assert.equal((await h.call('POST', '/v1/channels/pub:a/events', { body: { data: 1 } })).status, 201);
    for (const path of ['/v1/channels/pub:a/events?limit=5&limit=6', '/v1/events?channel=pub:a&limit=5&limit=6', '/v1/channels?limit=1&limit=2&limit=3']) {
      const res = await h.call('GET', path, { token: path.startsWith('/v1/channels?') ? undefined : null });
      assert.equal(res.status, 400, `${path}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, 'bad_request');
      assert.match(res.body.error.message, /^The query parameter "limit" is given [23] times: give it once\.$/);
    }
    // A parameter that may be repeated still is, and a single wrong value is still refused for what it is.
    const both = await h.call('GET', '/v1/events?channel=pub:a&channel=pub:b&limit=5', { token: null });
    assert.equal(both.status, 200, JSON.stringify(both.body));
    const wrong = await h.call('GET', '/v1/channels/pub:a/events?limit=abc', { token: null });
    assert.equal(wrong.status, 400);
    assert.doesNotMatch(wrong.body.error.message, /given/);
  });

  it('frees a long poll’s wait when its first read fails, instead of keeping it parked after the answer', async () => {
    const h = await servers.start();
    const events = h.storage.events;
    const { read, stubs } = events;
    // A one-channel poll reads events first; a multi-channel poll reads stubs first.
    events.read = events.stubs = async () => {
      throw new Error('store gone');
    };
    try {
      const one = await h.call('GET', '/v1/channels/pub:a/events?wait=30', { token: null });
      assert.equal(one.status, 500);
      const multi = await h.call('GET', '/v1/events?channel=pub:a&channel=pub:b&wait=30', { token: null });
      assert.equal(multi.status, 500);
      // Answered and gone: nothing of either request may still wait on the bus (unfixed, both stayed for 30 s).
      assert.equal(h.longPoll.waiting, 0);
    } finally {
      Object.assign(events, { read, stubs });
    }
  });

  it("reads a poll's ?after= as a stream's: digits only, given once, else 400 invalid_cursor (never a guess such as 0x10 as 16)", async () => {
    const h = await servers.start();
    for (let i = 1; i <= 3; i++) await h.call('POST', '/v1/channels/pub:p/events', { body: { data: i } });
    for (const after of ['0x10', '%20', '-1', '1.5', '1e1', 'Infinity', 'abc', '1&after=2', '9007199254740992']) {
      for (const path of [`/v1/channels/pub:p/events?after=${after}`, `/v1/channels/pub:p/stream?after=${after}`]) {
        const res = await fetch(h.url + path);
        const body = res.status === 400 ? ((await res.json()) as { error: { code: string } }) : void (await res.body?.cancel());
        assert.deepEqual([res.status, body?.error.code], [400, 'invalid_cursor'], path);
      }
    }
    const seqs = async (query: string) => (await h.call('GET', `/v1/channels/pub:p/events${query}`, { token: null })).body.events.map((e: { seq: number }) => e.seq);
    assert.deepEqual(await seqs('?after=1'), [2, 3]);
    assert.deepEqual(await seqs('?after=01'), [2, 3], 'leading zeros are digits too');
    assert.deepEqual(await seqs('?after='), [1, 2, 3], 'empty: from the start, as with none');
    // The largest position a WebSocket `after` or a cursor takes: past the head, so read from the oldest event.
    const far = (await h.call('GET', '/v1/channels/pub:p/events?after=9007199254740991', { token: null })).body;
    assert.deepEqual([far.truncated, far.events.map((e: { seq: number }) => e.seq)], [true, [1, 2, 3]]);
    assert.deepEqual(await seqs(''), [1, 2, 3]);
  });

  it('answers a stream position given twice with 400 invalid_cursor, not a 500', async () => {
    const h = await servers.start();
    for (const query of [
      'channel=pub:a&channel=pub:b&after=0&after=0',
      'channel=pub:a&channel=pub:b&lastEventId=2.x.1.1&lastEventId=2.x.1.1',
      'channel=pub:a&cursor=a&cursor=b',
    ]) {
      const res = await h.call('GET', `/v1/stream?${query}`, { token: null });
      assert.equal(res.status, 400, `${query}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, 'invalid_cursor');
    }
    const single = await h.call('GET', '/v1/channels/pub:a/stream?after=1&after=2', { token: null });
    assert.equal(single.status, 400);
    assert.equal(single.body.error.code, 'invalid_cursor');
  });

  it('answers a position given two ways with 400 invalid_cursor, and lets Last-Event-ID win over the query', async () => {
    const h = await servers.start();
    await h.call('POST', '/v1/channels/pub:a/events', { body: { data: 1 } });
    const cursor = (await h.call('GET', '/v1/events?channel=pub:a&channel=pub:b', { token: null })).body.cursor;
    for (const path of [
      // Each of these was answered with one position followed and the other dropped without a word.
      '/v1/stream?channel=pub:a&channel=pub:b&after=0&cursor=garbage',
      `/v1/stream?channel=pub:a&channel=pub:b&lastEventId=0&cursor=${cursor}`,
      '/v1/channels/pub:a/stream?after=0&lastEventId=1',
      `/v1/events?channel=pub:a&channel=pub:b&cursor=${cursor}&after=0`,
      '/v1/events?channel=pub:a&channel=pub:b&after=1',
      `/v1/events?channel=pub:a&channel=pub:b&cursor=${cursor}&cursor=${cursor}`,
    ]) {
      // Not read to its end when it is a stream: unfixed, it was one, open.
      const res = await fetch(h.url + path);
      const code = res.status === 400 ? ((await res.json()) as { error: { code: string } }).error.code : void (await res.body?.cancel());
      assert.deepEqual([res.status, code], [400, 'invalid_cursor'], path);
    }
    // A browser reconnects with the first connection's URL and the Last-Event-ID it last saw: the header is the newer.
    const controller = new AbortController();
    const res = await fetch(`${h.url}/v1/channels/pub:a/stream?after=0`, { headers: { 'last-event-id': '1' }, signal: controller.signal });
    assert.equal(res.status, 200);
    await h.call('POST', '/v1/channels/pub:a/events', { body: { data: 2 } });
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes('"seq":2')) text += new TextDecoder().decode((await reader.read()).value);
    controller.abort();
    assert.ok(!text.includes('"seq":1'), 'resumed after the header, not after ?after=0');
  });
});

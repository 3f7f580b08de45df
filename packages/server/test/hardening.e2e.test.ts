import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT } from 'jose';
import { sign, generateSecret } from '@herald/webhooks';
import type { HeraldEvent } from '@herald/protocol';
import { ADMIN_KEY, eventually, rawConnection, sleep, suiteServers, type TestServer, until } from './helpers.js';
import { WsTestClient } from './ws-client.js';
import { readStream } from './sse-client.js';

const TOKEN_SECRET = 'hardening-token-secret-0123456789abcdef';

function nested(depth: number): unknown {
  let v: unknown = 'leaf';
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

/** nested(depth)'s JSON, written out: JSON.stringify of thousands of levels overflows the stack on Node 22. */
const nestedText = (depth: number) => `${'['.repeat(depth)}"leaf"${']'.repeat(depth)}`;

describe('security hardening through the real server', () => {
  const { start, track } = suiteServers({ tokenSecret: TOKEN_SECRET });
  const connect = (h: TestServer, credential: string) => {
    const c = new WsTestClient(`${h.url.replace('http', 'ws')}/v1/ws?token=${credential}`);
    track(c);
    return c;
  };
  const mint = async (h: TestServer, key: string, body: Record<string, unknown>) => {
    const res = await h.call('POST', '/v1/tokens', { body, token: key });
    return res;
  };

  it('matches channel patterns in linear time: a many-star token cannot stall the server', { timeout: 20_000 }, async () => {
    const h = await start();
    const key = await h.createKey(['subscribe'], ['user:*']);
    // Nine stars are over the bound: refused at minting.
    const tooMany = await mint(h, key, { sub: 'u', channels: ['user:*a*a*a*a*a*a*a*a*b'] });
    assert.equal(tooMany.status, 400);
    // Eight are allowed, and the worst case for a backtracking matcher then costs nothing.
    const minted = await mint(h, key, { sub: 'u', channels: ['user:*a*a*a*a*a*a*a*b'] });
    assert.equal(minted.status, 201);
    const channel = 'user:' + 'a'.repeat(120);
    const [poll, health] = await Promise.all([
      h.call('GET', `/v1/channels/${channel}/events`, { token: minted.body.token }),
      h.call('GET', '/healthz', { token: null }),
    ]);
    assert.equal(poll.status, 403);
    assert.equal(health.status, 200);
    // The same check on the WebSocket: subscribe and publish.
    const ws = connect(h, minted.body.token);
    await ws.opened;
    ws.send({ op: 'subscribe', channel, ref: 's' });
    ws.send({ op: 'publish', channel, data: 1, ref: 'p' });
    const errors = await ws.next('error', 2);
    assert.deepEqual(errors.map((e) => e.code).sort(), ['forbidden', 'forbidden']);
    // A token minted offline with the shared secret is held to the same bound.
    const offline = await new SignJWT({ channels: ['user:' + '*a'.repeat(60) + '*b'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('x')
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(TOKEN_SECRET));
    assert.equal((await h.call('GET', `/v1/channels/${channel}/events`, { token: offline })).status, 401);
  });

  it('scopes Idempotency-Key to the credential, with parts that cannot collide', async () => {
    const h = await start();
    const a = await h.createKey(['publish', 'subscribe'], ['a:*']);
    const b = await h.createKey(['publish'], ['b:*']);
    const headers = { 'idempotency-key': 'same-key' };
    const first = await h.call('POST', '/v1/events', { body: { events: [{ channel: 'a:1', data: { secret: 'of a' } }] }, token: a, headers });
    assert.equal(first.status, 201);
    const other = await h.call('POST', '/v1/events', { body: { events: [{ channel: 'b:1', data: { mine: true } }] }, token: b, headers });
    assert.equal(other.status, 201, 'b gets its own batch, not a replay of a');
    assert.equal(other.body.events[0].channel, 'b:1');
    assert.deepEqual(other.body.events[0].data, { mine: true });
    const replay = await h.call('POST', '/v1/events', { body: { events: [{ channel: 'b:1', data: { mine: true } }] }, token: b, headers });
    assert.equal(replay.status, 200);
    assert.equal(replay.body.events[0].id, other.body.events[0].id);

    // `pub` + `42:k1` and `pub:42` + `k1` once made the same stored key.
    const one = await h.call('POST', '/v1/channels/pub/events', { body: { data: 1 }, headers: { 'idempotency-key': '42:k1' } });
    const two = await h.call('POST', '/v1/channels/pub:42/events', { body: { data: 2 }, headers: { 'idempotency-key': 'k1' } });
    assert.equal(one.status, 201);
    assert.equal(two.status, 201);
    assert.equal(two.body.channel, 'pub:42');
    assert.deepEqual(two.body.data, 2);
  });

  it('never returns stored data to a caller that may not read it, and a 409 names no channel', async () => {
    const h = await start();
    const publisher = await h.createKey(['publish'], ['s']);
    const original = await h.call('POST', '/v1/channels/s/events', { body: { id: 'secret-1', data: { card: '4242' }, meta: { m: 1 } } });
    assert.equal(original.status, 201);
    const replay = await h.call('POST', '/v1/channels/s/events', { body: { id: 'secret-1', data: 'guess' }, token: publisher });
    assert.equal(replay.status, 200);
    assert.equal(replay.body.id, 'secret-1');
    assert.equal(replay.body.seq, 1);
    assert.equal('data' in replay.body, false);
    assert.equal('meta' in replay.body, false);
    const batch = await h.call('POST', '/v1/events', { body: { events: [{ channel: 's', id: 'secret-1', data: 'x' }] }, token: publisher });
    assert.equal('data' in batch.body.events[0], false);
    // The admin may read: it gets the original back.
    const adminReplay = await h.call('POST', '/v1/channels/s/events', { body: { id: 'secret-1', data: 'guess' } });
    assert.deepEqual(adminReplay.body.data, { card: '4242' });
    const hidden = await h.call('POST', '/v1/channels/elsewhere/events', { body: { data: 1, id: 'hidden-1' } });
    assert.equal(hidden.status, 201);
    const other = await h.createKey(['publish'], ['s']);
    const conflict = await h.call('POST', '/v1/channels/s/events', { body: { id: 'hidden-1', data: 1 }, token: other });
    assert.equal(conflict.status, 409);
    assert.doesNotMatch(JSON.stringify(conflict.body), /elsewhere/);
  });

  it('refuses a number JSON cannot carry (1e400, read as Infinity) in data or meta on every way in, instead of storing null', async () => {
    const h = await start();
    const refused = (res: { status: number; body: any }, what: string) => {
      assert.equal(res.status, 400, `${what}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, 'bad_request', what);
      assert.match(res.body.error.message, /beyond what JSON can carry/, what);
    };
    refused(await h.call('POST', '/v1/channels/n/events', { raw: '{"data":{"n":1e400}}' }), 'a single publish');
    refused(await h.call('POST', '/v1/channels/n/events', { raw: '{"data":1,"meta":{"m":[-1e400]}}' }), 'meta');
    refused(await h.call('POST', '/v1/events', { raw: '{"events":[{"channel":"n","data":1},{"channel":"n","data":[2e308]}]}' }), 'a batch');
    const ws = connect(h, ADMIN_KEY);
    await ws.opened;
    ws.sendRaw('{"op":"publish","channel":"n","data":{"n":1e400},"ref":"big"}');
    const [error] = await ws.next('error');
    assert.equal(error.code, 'bad_request');
    assert.equal(error.ref, 'big');

    const secret = generateSecret();
    assert.equal((await h.call('POST', '/v1/sources', { body: { name: 'num', provider: 'standard', secrets: [secret], channel: 'n' } })).status, 201);
    const body = '{"type":"x","data":{"amount":1e400}}';
    const headers = sign('standard', { secret, body, id: 'msg_big' });
    const ingest = await fetch(`${h.url}/v1/ingest/num`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
    refused({ status: ingest.status, body: await ingest.json() }, 'a signed webhook');
    // The largest double is a number like any other; nothing refused reached the log.
    assert.equal((await h.call('POST', '/v1/channels/n/events', { raw: '{"data":1.7976931348623157e308}' })).status, 201);
    assert.deepEqual((await h.call('GET', '/v1/channels/n/events')).body.events.map((e: HeraldEvent) => e.data), [1.7976931348623157e308]);
  });

  it('refuses JSON deeper than limits.jsonDepth on every way in', async () => {
    const h = await start({ limits: { jsonDepth: 64 } });
    assert.equal((await h.call('POST', '/v1/channels/d/events', { body: { data: nested(64) } })).status, 201);
    const deep = await h.call('POST', '/v1/channels/d/events', { body: { data: nested(65) } });
    assert.equal(deep.status, 400);
    assert.equal(deep.body.error.code, 'payload_too_deep');
    const deepMeta = await h.call('POST', '/v1/channels/d/events', { body: { data: 1, meta: { m: nested(70) } } });
    assert.equal(deepMeta.body.error.code, 'payload_too_deep');
    const batch = await h.call('POST', '/v1/events', { raw: `{"events":[{"channel":"d","data":1},{"channel":"d","data":${nestedText(4100)}}]}` });
    assert.equal(batch.status, 400);
    assert.equal(batch.body.error.code, 'payload_too_deep');
    const ws = connect(h, ADMIN_KEY);
    await ws.opened;
    ws.send({ op: 'publish', channel: 'd', data: nested(100), ref: 'deep' });
    const [error] = await ws.next('error');
    assert.equal(error.code, 'payload_too_deep');
    assert.equal(error.ref, 'deep');

    const secret = generateSecret();
    assert.equal((await h.call('POST', '/v1/sources', { body: { name: 'std', provider: 'standard', secrets: [secret], channel: 'd' } })).status, 201);
    const body = JSON.stringify({ type: 'x', data: nested(80) });
    const headers = sign('standard', { secret, body, id: 'msg_deep' });
    const ingest = await fetch(`${h.url}/v1/ingest/std`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
    assert.equal(ingest.status, 400);
    assert.equal(((await ingest.json()) as any).error.code, 'payload_too_deep');
    // Nothing refused reached the log: only the first event is there.
    assert.equal((await h.call('GET', '/v1/channels/d/events')).body.events.length, 1);
  });

  it('parses no body for nothing: none of a request no route takes, nor of OPTIONS; text nested past any setting is refused unparsed', async () => {
    const h = await start();
    // Text that is not JSON at all: a parse would answer 400 invalid_json.
    const notFound = await h.call('POST', '/v1/nothing-here', { raw: '{x', token: null });
    assert.equal(notFound.status, 404, JSON.stringify(notFound.body));
    assert.equal(notFound.body.error.code, 'not_found');
    const options = await h.call('OPTIONS', '/v1/channels/t/events', { raw: '{x', token: null });
    assert.notEqual(options.status, 400, JSON.stringify(options.body));
    // A megabyte of nesting, from a caller who may publish: refused before any parse, in one request.
    const deep = `{"data":${nestedText(400_000)}}`;
    const refused = await h.call('POST', '/v1/channels/deep/events', { raw: deep });
    assert.equal(refused.status, 400);
    assert.equal(refused.body.error.code, 'payload_too_deep');
    assert.match(refused.body.error.message, /more than 1008 levels/);
    // Over an anonymous WebSocket too; the socket goes on.
    const ws = connect(h, '');
    await ws.opened;
    // The ref after the data, as the SDK sends it: still read back, so a request waiting on it is answered.
    ws.ws.send(`{"op":"publish","channel":"deep","data":${nestedText(400_000)},"ref":"d"}`);
    const [error] = await ws.next('error');
    assert.equal(error.code, 'payload_too_deep');
    assert.match(error.message, /^The frame nests/);
    assert.equal(error.ref, 'd');
    ws.send({ op: 'ping' });
    await ws.next('pong');
    assert.equal((await h.call('GET', '/v1/channels/deep/events')).body.events.length, 0);
  });

  it('serves a channel that holds an event stored deeper than anything can serialize', async () => {
    const h = await start();
    await h.call('POST', '/v1/channels/poisoned/events', { body: { data: 'before' } });
    // Written straight to the store, as an older version would have accepted it.
    await h.storage.events.append({ events: [{ channel: 'poisoned', id: 'deep-1', type: 'message', data: nested(4100), time: Date.now() }] });
    await h.call('POST', '/v1/channels/poisoned/events', { body: { data: 'after' } });
    await h.call('POST', '/v1/channels/clean/events', { body: { data: 'clean' } });

    const poll = await h.call('GET', '/v1/channels/poisoned/events?after=0');
    assert.equal(poll.status, 200);
    assert.deepEqual(poll.body.events.map((e: HeraldEvent) => e.data), ['before', null, 'after']);
    assert.equal(poll.body.events[1].error.code, 'payload_too_deep');
    const multi = await h.call('GET', '/v1/events?channel=poisoned&channel=clean');
    assert.equal(multi.status, 200);
    assert.equal(multi.body.events.length, 4);
    const { text } = await readStream(`${h.url}/v1/channels/poisoned/stream?after=0`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } }, (t) => t.includes('"after"'));
    assert.match(text, /id: 2\ndata: .*payload_too_deep/);
    assert.match(text, /id: 3\ndata: .*"after"/);
  });

  it('ends a revoked key’s sockets and streams, and the tokens it minted', { timeout: 20_000 }, async () => {
    const h = await start();
    const created = await h.call('POST', '/v1/keys', { body: { name: 'doomed', scopes: ['subscribe', 'publish'], channels: ['r:*'] } });
    const key = created.body.key as string;
    const token = (await mint(h, key, { sub: 'viewer', channels: ['r:*'], ttl: 3600 })).body.token as string;
    const byKey = connect(h, key);
    const byToken = connect(h, token);
    await Promise.all([byKey.opened, byToken.opened]);
    byKey.send({ op: 'subscribe', channel: 'r:1', ref: 'k' });
    byToken.send({ op: 'subscribe', channel: 'r:1', ref: 't' });
    await Promise.all([byKey.next('subscribed'), byToken.next('subscribed')]);
    const stream = readStream(`${h.url}/v1/channels/r:1/stream`, { headers: { authorization: `Bearer ${token}` } }, () => false, 10_000);
    // The stream is open (registered with the hub) before the key is revoked; else it would be refused, not ended.
    await until(() => h.sse.size === 1 && h.ws.size === 2);
    assert.equal((await h.call('GET', '/v1/channels/r:1/events', { token })).status, 200);

    const revokedAt = Date.now();
    assert.equal((await h.call('DELETE', `/v1/keys/${created.body.id}`)).status, 200);
    const [keyClose, tokenClose] = await Promise.all([byKey.closedWith(5000), byToken.closedWith(5000)]);
    assert.deepEqual(keyClose, { code: 1008, reason: 'credential revoked' });
    assert.deepEqual(tokenClose, { code: 1008, reason: 'credential revoked' });
    const sse = await stream;
    assert.ok(sse.ended, 'the SSE stream was ended by the server');
    assert.match(sse.text, /event: close\ndata: \{"reason":"credential revoked"\}/);
    assert.ok(Date.now() - revokedAt < 5000);
    const refused = await h.call('GET', '/v1/channels/r:1/events', { token });
    assert.equal(refused.status, 401);
  });

  it('closes a socket whose token expires, and re-checks the credential on every op', { timeout: 20_000 }, async () => {
    const h = await start();
    const key = await h.createKey(['subscribe'], ['e:*']);
    // `exp` counts whole seconds from the second of minting: a 1 s token can expire before the socket opens.
    const token = (await mint(h, key, { sub: 'short', channels: ['e:*'], ttl: 2 })).body.token as string;
    const ws = connect(h, token);
    await ws.opened;
    ws.send({ op: 'subscribe', channel: 'e:1', ref: 's' });
    await ws.next('subscribed');
    const closed = await ws.closedWith(5000);
    assert.deepEqual(closed, { code: 1008, reason: 'credential expired' });

    // A key revoked on another node: this node's sweep may not have run yet, but the next op checks.
    const created = await h.call('POST', '/v1/keys', { body: { name: 'k', scopes: ['publish'], channels: ['e:*'] } });
    const live = connect(h, created.body.key);
    await live.opened;
    await h.storage.keys.revoke(created.body.id, Date.now());
    h.auth.liveness.forget(created.body.id);
    live.send({ op: 'publish', channel: 'e:1', data: 1, ref: 'p' });
    assert.deepEqual(await live.closedWith(3000), { code: 1008, reason: 'credential revoked' });
    assert.equal(live.ops('ack').length, 0);
  });

  it('a re-`auth` keeps only what the new credential grants: no subscription outlives the revoked token that made it', { timeout: 20_000 }, async () => {
    const h = await start({ channels: { presence: ['both:*'] } });
    const doomed = await h.call('POST', '/v1/keys', { body: { name: 'doomed', scopes: ['subscribe'], channels: ['s:*', 'both:*'] } });
    const other = await h.createKey(['subscribe'], ['both:*', 'p:*']);
    const wide = (await mint(h, doomed.body.key, { sub: 'alice', channels: ['s:*', 'both:*'] })).body.token as string;
    const narrow = (await mint(h, other, { sub: 'alice', channels: ['both:*', 'p:*'] })).body.token as string;
    const renamed = (await mint(h, other, { sub: 'mallory', channels: ['both:*'] })).body.token as string;
    const ws = connect(h, wide);
    await ws.opened;
    ws.send({ op: 'subscribe', channel: 's:1', ref: 's' });
    ws.send({ op: 'subscribe', channel: 'both:1', ref: 'b', presence: {} });
    await ws.next('subscribed', 2);

    // The narrower token, same `sub`: the channel it does not cover ends, the one it covers (and its membership) stays.
    ws.send({ op: 'auth', token: narrow });
    await ws.next('authenticated');
    assert.deepEqual(ws.ops('unsubscribed'), [{ op: 'unsubscribed', channel: 's:1' }]);
    // The key that minted the first token is revoked: the socket, now on the other key's token, stays open.
    assert.equal((await h.call('DELETE', `/v1/keys/${doomed.body.id}`)).status, 200);
    await sleep(2500);
    await h.call('POST', '/v1/channels/s:1/events', { body: { data: 'secret' } });
    await h.call('POST', '/v1/channels/both:1/events', { body: { data: 'shared' } });
    await ws.next('event');
    ws.send({ op: 'ping' });
    await ws.next('pong');
    assert.equal(ws.closed, undefined);
    assert.deepEqual(ws.ops('event').map((e) => [e.channel, e.data]), [['both:1', 'shared']]);
    assert.deepEqual((await h.call('GET', '/v1/channels/both:1/presence')).body.members.map((m: any) => m.sub), ['alice']);

    // Another `sub`: the membership announced as alice ends with its subscription.
    ws.send({ op: 'auth', token: renamed });
    await ws.next('authenticated', 2);
    assert.deepEqual(ws.ops('unsubscribed').at(-1), { op: 'unsubscribed', channel: 'both:1' });
    assert.deepEqual((await h.call('GET', '/v1/channels/both:1/presence')).body.members, []);
  });

  it('runs a socket’s frames in order although every op re-checks the credential first', async () => {
    const h = await start();
    const key = await h.createKey(['subscribe', 'publish'], ['o:*']);
    for (let i = 0; i < 10; i++) {
      const ws = new WsTestClient(`${h.url.replace('http', 'ws')}/v1/ws`);
      track(ws);
      await ws.opened;
      // auth, then at once subscribe and publish: both run after the auth lookup, never refused as anonymous.
      ws.send({ op: 'auth', token: key });
      ws.send({ op: 'subscribe', channel: `o:${i}`, ref: 's' });
      ws.send({ op: 'publish', channel: `o:${i}`, data: i, ref: 'p' });
      await ws.next('ack');
      await ws.next('event');
      assert.equal(ws.ops('error').length, 0, JSON.stringify(ws.ops('error')));
      // subscribe then unsubscribe at once: the subscription is gone, nothing more arrives.
      ws.send({ op: 'subscribe', channel: `o:x${i}`, ref: 's2' });
      ws.send({ op: 'unsubscribe', channel: `o:x${i}`, ref: 'u2' });
      await ws.next('unsubscribed');
      await h.call('POST', `/v1/channels/o:x${i}/events`, { body: { data: 'late' } });
      ws.send({ op: 'ping' });
      await ws.next('pong');
      assert.equal(ws.ops('event').filter((e) => e.channel === `o:x${i}`).length, 0);
      ws.ws.close();
    }
  });

  it('reads no more than a multi-channel poll returns, and bounds the bytes of one answer and of what it loads', async () => {
    const h = await start({ limits: { pageBytes: 20_000 } });
    const channels = Array.from({ length: 40 }, (_, i) => `m:${i}`);
    const big = 'x'.repeat(2000);
    for (const channel of channels) {
      await h.call('POST', '/v1/events', { body: { events: Array.from({ length: 10 }, (_, n) => ({ channel, data: { n, big } })) } });
    }
    let eventsRead = 0;
    let bytesRead = 0;
    const store = h.storage.events;
    const read = store.read.bind(store);
    store.read = async (channel, after, limit, maxBytes) => {
      const page = await read(channel, after, limit, maxBytes);
      eventsRead += page.events.length;
      bytesRead += page.events.reduce((n, e) => n + JSON.stringify(e.data).length, 0);
      return page;
    };
    const query = channels.map((c) => `channel=${c}`).join('&');
    const first = await h.call('GET', `/v1/events?${query}&limit=8`);
    assert.equal(first.status, 200);
    assert.equal(first.body.events.length, 8);
    // The events are chosen by their stubs: only those answered are loaded, not each channel's next one to compare.
    assert.equal(eventsRead, 8, `read ${eventsRead} events to return 8`);
    eventsRead = 0;
    const one = await h.call('GET', `/v1/events?${query}&limit=1`);
    assert.deepEqual([one.body.events.length, eventsRead], [1, 1], 'one event of 40 channels, loaded alone');

    // With big events the byte budget ends the page early; following the cursor still gets every event once.
    eventsRead = 0;
    const seen = new Set<string>();
    let cursor = '';
    for (let pages = 0; pages < 100 && seen.size < 400; pages++) {
      bytesRead = 0;
      const page = await h.call('GET', `/v1/events?${query}&limit=1000${cursor ? `&cursor=${cursor}` : ''}`);
      assert.ok(page.body.events.length <= 10, `a page of ${page.body.events.length} events passed the 20 kB budget`);
      // What is loaded is what the stored sizes let into the budget: no event beyond the one that may pass it.
      assert.ok(bytesRead <= 20_000 + 2100, `loaded ${bytesRead} bytes to answer a 20 kB page`);
      for (const e of page.body.events) {
        assert.ok(!seen.has(e.id));
        seen.add(e.id);
      }
      cursor = page.body.cursor;
    }
    assert.equal(seen.size, 400);
    const single = await h.call('GET', '/v1/channels/m:0/events?limit=1000');
    assert.ok(single.body.events.length >= 1 && single.body.events.length <= 10);
    assert.equal(single.body.next, single.body.events.at(-1).seq);

    // One channel of 50 such events: a poll for 1000 loads about a page of them, not all 50.
    await h.call('POST', '/v1/events', { body: { events: Array.from({ length: 50 }, (_, n) => ({ channel: 'm:long', data: { n, big } })) } });
    eventsRead = 0;
    const long = await h.call('GET', '/v1/channels/m:long/events?limit=1000');
    assert.ok(long.body.events.length >= 1 && long.body.events.length <= 10);
    assert.ok(eventsRead <= 11, `read ${eventsRead} events to answer ${long.body.events.length}`);
  });

  it('refuses an SSE stream from an origin that is not allowed, with 403', async () => {
    const h = await start({ cors: { origins: ['http://app.example'] }, channels: { public: ['pub'] } });
    const refused = await fetch(`${h.url}/v1/channels/pub/stream`, { headers: { origin: 'http://evil.example' } });
    assert.equal(refused.status, 403);
    assert.equal(((await refused.json()) as any).error.code, 'forbidden');
    const multi = await fetch(`${h.url}/v1/stream?channel=pub`, { headers: { origin: 'http://evil.example' } });
    assert.equal(multi.status, 403);
    const allowed = await readStream(`${h.url}/v1/channels/pub/stream`, { headers: { origin: 'http://app.example' } }, (t) => t.includes('retry:'));
    assert.equal(allowed.res.status, 200);
  });

  it('closes connections past limits.connections as they arrive, and takes new ones once some close', async () => {
    const h = await start({ limits: { connections: 3 } });
    const held = [await rawConnection(h.url), await rawConnection(h.url)];
    const ws = connect(h, ADMIN_KEY);
    await ws.opened;
    // Three open (two idle, one WebSocket): a fourth is closed before it can send anything.
    const extra = await rawConnection(h.url);
    await until(() => extra.socket.closed, 3000, 'the fourth connection closed');
    const refused = await fetch(`${h.url}/healthz`).then(
      (res) => res.status,
      () => 'closed',
    );
    assert.equal(refused, 'closed');
    // Those already open still work.
    ws.send({ op: 'ping' });
    await ws.next('pong');
    held[0]!.socket.destroy();
    await until(async () => (await fetch(`${h.url}/healthz`).then((res) => res.status, () => 0)) === 200, 5000, 'a new connection served');
    held[1]!.socket.destroy();
    ws.ws.close();
    const metrics = await eventually(async () => (await fetch(`${h.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).text());
    const dropped = Number(/^herald_connections_dropped_total (\d+)/m.exec(metrics)?.[1]);
    assert.ok(dropped >= 2, `dropped ${dropped}`);
  });
});

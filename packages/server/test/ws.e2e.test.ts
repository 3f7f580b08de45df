import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import type { ClientOptions, WebSocket } from 'ws';
import { WsTestClient as Client } from './ws-client.js';
import { ADMIN_KEY, rawConnection, startTestServer, suiteServers, type TestServer, until } from './helpers.js';

describe('WebSockets', () => {
  const { start, track } = suiteServers();
  /** The server still takes a socket and answers it. */
  const stillServing = async (h: TestServer) => {
    const c = connect(h);
    await c.opened;
    c.send({ op: 'ping' });
    await c.next('pong');
  };
  const connect = (h: TestServer, query = `?token=${ADMIN_KEY}`, options: ClientOptions = {}) => {
    const c = new Client(`${h.url.replace('http', 'ws')}/v1/ws${query}`, options);
    track(c);
    return c;
  };

  /** An admin socket, open and subscribed to `channel`. */
  const subscribedTo = async (h: TestServer, channel: string) => {
    const c = connect(h);
    await c.opened;
    c.send({ op: 'subscribe', channel, ref: `sub:${channel}` });
    await c.next('subscribed');
    return c;
  };

  it('delivers the backlog after `after`, then live events, in order', async () => {
    const h = await start();
    for (let i = 1; i <= 3; i++) await h.call('POST', '/v1/channels/feed/events', { body: { data: i } });
    const c = connect(h);
    await c.opened;
    c.send({ op: 'subscribe', channel: 'feed', after: 1, ref: 's1' });
    const [subscribed] = await c.next('subscribed');
    assert.equal(subscribed.channel, 'feed');
    assert.equal(subscribed.ref, 's1');
    assert.equal(subscribed.seq, 3);
    assert.equal(typeof subscribed.epoch, 'string');
    await c.next('event', 2);
    for (let i = 4; i <= 6; i++) await h.call('POST', '/v1/channels/feed/events', { body: { data: i } });
    const events = await c.next('event', 5);
    assert.deepEqual(events.map((e) => [e.seq, e.data]), [[2, 2], [3, 3], [4, 4], [5, 5], [6, 6]]);
    assert.ok(events.every((e) => e.channel === 'feed' && e.type === 'message' && e.id.startsWith('evt_') && e.time));
    assert.equal(c.frames.indexOf(subscribed), 0, 'subscribed comes before the backlog');
  });

  it('refuses a publish frame with a prototype-poisoning key, as the HTTP API refuses such a body', async () => {
    const h = await start();
    const c = connect(h);
    await c.opened;
    c.ws.send('{"op":"publish","channel":"poison","ref":"p1","data":{"a":{"__proto__":{"admin":true}}}}');
    const [error] = await c.next('error');
    assert.equal(error.code, 'bad_request');
    assert.equal(error.ref, 'p1');
    assert.match(error.message, /"__proto__" at frame\.data\.a\.__proto__/);
    assert.equal((await h.call('GET', '/v1/channels/poison/events')).body.events.length, 0, 'nothing appended');
  });

  it('answers a refused frame in its turn, after the answers to the frames sent before it', async () => {
    const h = await start();
    const c = connect(h, '');
    await c.opened;
    // auth verifies the credential off the event loop, so its answer takes a moment: the refusals were sent first.
    c.send({ op: 'auth', token: ADMIN_KEY });
    c.send({ op: 'bogus', ref: 'r1' });
    c.send({ op: 'subscribe', channel: 'turns', ref: 's1' });
    c.ws.send('{"op":"publish","ref":"r2"}');
    c.send({ op: 'ping' });
    await c.next('pong');
    assert.deepEqual(
      c.frames.map((f) => [f.op, f.ref]),
      [['authenticated', undefined], ['error', 'r1'], ['subscribed', 's1'], ['error', 'r2'], ['pong', undefined]],
    );
  });

  it('acknowledges a publish once it is durable, and fans it out', async () => {
    const h = await start();
    const listener = connect(h);
    const publisher = connect(h);
    await Promise.all([listener.opened, publisher.opened]);
    listener.send({ op: 'subscribe', channel: 'chat' });
    await listener.next('subscribed');
    publisher.send({ op: 'publish', channel: 'chat', type: 'said', data: { text: 'hi' }, ref: 'p1' });
    const [ack] = await publisher.next('ack');
    assert.equal(ack.ref, 'p1');
    assert.equal(ack.seq, 1);
    const [event] = await listener.next('event');
    assert.equal(event.id, ack.id);
    assert.deepEqual(event.data, { text: 'hi' });
    const polled = await h.call('GET', '/v1/channels/chat/events');
    assert.equal(polled.body.events[0].id, ack.id);
    publisher.send({ op: 'ping' });
    await publisher.next('pong');
    publisher.send({ op: 'publish', channel: 'bad name', data: 1, ref: 'p2' });
    publisher.ws.send('not json');
    publisher.send({ op: 'publish', channel: 'chat', id: ack.id, data: 1, ref: 'p3' });
    const errors = await publisher.next('error', 3);
    assert.deepEqual(errors.map((e) => e.code).sort(), ['bad_request', 'invalid_channel', 'invalid_json']);
    assert.equal(errors.find((e) => e.code === 'bad_request').ref, 'p3', 'a generated id may not be chosen');
    // A frame missing its channel (or giving one that is no string) is malformed: bad_request, as the README says.
    publisher.send({ op: 'subscribe', ref: 's1' });
    publisher.send({ op: 'publish', channel: 7, data: 1, ref: 's2' });
    const missing = (await publisher.next('error', 5)).slice(3);
    assert.deepEqual(missing.map((e) => [e.ref, e.code]), [['s1', 'bad_request'], ['s2', 'bad_request']]);
  });

  it('keeps a publish frame\'s `meta` with the event, as an HTTP publish does, and refuses one that is no object', async () => {
    const h = await start();
    const listener = connect(h);
    const publisher = connect(h);
    await Promise.all([listener.opened, publisher.opened]);
    listener.send({ op: 'subscribe', channel: 'm' });
    await listener.next('subscribed');
    // Before, this was acked with a seq and stored without its meta.
    publisher.send({ op: 'publish', channel: 'm', data: 1, meta: { orderId: 7 }, traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', ref: 'a' });
    const [ack] = await publisher.next('ack');
    const [event] = await listener.next('event');
    const stored = (await h.call('GET', '/v1/channels/m/events')).body.events[0];
    for (const got of [event, stored]) {
      assert.equal(got.id, ack.id);
      assert.deepEqual(got.meta, { orderId: 7, traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' });
    }
    publisher.send({ op: 'publish', channel: 'm', data: 1, meta: [1], ref: 'b' });
    publisher.send({ op: 'publish', channel: 'm', data: 1, meta: { ok: 1 }, ephemeral: true, ref: 'c' });
    publisher.send({ op: 'publish', channel: 'm', data: 1, meta: { deep: [[[[[[[[1]]]]]]]] }, ref: 'd' });
    const errors = await publisher.next('error', 2);
    assert.deepEqual(errors.map((e) => `${e.ref} ${e.code}`), ['b bad_request', 'c bad_request']);
    assert.equal((await publisher.next('ack', 2))[1].ref, 'd', 'a deep meta within limits.jsonDepth is taken');
    assert.equal((await h.call('GET', '/v1/channels/m/events')).body.head, 2, 'nothing else was appended');
  });

  it('sends a gap when history after `after` was trimmed', async () => {
    const h = await start({ retention: { maxEvents: 2 } });
    for (let i = 1; i <= 5; i++) await h.call('POST', '/v1/channels/old/events', { body: { data: i } });
    await h.trimmer.runOnce();
    const c = connect(h);
    await c.opened;
    c.send({ op: 'subscribe', channel: 'old', after: 0 });
    await c.next('event', 2);
    const [gap] = c.ops('gap');
    assert.deepEqual(gap, { op: 'gap', channel: 'old', after: 0, oldest: 4 });
    assert.deepEqual(c.ops('event').map((e) => e.seq), [4, 5]);
  });

  it('refuses auth where it should: bad token 1008, no auth in time 1008, private channels, other origins', async () => {
    const h = await start({ ws: { authTimeout: 0.3 }, channels: { public: ['open'] } });
    const bad = connect(h, '?token=hk_wrong');
    assert.equal((await bad.closedWith()).code, 1008);

    const silent = connect(h, '');
    await silent.opened;
    assert.equal((await silent.closedWith()).code, 1008);

    const badAuthOp = connect(h, '');
    await badAuthOp.opened;
    badAuthOp.send({ op: 'auth', token: 'nope' });
    assert.equal((await badAuthOp.closedWith()).code, 1008);

    const anonymous = connect(h, '');
    await anonymous.opened;
    anonymous.send({ op: 'subscribe', channel: 'secret', ref: 'r1' });
    const [denied] = await anonymous.next('error');
    assert.deepEqual([denied.ref, denied.code], ['r1', 'unauthorized']);
    anonymous.send({ op: 'subscribe', channel: 'open' });
    await anonymous.next('subscribed');
    // A silent socket opened after it: once its auth timer has closed it, the anonymous one's has run too.
    const later = connect(h, '');
    await later.opened;
    assert.equal((await later.closedWith()).code, 1008);
    anonymous.send({ op: 'ping' });
    await anonymous.next('pong');
    assert.equal(anonymous.closed, undefined, 'a public subscriber may stay anonymous');

    const limited = connect(h, `?token=${await h.createKey(['subscribe'], ['mine:*'])}`);
    await limited.opened;
    limited.send({ op: 'subscribe', channel: 'theirs', ref: 'r2' });
    limited.send({ op: 'publish', channel: 'mine:1', data: 1, ref: 'r3' });
    const errors = await limited.next('error', 2);
    assert.deepEqual(errors.map((e) => [e.ref, e.code]).sort(), [['r2', 'forbidden'], ['r3', 'forbidden']]);

    const late = connect(h, '');
    await late.opened;
    late.send({ op: 'auth', token: ADMIN_KEY });
    await late.next('authenticated');
    late.send({ op: 'subscribe', channel: 'secret' });
    await late.next('subscribed');

    const foreign = connect(h, `?token=${ADMIN_KEY}`, { origin: 'http://evil.example' });
    await assert.rejects(foreign.opened, /HTTP 403/);
  });

  it('survives a refused socket that goes on to send a malformed frame', async () => {
    const h = await start();
    // A raw handshake with a bad credential: the server upgrades, then closes with 1008. The frame that follows
    // has a reserved opcode, so the server's reader fails on a socket that has no session to hear the error.
    const { socket, received } = await rawConnection(h.url);
    socket.write(
      'GET /v1/ws?token=hk_wrong HTTP/1.1\r\nHost: herald\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    await until(() => received().length > 0, 5000, 'the handshake answer');
    assert.match(received(), /^HTTP\/1\.1 101 /);
    socket.write(Buffer.from([0x83, 0x80, 1, 2, 3, 4]));
    await once(socket, 'close');
    await stillServing(h);
  });

  it('refuses an upgrade whose request target is no valid path with 400, and stays up', async () => {
    const h = await start();
    // Node's parser lets `//host:port/...` through; read as a URL, its port is out of range.
    const { socket, received } = await rawConnection(h.url);
    socket.write('GET //a:99999/v1/ws HTTP/1.1\r\nHost: herald\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
    await once(socket, 'close');
    const answer = received();
    assert.match(answer, /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.equal(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)).error.code, 'bad_request');
    await stillServing(h);
  });

  it('keeps no listener of its own on an open socket: the socket class hands its events to the session', async () => {
    const h = await start();
    const c = await subscribedTo(h, 'quiet');
    type Sessions<T> = Iterable<T> & { size: number };
    const sessions = (h.ws as unknown as { sessions: Sessions<{ ws: WebSocket & { _socket: Socket } }> }).sessions;
    assert.equal(sessions.size, 1);
    const [session] = sessions;
    const ws = session!.ws;
    for (const event of ['message', 'pong', 'close', 'error']) assert.equal(ws.listenerCount(event), 0, `no '${event}' listener on the WebSocket`);
    // `ws` itself listens for the socket's close and errors; the server's connection count and the upgrade's
    // error listener let go of it at the upgrade.
    assert.equal(ws._socket.listenerCount('close'), 1);
    assert.equal(ws._socket.listenerCount('error'), 1);
    c.send({ op: 'ping' });
    await c.next('pong');
  });

  it('keeps an open socket small: a plain listener table, and no chunk list held after a frame', async () => {
    const h = await start();
    const c = connect(h);
    await c.opened;
    type Internals = WebSocket & { _events: object; _receiver: { _buffers: Buffer[] } };
    const sessions = (h.ws as unknown as { sessions: Iterable<{ ws: Internals }> }).sessions;
    const [session] = sessions;
    const ws = session!.ws;
    // The listener table has no keys and inherits none (EventEmitter's own reads `_events[name]`)...
    assert.deepEqual(Reflect.ownKeys(ws._events), []);
    assert.equal(Object.getPrototypeOf(Object.getPrototypeOf(ws._events)), null);
    for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) assert.equal(ws.emit(name), false, `'${name}' has no listener`);
    // ...and still takes listeners, as any emitter's does.
    let heard = 0;
    const listener = () => (heard += 1);
    ws.on('custom', listener);
    ws.once('custom', listener);
    assert.equal(ws.emit('custom'), true);
    ws.emit('custom');
    ws.off('custom', listener);
    assert.equal(ws.emit('custom'), false);
    assert.deepEqual([heard, ws.eventNames()], [3, []]);

    const list = ws._receiver._buffers;
    c.send({ op: 'subscribe', channel: 'small', ref: 's' });
    await c.next('subscribed');
    assert.notEqual(ws._receiver._buffers, list, 'the list the frame passed through was let go');
    assert.equal(ws._receiver._buffers.length, 0);
  });

  it('lets go of the chunk list after the pong that answers a heartbeat too', async () => {
    const h = await start({ ws: { heartbeat: 0.1 } });
    const c = connect(h);
    await c.opened;
    type Internals = { ws: { _receiver: { _buffers: Buffer[] } } };
    const [session] = (h.ws as unknown as { sessions: Iterable<Internals> }).sessions;
    const list = session!.ws._receiver._buffers;
    // The client answers the server's ping by itself, and that pong is the only frame the server reads. (Watching
    // the server's count of missed pongs raced: it is 1 only from the ping until the pong, well under a millisecond.)
    await once(c.ws, 'ping');
    await until(() => session!.ws._receiver._buffers !== list, 5000, 'the list the pong passed through let go');
    assert.equal(session!.ws._receiver._buffers.length, 0);
  });

  it('reads client frames that share a chunk or span several', async () => {
    const h = await start();
    const { socket, received } = await rawConnection(h.url);
    socket.write(
      `GET /v1/ws?token=${ADMIN_KEY} HTTP/1.1\r\nHost: herald\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    await until(() => received().includes('\r\n\r\n'), 5000, 'the handshake answer');
    // A masked text frame; the zero mask leaves the payload as it is.
    const frame = (op: object) => {
      const payload = Buffer.from(JSON.stringify(op));
      return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length, 0, 0, 0, 0]), payload]);
    };
    const subscribe = (ref: string) => frame({ op: 'subscribe', channel: `chunks-${ref}`, ref });
    const answered = (n: number) => until(() => received().split('"op":"subscribed"').length - 1 === n, 5000, `${n} answers`);
    socket.write(Buffer.concat([subscribe('a'), subscribe('b')]));
    await answered(2);
    for (const [i, cut] of [3, 9, -4].entries()) {
      const two = Buffer.concat([subscribe(`c${i}`), subscribe(`d${i}`)]);
      socket.write(two.subarray(0, cut));
      await new Promise((r) => setTimeout(r, 20));
      socket.write(two.subarray(cut < 0 ? two.length + cut : cut));
      await answered(4 + 2 * i);
    }
    assert.deepEqual(
      [...received().matchAll(/"ref":"(\w+)"/g)].map((m) => m[1]),
      ['a', 'b', 'c0', 'd0', 'c1', 'd1', 'c2', 'd2'],
    );
    socket.destroy();
  });

  it('a subscribe whose starting point cannot be read leaves no subscription behind', async () => {
    const h = await start();
    const c = connect(h);
    await c.opened;
    const store = h.storage.events;
    const head = store.head.bind(store);
    store.head = async () => {
      throw new Error('the disk went away');
    };
    try {
      c.send({ op: 'subscribe', channel: 'unreadable', ref: 'u1' });
      const [error] = await c.next('error');
      assert.deepEqual([error.ref, error.code], ['u1', 'internal']);
    } finally {
      store.head = head;
    }
    const listeners = (h.bus as unknown as { listenerCount(channel: string): number }).listenerCount('unreadable');
    assert.equal(listeners, 0, 'the failed subscription left the bus');
    c.send({ op: 'subscribe', channel: 'unreadable', ref: 'u2' });
    const [subscribed] = await c.next('subscribed');
    assert.equal(subscribed.ref, 'u2');
  });

  it('checks the Origin against the allowed list', async () => {
    const h = await start({ cors: { origins: ['http://app.example'] } });
    const ok = connect(h, `?token=${ADMIN_KEY}`, { origin: 'http://app.example' });
    await ok.opened;
    const refused = connect(h, `?token=${ADMIN_KEY}`, { origin: 'http://other.example' });
    await assert.rejects(refused.opened, /HTTP 403/);
  });

  it('takes the herald_token cookie only from origins listed by name: `*` lets no other site ride on it', async () => {
    // A WebSocket has no CORS: with cors.origins `*`, any page a user visited opened a socket that carried their
    // cookie and read their private channels (cross-site WebSocket hijacking), `Origin: null` included.
    const h = await start({ cors: { origins: ['*', 'http://app.example'] } });
    await h.call('POST', '/v1/channels/private/events', { body: { data: 'secret' } });
    const cookie = `herald_token=${ADMIN_KEY}`;
    const attempt = async (origin: string | undefined) => {
      const c = connect(h, '', { headers: { cookie }, ...(origin === undefined ? {} : { origin }) });
      await c.opened;
      c.send({ op: 'subscribe', channel: 'private', after: 0, ref: 's' });
      await until(() => c.frames.some((f) => f.op === 'subscribed' || f.op === 'error'));
      const frame = c.frames.find((f) => f.op === 'subscribed' || f.op === 'error');
      c.ws.close();
      return frame.op === 'subscribed' ? 'read' : frame.code;
    };
    assert.equal(await attempt('http://evil.example'), 'unauthorized');
    assert.equal(await attempt('null'), 'unauthorized');
    assert.equal(await attempt('http://app.example'), 'read', 'an origin listed by name may use the cookie');
    assert.equal(await attempt(new URL(h.url).origin), 'read', "Herald's own origin may use the cookie");
    assert.equal(await attempt(undefined), 'read', 'no Origin: not a browser on another site');
    // The same rule over HTTP, and `?token=` still works from any allowed origin (a page must hold it to send it).
    const sse = await fetch(`${h.url}/v1/channels/private/stream?after=0`, { headers: { cookie, origin: 'http://evil.example' } });
    assert.equal(sse.status, 401);
    const poll = await fetch(`${h.url}/v1/channels/private/events?token=${ADMIN_KEY}`, { headers: { origin: 'http://evil.example' } });
    assert.equal(poll.status, 200);
  });

  it('a refused herald_token cookie waits for an auth frame: one authenticates the socket, any other first op closes it with 1008', async () => {
    // A browser sends its cookie with every upgrade: a stale one must not close a socket whose client authenticates
    // in its first frame, as @herald/client does.
    const h = await start();
    await h.call('POST', '/v1/channels/private/events', { body: { data: 'secret' } });
    const stale = { headers: { cookie: 'herald_token=hk_revoked_or_expired_0123456789' } };
    const rescued = connect(h, '', stale);
    await rescued.opened;
    rescued.send({ op: 'auth', token: ADMIN_KEY });
    rescued.send({ op: 'subscribe', channel: 'private', after: 0, ref: 's' });
    assert.equal((await rescued.next('event'))[0].data, 'secret');
    assert.equal(rescued.ops('authenticated').length, 1);
    rescued.ws.close();

    for (const first of [{ op: 'subscribe', channel: 'public-or-not', ref: 's' }, { op: 'ping' }, 'not json', { op: 'no-such-op' }]) {
      const c = connect(h, '', stale);
      await c.opened;
      if (typeof first === 'string') c.sendRaw(first);
      else c.send(first);
      assert.deepEqual(await c.closedWith(), { code: 1008, reason: 'invalid credential' }, JSON.stringify(first));
      assert.deepEqual(c.frames, [], 'nothing answered');
    }
    // A bad token in the URL or the header is the client's own choice: closed at once, as before.
    const explicit = connect(h, '?token=hk_not_a_key_0123456789');
    assert.deepEqual(await explicit.closedWith(), { code: 1008, reason: 'invalid credential' });
    // And a refused auth frame closes it too, a malformed one (no token, an empty or absurd one) included, with or
    // without a cookie.
    for (const [options, token] of [[stale, 'hk_not_a_key_0123456789'], [stale, ''], [{}, undefined], [{}, 'x'.repeat(70_000)]] as const) {
      const wrong = connect(h, '', options);
      await wrong.opened;
      wrong.send({ op: 'auth', ...(token === undefined ? {} : { token }) });
      assert.deepEqual(await wrong.closedWith(), { code: 1008, reason: 'invalid credential' }, `token ${String(token).slice(0, 30)}`);
    }
    // A long token, as POST /v1/tokens mints for 100 long channel patterns (more than 16 KiB), authenticates.
    const patterns = Array.from({ length: 100 }, (_, i) => `long${i}-${'x'.repeat(120)}`);
    const minted = await h.call('POST', '/v1/tokens', { body: { sub: 'long', channels: patterns } });
    assert.equal(minted.status, 201, JSON.stringify(minted.body));
    assert.ok(minted.body.token.length > 16_384, `${minted.body.token.length} characters`);
    const long = connect(h, '');
    await long.opened;
    long.send({ op: 'auth', token: minted.body.token });
    await long.next('authenticated');
  });

  it('closes an oversized client frame with 1009', async () => {
    const h = await start({ ws: { maxMessageBytes: 2048 } });
    const c = connect(h);
    await c.opened;
    c.send({ op: 'publish', channel: 'big', data: 'x'.repeat(4096), ref: 'r' });
    assert.equal((await c.closedWith()).code, 1009);
  });

  it('drops a peer that stops answering pings', async () => {
    const h = await start({ ws: { heartbeat: 0.1 } });
    const dead = connect(h, `?token=${ADMIN_KEY}`, { autoPong: false });
    const alive = connect(h);
    await Promise.all([dead.opened, alive.opened]);
    await until(() => h.ws.size === 2);
    let pings = 0;
    alive.ws.on('ping', () => (pings += 1));
    await dead.closedWith(3000);
    // Three more heartbeats: more than the two missed pongs that dropped the dead peer.
    const seen = pings;
    await until(() => pings >= seen + 3, 3000, 'three more pings');
    assert.equal(alive.closed, undefined, 'a peer that answers pings stays');
    assert.equal(h.ws.size, 1);
  });

  it('closes a slow consumer with 1013 at the bound while the others keep receiving', async () => {
    const h = await start({ limits: { sendBufferBytes: 256 * 1024, bodyBytes: 4 * 1024 * 1024 } });
    const slow = connect(h);
    const fast = [connect(h), connect(h), connect(h)];
    await Promise.all([slow.opened, ...fast.map((f) => f.opened)]);
    for (const c of [slow, ...fast]) c.send({ op: 'subscribe', channel: 'firehose' });
    await Promise.all([slow, ...fast].map((c) => c.next('subscribed')));
    // Stop reading: the kernel buffers fill, then the server's send buffer.
    (slow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
    const blob = 'x'.repeat(8 * 1024);
    const batches = 20;
    for (let b = 0; b < batches; b++) {
      const events = Array.from({ length: 50 }, (_, i) => ({ channel: 'firehose', data: { b, i, blob } }));
      assert.equal((await h.call('POST', '/v1/events', { body: { events } })).status, 201);
    }
    for (const f of fast) await f.next('event', batches * 50, 15_000);
    for (const f of fast) assert.deepEqual(f.ops('event').map((e) => e.seq), Array.from({ length: batches * 50 }, (_, i) => i + 1));
    (slow.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    const closed = await slow.closedWith(10_000);
    assert.equal(closed.code, 1013);
    assert.ok(slow.ops('event').length < batches * 50, 'the slow client was cut off before the end');
  });

  it('stops reading a socket whose frames wait past 1 MiB for their turn, and reads it again once they are done', async () => {
    const h = await start();
    const minted = await h.call('POST', '/v1/tokens', { body: { sub: 'u', channels: ['a'], ttl: 600 } });
    assert.equal(minted.status, 201, JSON.stringify(minted.body));
    const c = connect(h, '');
    await c.opened;
    // Each `auth` verifies its token on the thread pool, so frames sent at once wait for their turn (counted as at
    // least 1 KiB each): 3,000 of them pass the bound many times over.
    const sessions = (h.ws as unknown as { sessions: Iterable<{ ws: { isPaused: boolean } }> }).sessions;
    let paused = false;
    const watch = setInterval(() => {
      for (const session of sessions) if (session.ws.isPaused) paused = true;
    }, 1);
    const frames = 3000;
    const frame = JSON.stringify({ op: 'auth', token: minted.body.token });
    for (let i = 0; i < frames; i++) c.ws.send(frame);
    try {
      await c.next('authenticated', frames, 60_000);
    } finally {
      clearInterval(watch);
    }
    assert.ok(paused, 'the socket was not read while its frames waited');
    for (const session of sessions) assert.equal(session.ws.isPaused, false, 'read again once they were done');
    await stillServing(h);
  });

  it('drains and closes with 1001 on shutdown', async () => {
    const h = await startTestServer();
    const c = connect(h);
    await c.opened;
    await h.stop();
    assert.equal((await c.closedWith()).code, 1001);
  });
});

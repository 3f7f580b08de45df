// SDK behaviours that once broke with every test still passing (issue 16).
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { createServer as createHttpServer, maxHeaderSize } from 'node:http';
import { once } from 'node:events';
import { WebSocket as NodeWebSocket } from 'ws';
import { decodeCursor, encodeCursor } from '@herald/protocol';
import { Herald, HeraldClientError, type GapInfo, type Subscription } from '../src/index.js';
import { ADMIN_KEY, startTestServer, until } from '../../server/test/helpers.js';
import { parkedPollCost } from '../../server/src/transports/poll/long-poll.js';

const fast = { backoff: { baseMs: 50, maxMs: 200 }, heartbeatTimeoutMs: 3000 };

it('drops events at or below its position, even when the transport hands them over again', async () => {
  const h = await startTestServer();
  // A proxy that rewinds every poll by two events, so each page repeats events already delivered.
  const rewinding: typeof fetch = (input, init) => {
    const url = new URL(String(input));
    const cursor = url.searchParams.get('cursor');
    if (url.pathname === '/v1/events' && cursor) {
      const positions = decodeCursor(cursor);
      for (const [channel, seq] of positions) positions.set(channel, Math.max(0, seq - 2));
      url.searchParams.set('cursor', encodeCursor(positions));
    }
    return fetch(url, init);
  };
  const c = new Herald({ url: h.url, token: ADMIN_KEY, transports: ['poll'], fetch: rewinding, ...fast });
  try {
    const seen: number[] = [];
    const sub = c.subscribe('dupes', { after: 0 }, (e) => seen.push(e.seq));
    for (let i = 1; i <= 6; i++) {
      assert.equal((await h.call('POST', '/v1/channels/dupes/events', { body: { data: i } })).status, 201);
      await until(() => seen.length >= i, 5000, `event ${i}`);
    }
    assert.deepEqual(seen, [1, 2, 3, 4, 5, 6]);
    assert.equal(sub.position, 6);
  } finally {
    c.close();
    await h.stop();
  }
});

it('a gap moves the position past the lost events before the app hears of it', async () => {
  const h = await startTestServer({ retention: { maxEvents: 2 } });
  const c = new Herald({ url: h.url, token: ADMIN_KEY, transports: ['poll'], ...fast });
  try {
    for (let i = 1; i <= 5; i++) await h.call('POST', '/v1/channels/gappy/events', { body: { data: i } });
    await h.trimmer.runOnce();
    const gaps: Array<{ gap: GapInfo; position: number | undefined }> = [];
    const seen: number[] = [];
    const sub = c.subscribe('gappy', { after: 1, onGap: (gap) => gaps.push({ gap, position: sub.position }) }, (e) => seen.push(e.seq));
    await until(() => seen.length === 2);
    assert.deepEqual(gaps, [{ gap: { channel: 'gappy', after: 1, oldest: 4 }, position: 3 }]);
    assert.deepEqual(seen, [4, 5]);
  } finally {
    c.close();
    await h.stop();
  }
});

it('refuses an unknown transport name at construction, naming the valid ones', () => {
  // 'ws' (a natural guess from plain JS) used to fail only at connect, as "TRANSPORTS[name] is not a function".
  assert.throws(
    () => new Herald({ url: 'http://127.0.0.1:1', transports: ['ws' as never] }),
    (err: Error & { code?: string }) => err.code === 'bad_request' && /Unknown transport "ws": use 'websocket', 'sse', 'poll'/.test(err.message),
  );
});

it('subscribes made at once share one connection attempt: one getToken call, one connecting state', async () => {
  const h = await startTestServer();
  let tokens = 0;
  const getToken = async () => {
    tokens += 1;
    await new Promise((r) => setTimeout(r, 50));
    return ADMIN_KEY;
  };
  const c = new Herald({ url: h.url, getToken, transports: ['websocket'], ...fast });
  try {
    const states: string[] = [];
    c.on('state', (state) => states.push(state));
    const seen: string[] = [];
    for (const channel of ['one', 'two', 'three']) c.subscribe(channel, { after: 0 }, (e) => seen.push(e.channel));
    await until(() => states.includes('connected'), 5000, 'connected');
    for (const channel of ['one', 'two', 'three']) await h.call('POST', `/v1/channels/${channel}/events`, { body: { data: 1 } });
    await until(() => seen.length === 3, 5000, 'an event on each channel');
    assert.deepEqual(states, ['connecting', 'connected']);
    assert.equal(tokens, 1);
    assert.deepEqual(seen.sort(), ['one', 'three', 'two']);
  } finally {
    c.close();
    await h.stop();
  }
});

it('a getToken that never settles does not hold the connection attempt for good', async () => {
  const h = await startTestServer();
  let calls = 0;
  // The first call hangs (a fetch to an auth backend with no timeout); the next one answers.
  const getToken = () => (++calls === 1 ? new Promise<string>(() => {}) : Promise.resolve(ADMIN_KEY));
  const c = new Herald({ url: h.url, getToken, transports: ['websocket'], backoff: { baseMs: 50, maxMs: 200 }, heartbeatTimeoutMs: 500 });
  try {
    const seen: number[] = [];
    c.subscribe('hung', { after: 0 }, (e) => seen.push(e.data as number));
    await until(() => c.state === 'connected', 5000, 'connected after the hung getToken timed out');
    assert.equal(calls, 2);
    await h.call('POST', '/v1/channels/hung/events', { body: { data: 1 } });
    await until(() => seen.length === 1, 5000, 'the event');
  } finally {
    c.close();
    await h.stop();
  }
});

it('a getToken that answers with no string (null, a number, an object) is a failed call, asked again at the next attempt', async () => {
  const h = await startTestServer();
  try {
    for (const garbage of [null, 42, {}, '']) {
      let calls = 0;
      // Before the fix the value was kept: reading its expiry threw before getToken was asked again, for good.
      const getToken = () => (++calls === 1 ? (garbage as unknown as string) : ADMIN_KEY);
      const c = new Herald({ url: h.url, getToken, transports: ['sse'], ...fast });
      try {
        const reasons: string[] = [];
        c.on('state', (state, detail) => state === 'disconnected' && reasons.push(detail.reason ?? ''));
        c.subscribe('garbage', { after: 0 }, () => {});
        await until(() => c.state === 'connected', 5000, `connected after getToken returned ${JSON.stringify(garbage)}`);
        assert.equal(calls, 2);
      } finally {
        c.close();
      }
    }
  } finally {
    await h.stop();
  }
});

it('a getToken that fails says why (disconnected), and does not move the client off WebSocket: it is no failure of the transport; close() names the transport', async () => {
  const h = await startTestServer();
  let calls = 0;
  // The app's auth backend, still starting: three failed calls, then tokens.
  const getToken = async () => {
    if (++calls <= 3) throw new Error('auth backend 503');
    return ADMIN_KEY;
  };
  const c = new Herald({ url: h.url, getToken, ...fast });
  try {
    const states: string[] = [];
    c.on('state', (state, detail) => states.push(`${state} ${detail.transport} ${detail.reason ?? ''}`.trim()));
    c.subscribe('token-fails', { after: 0 }, () => {});
    await until(() => c.state === 'connected', 5000, 'connected');
    assert.equal(calls, 4);
    // Before the fix: no reason anywhere (connecting, connecting…), and connected over SSE after two failed calls.
    assert.deepEqual(states, [
      ...Array.from({ length: 3 }, () => ['connecting websocket', 'disconnected websocket getToken failed: auth backend 503']).flat(),
      'connecting websocket',
      'connected websocket',
    ]);
    c.close();
    // Before the fix close() alone said no transport.
    assert.equal(states.at(-1), 'disconnected websocket closed');
  } finally {
    c.close();
    await h.stop();
  }
});

it('publish() rejects with a HeraldClientError when the server cannot be reached, or a proxy answers for it', async () => {
  // A proxy's page for a server that is down: no JSON. Before the fix a SyntaxError, with no status.
  const proxy = createHttpServer((_req, res) => res.writeHead(502, { 'content-type': 'text/html' }).end('<html>502 Bad Gateway</html>'));
  proxy.listen(0, '127.0.0.1');
  await once(proxy, 'listening');
  const down = createServer();
  down.listen(0, '127.0.0.1');
  await once(down, 'listening');
  const closedPort = (down.address() as AddressInfo).port;
  down.close();
  try {
    const behindProxy = new Herald({ url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`, token: ADMIN_KEY });
    await assert.rejects(behindProxy.publish('down', { data: 1 }), (error) => error instanceof HeraldClientError && error.status === 502 && error.code === 'http_error');
    // Nothing listening: before the fix fetch's own TypeError ("fetch failed").
    const unreachable = new Herald({ url: `http://127.0.0.1:${closedPort}`, token: ADMIN_KEY });
    await assert.rejects(unreachable.publish('down', { data: 1 }), (error) => error instanceof HeraldClientError && error.code === 'unavailable' && error.status === undefined);
  } finally {
    proxy.close();
  }
});

it('publish() to a server that takes the connection and never answers rejects as unavailable after the heartbeat timeout', async () => {
  const sockets: Socket[] = [];
  const silent = createServer((socket) => sockets.push(socket));
  silent.listen(0, '127.0.0.1');
  await once(silent, 'listening');
  try {
    const c = new Herald({ url: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`, token: ADMIN_KEY, heartbeatTimeoutMs: 1000 });
    const started = performance.now();
    // Before, it waited on undici's own 300 s header timeout.
    await assert.rejects(c.publish('hung', { data: 1 }), (error) => error instanceof HeraldClientError && error.code === 'unavailable' && /no answer within 1000 ms/.test(error.message));
    const took = performance.now() - started;
    assert.ok(took >= 900 && took < 4000, `rejected after ${Math.round(took)} ms`);
  } finally {
    for (const socket of sockets) socket.destroy();
    silent.close();
  }
});

it('close() while getToken is pending leaves no timer behind, so a Node process can exit at once', async () => {
  const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const before = timers();
  let asked = false;
  const c = new Herald({
    url: 'http://127.0.0.1:1',
    getToken: () => {
      asked = true;
      return new Promise<string>(() => {});
    },
    heartbeatTimeoutMs: 60_000,
  });
  c.subscribe('pending', () => {});
  await until(() => asked, 5000, 'getToken called');
  c.close();
  await new Promise((r) => setImmediate(r));
  // Before the fix the wait for the token (heartbeatTimeoutMs) kept a Node process alive for a minute after close().
  assert.equal(timers(), before);
  assert.equal(c.state, 'disconnected');
});

it('close() while the client checks a server that answers nothing (a black hole) ends the check at once', async () => {
  // Accepts every connection and answers nothing: the WebSocket handshake times out, then the health check hangs.
  const checks: Socket[] = [];
  const sockets = new Set<Socket>();
  const hole = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.once('data', (first) => {
      if (first.toString('latin1').startsWith('GET /healthz')) checks.push(socket);
    });
  });
  await new Promise<void>((resolve) => hole.listen(0, '127.0.0.1', resolve));
  const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const before = timers();
  const url = `http://127.0.0.1:${(hole.address() as AddressInfo).port}`;
  const c = new Herald({ url, token: ADMIN_KEY, WebSocket: NodeWebSocket as unknown as typeof WebSocket, transports: ['websocket', 'sse'], heartbeatTimeoutMs: 200 });
  try {
    c.subscribe('hole', () => {});
    await until(() => checks.length === 1, 5000, 'the health check under way');
    const check = checks[0]!;
    const ended = once(check, 'close');
    c.close();
    // Before the fix the check went on for its 5 s (then 5 s more without CORS), keeping a Node process alive.
    await until(() => check.closed, 1000, 'the health check ended by close()');
    await ended;
    await new Promise((r) => setImmediate(r));
    assert.equal(timers(), before);
  } finally {
    c.close();
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => hole.close(resolve));
  }
});

it('websocket: a handshake nobody answers (a proxy holding upgrades) fails after the heartbeat timeout and falls back', async () => {
  const h = await startTestServer();
  const upstream = Number(new URL(h.url).port);
  // Passes plain HTTP to Herald; swallows WebSocket upgrades, answering nothing and closing nothing.
  const sockets = new Set<Socket>();
  const proxy = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.once('data', (first) => {
      if (/^upgrade: *websocket/im.test(first.toString('latin1'))) return;
      const target = connect(upstream, '127.0.0.1', () => {
        target.write(first);
        socket.pipe(target).pipe(socket);
      });
      target.on('error', () => socket.destroy());
      socket.on('close', () => target.destroy());
    });
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`;
  const c = new Herald({ url, token: ADMIN_KEY, WebSocket: NodeWebSocket as unknown as typeof WebSocket, fallbackAfter: 1, backoff: { baseMs: 20, maxMs: 100 }, heartbeatTimeoutMs: 1000 });
  try {
    const reasons: string[] = [];
    c.on('state', (state, detail) => state === 'disconnected' && reasons.push(detail.reason ?? ''));
    const seen: number[] = [];
    c.subscribe('held', { after: 0 }, (e) => seen.push(e.seq));
    await h.call('POST', '/v1/channels/held/events', { body: { data: 1 } });
    // Before the fix the client stayed 'connecting' on WebSocket for good.
    await until(() => c.state === 'connected', 5000, 'connected');
    assert.equal(c.transportName, 'sse');
    assert.match(reasons[0] ?? '', /handshake/);
    await until(() => seen.length === 1, 5000, 'the event over SSE');
    assert.deepEqual(seen, [1]);
  } finally {
    c.close();
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => proxy.close(resolve));
    await h.stop();
  }
});

for (const transport of ['websocket', 'sse', 'poll'] as const) {
  it(`${transport}: a channel unsubscribed and subscribed again from 0 gets its whole history, not the old subscription's leftovers`, async () => {
    const h = await startTestServer();
    const c = new Herald({ url: h.url, token: ADMIN_KEY, WebSocket: NodeWebSocket as unknown as typeof WebSocket, transports: [transport], ...fast });
    try {
      const events = Array.from({ length: 200 }, (_, i) => ({ channel: 'again', data: i + 1 }));
      assert.equal((await h.call('POST', '/v1/events', { body: { events } })).status, 201);
      // Another channel keeps the connection open across the unsubscribe.
      c.subscribe('other', () => {});
      const second: number[] = [];
      const first = c.subscribe('again', { after: 0 }, (e) => {
        if (e.seq !== 10) return;
        // From a handler, so the rest of the old subscription's backlog (11…) is already on its way or in hand.
        first.unsubscribe();
        c.subscribe('again', { after: 0 }, (e2) => second.push(e2.seq));
      });
      await until(() => second.includes(200), 5000, 'the second subscription reaches the end');
      // Before the fix it started at 11: the old backlog's events moved the new position past 1…10.
      assert.deepEqual(second, Array.from({ length: 200 }, (_, i) => i + 1));
    } finally {
      c.close();
      await h.stop();
    }
  });
}

for (const transport of ['websocket', 'sse', 'poll'] as const) {
  it(`${transport}: a second subscription to a channel, from an earlier position, gets that history once; the first gets no event twice`, async () => {
    const h = await startTestServer();
    const c = new Herald({ url: h.url, token: ADMIN_KEY, WebSocket: NodeWebSocket as unknown as typeof WebSocket, transports: [transport], ...fast });
    const publish = async (from: number, to: number) => {
      const events = Array.from({ length: to - from + 1 }, (_, i) => ({ channel: 'shared', data: from + i }));
      assert.equal((await h.call('POST', '/v1/events', { body: { events } })).status, 201);
    };
    const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
    try {
      await publish(1, 10);
      const [a, b, live]: [number[], number[], number[]] = [[], [], []];
      const subA = c.subscribe('shared', { after: 5 }, (e) => a.push(e.seq));
      await until(() => a.includes(10), 5000, 'A reaches 10');
      // Before, B's `after` moved the channel's one position back: over SSE and polls A got 1…10 again, and over a
      // WebSocket (already subscribed) B got no history at all.
      const subB = c.subscribe('shared', { after: 0 }, (e) => b.push(e.seq));
      await until(() => b.includes(10), 5000, 'B gets the history');
      await publish(11, 15);
      await until(() => a.includes(15) && b.includes(15), 5000, 'both get the new events');
      // Without `after`, a third starts at the next event, with no history, even while the stream reads older events
      // again for a fourth that asks for them from 0.
      const subLive = c.subscribe('shared', (e) => live.push(e.seq));
      const late: number[] = [];
      c.subscribe('shared', { after: 0 }, (e) => late.push(e.seq));
      const subLiveAgain = c.subscribe('shared', (e) => live.push(e.seq * 100));
      await publish(16, 16);
      await until(() => a.includes(16) && b.includes(16) && live.includes(1600) && late.includes(16), 5000, 'all get 16');
      assert.deepEqual(a, range(6, 16));
      assert.deepEqual(b, range(1, 16));
      assert.deepEqual(late, range(1, 16));
      assert.deepEqual(live.sort((x, y) => x - y), [16, 1600]);
      assert.deepEqual([subA.position, subB.position, subLive.position, subLiveAgain.position], [16, 16, 16, 16]);
    } finally {
      c.close();
      await h.stop();
    }
  });
}

for (const transport of ['websocket', 'sse', 'poll'] as const) {
  it(`${transport}: a subscription made inside an event handler, from an earlier position, gets that history in order, not the event at hand first`, async () => {
    const h = await startTestServer();
    const c = new Herald({ url: h.url, token: ADMIN_KEY, WebSocket: NodeWebSocket as unknown as typeof WebSocket, transports: [transport], ...fast });
    try {
      const events = Array.from({ length: 5 }, (_, i) => ({ channel: 'moving', data: i + 1 }));
      assert.equal((await h.call('POST', '/v1/events', { body: { events } })).status, 201);
      const [a, b, c2]: [number[], number[], number[]] = [[], [], []];
      c.subscribe('moving', { after: 0 }, (e) => {
        a.push(e.seq);
        // The app moves back: a second subscription from 2, made while the channel's first one handles 5.
        if (e.seq === 5) c.subscribe('moving', { after: 2 }, (e2) => b.push(e2.seq));
      });
      // Unsubscribed by an earlier subscription's handler before its turn at 4: it gets nothing, as a DOM listener.
      const later: { sub?: Subscription } = {};
      c.subscribe('moving', { after: 0 }, (e) => e.seq === 4 && later.sub?.unsubscribe());
      later.sub = c.subscribe('moving', { after: 3 }, (e) => c2.push(e.seq));
      await until(() => b.includes(5), 5000, 'the second subscription gets 3…5');
      assert.equal((await h.call('POST', '/v1/channels/moving/events', { body: { data: 6 } })).status, 201);
      await until(() => a.includes(6) && b.includes(6), 5000, 'both get 6');
      // Before the fix the Set being iterated handed 5 to the new subscription at once, and the 3 and 4 read again
      // for it were then dropped as seen: [5, 6].
      assert.deepEqual(b, [3, 4, 5, 6]);
      assert.deepEqual(a, [1, 2, 3, 4, 5, 6]);
      assert.deepEqual(c2, []);
    } finally {
      c.close();
      await h.stop();
    }
  });
}

it('sse: the watchdog measures silence on a monotonic clock, so a wall clock stepped back does not keep a dead stream', async () => {
  // The server pings SSE streams once an hour here: with a 1.5 s timeout, the watchdog must end the idle stream.
  const h = await startTestServer({ sse: { heartbeat: 3600 } });
  const c = new Herald({ url: h.url, token: ADMIN_KEY, transports: ['sse'], backoff: { baseMs: 20, maxMs: 100 }, heartbeatTimeoutMs: 1500 });
  const realNow = Date.now;
  try {
    const states: string[] = [];
    c.on('state', (state, detail) => states.push(`${state}${detail.reason ? `: ${detail.reason}` : ''}`));
    c.subscribe('clock', () => {});
    await until(() => c.state === 'connected', 5000, 'connected');
    // Past the stream's first bytes (the last sign of life the watchdog sees), well within its timeout.
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(states, ['connecting', 'connected'], 'still on the first stream when the clock steps');
    // The wall clock is stepped back an hour (NTP, the user): before the fix the watchdog read it and waited that hour.
    const stepped = realNow() - 3_600_000;
    const since = realNow();
    Date.now = () => stepped + (realNow() - since);
    await until(() => states.includes('disconnected: heartbeat timeout'), 4000, 'the watchdog ends the silent stream').finally(() => (Date.now = realNow));
  } finally {
    Date.now = realNow;
    c.close();
    await h.stop();
  }
});

/**
 * Uncaught exceptions collected instead of failing the test: node:test reports one as the test's failure, and these
 * are expected (an app callback's error, reported as a DOM listener's would be). `restore` puts node:test's back.
 */
function catchUncaught(): { uncaught: unknown[]; restore: () => void } {
  const uncaught: unknown[] = [];
  const onUncaught = (error: unknown) => uncaught.push(error);
  process.prependListener('uncaughtException', onUncaught);
  const listeners = process.listeners('uncaughtException').filter((l) => l !== onUncaught);
  for (const l of listeners) process.removeListener('uncaughtException', l);
  return {
    uncaught,
    restore: () => {
      for (const l of listeners) process.on('uncaughtException', l);
      process.removeListener('uncaughtException', onUncaught);
    },
  };
}

it("an event handler that throws does not keep the event from the channel's other subscriptions, and its error is still reported", async () => {
  const h = await startTestServer();
  const c = new Herald({ url: h.url, token: ADMIN_KEY, transports: ['poll'], ...fast });
  const { uncaught, restore } = catchUncaught();
  try {
    const other: number[] = [];
    c.subscribe('throwing', { after: 0 }, () => {
      throw new Error('the app failed');
    });
    c.subscribe('throwing', { after: 0 }, (e) => other.push(e.seq));
    assert.equal((await h.call('POST', '/v1/channels/throwing/events', { body: { data: 1 } })).status, 201);
    await until(() => other.length === 1 && uncaught.length === 1, 5000, 'the other subscription gets the event');
    assert.equal((uncaught[0] as Error).message, 'the app failed');
  } finally {
    restore();
    c.close();
    await h.stop();
  }
});

for (const transport of ['websocket', 'sse', 'poll'] as const) {
  it(`${transport}: a client listener or subscription callback that throws is reported, and the connection goes on`, async () => {
    const h = await startTestServer();
    const c = new Herald({ url: h.url, token: ADMIN_KEY, transports: [transport], ...fast });
    const { uncaught, restore } = catchUncaught();
    try {
      const states: string[] = [];
      c.on('state', (state) => {
        states.push(state);
        // Thrown on `connected`, this once left a WebSocket with no channel subscribed, and ended SSE and polling.
        if (state === 'connected') throw new Error('the state listener failed');
      });
      const seen: number[] = [];
      const onEphemeral = () => {
        // Thrown out of a WebSocket's message handler, this once left the socket reading nothing more.
        throw new Error('onEphemeral failed');
      };
      c.subscribe('throwing-cb', { after: 0, onEphemeral }, (e) => seen.push(e.seq));
      await until(() => c.state === 'connected' && uncaught.length === 1, 5000, 'connected');
      // The stream is up (a WebSocket's subscribe answered) once the first event comes through.
      assert.equal((await h.call('POST', '/v1/channels/throwing-cb/events', { body: { data: 1 } })).status, 201);
      await until(() => seen.length === 1, 5000, 'the first event');
      assert.equal((await h.call('POST', '/v1/channels/throwing-cb/events', { body: { data: 'e', ephemeral: true } })).status, 202);
      if (transport !== 'poll') await until(() => uncaught.length === 2, 5000, 'the ephemeral callback ran');
      assert.equal((await h.call('POST', '/v1/channels/throwing-cb/events', { body: { data: 2 } })).status, 201);
      await until(() => seen.length === 2, 5000, 'the event after the ephemeral');
      assert.deepEqual(seen, [1, 2]);
      assert.deepEqual(states, ['connecting', 'connected'], 'no reconnect');
      assert.deepEqual(
        uncaught.map((e) => (e as Error).message),
        ['the state listener failed', ...(transport === 'poll' ? [] : ['onEphemeral failed'])],
      );
    } finally {
      restore();
      c.close();
      await h.stop();
    }
  });
}

for (const transport of ['sse', 'poll'] as const) {
  it(`says why the server refuses its ${transport} request (more channels than limits.channelsPerRequest), and goes on once it may`, async () => {
    const h = await startTestServer({ limits: { channelsPerRequest: 2 } });
    const c = new Herald({ url: h.url, token: ADMIN_KEY, transports: [transport], ...fast });
    try {
      const errors: Array<{ code: string; message: string; status: number | undefined }> = [];
      c.on('error', (e) => errors.push({ code: e.code, message: e.message, status: e.status }));
      const seen: string[] = [];
      const subs = ['a', 'b', 'c'].map((channel) => c.subscribe(channel, { after: 0 }, (e) => seen.push(`${e.channel}${e.seq}`)));
      await until(() => errors.length >= 2, 5000, 'the refusal, said as the retries go on');
      // Before, the client retried in silence: the state said only "HTTP 400", and no error reached the app.
      assert.deepEqual(errors[0], { code: 'bad_request', message: 'At most 2 channels per request.', status: 400 });
      subs[2]!.unsubscribe();
      await h.call('POST', '/v1/channels/a/events', { body: { data: 1 } });
      await h.call('POST', '/v1/channels/b/events', { body: { data: 1 } });
      await until(() => seen.length === 2, 5000, 'the events once the request fits');
      assert.deepEqual(seen.sort(), ['a1', 'b1']);
    } finally {
      c.close();
      await h.stop();
    }
  });
}

it('an SSE refusal whose body never ends is still a failed attempt, retried, not a stream held for good', async () => {
  const h = await startTestServer();
  // A proxy that answers the stream with a JSON error status, sends part of the body and then nothing more.
  const stalling = createHttpServer((_req, res) => {
    res.writeHead(400, { 'content-type': 'application/json' });
    res.write('{"error":');
  });
  stalling.listen(0, '127.0.0.1');
  await once(stalling, 'listening');
  const { port } = stalling.address() as AddressInfo;
  let streams = 0;
  const viaProxy: typeof fetch = (input, init) => {
    const url = new URL(String(input));
    if (url.pathname !== '/v1/stream') return fetch(url, init);
    streams += 1;
    return fetch(`http://127.0.0.1:${port}${url.pathname}${url.search}`, init);
  };
  const c = new Herald({ url: h.url, token: ADMIN_KEY, transports: ['sse'], fetch: viaProxy, backoff: { baseMs: 50, maxMs: 200 }, heartbeatTimeoutMs: 500 });
  try {
    c.subscribe('stalled', { after: 0 }, () => {});
    // Before, reading the error's body had no deadline: one attempt, then nothing until the app closed the client.
    await until(() => streams >= 2, 5000, 'a second attempt after the first one stalled');
  } finally {
    c.close();
    stalling.closeAllConnections();
    stalling.close();
    await h.stop();
  }
});

it('a long poll the server will not park (503 too_many_waiting) is polled again after Retry-After: no disconnection, no spinning, nothing missed', { timeout: 40_000 }, async () => {
  // The least bound the server takes: room for one two-channel poll with 16 KiB of headers, and for nothing beside it.
  const bound = parkedPollCost(2, maxHeaderSize);
  const h = await startTestServer({ limits: { parkedPollBytes: bound, channelsPerRequest: 2, pollWaitMax: 25 } });
  const polls: Array<{ at: number; status: number }> = [];
  const watched: typeof fetch = async (input, init) => {
    const res = await fetch(input, init);
    if (new URL(String(input)).pathname === '/v1/events') polls.push({ at: performance.now(), status: res.status });
    return res;
  };
  const c = new Herald({ url: h.url, token: ADMIN_KEY, transports: ['poll'], fetch: watched, ...fast });
  const states: string[] = [];
  c.on('state', (state) => states.push(state));
  const publish = (channel: string, data: number) => h.call('POST', `/v1/channels/${channel}/events`, { body: { data } });
  try {
    // Another client's two-channel poll, its headers padded to nearly 16 KiB, takes the whole bound.
    const filler = h.call('GET', '/v1/events?channel=full-1&channel=full-2&wait=25', { headers: { 'x-pad': 'p'.repeat(15_500) } });
    await until(() => h.longPoll.parked === bound, 5000, 'the bound taken');
    const seen: number[] = [];
    c.subscribe('busy', { after: 0 }, (e) => seen.push(e.data as number));
    await until(() => polls.some((p) => p.status === 503), 5000, 'a long poll refused');
    // Published while the client waits out its Retry-After; the bound is still taken when it polls again.
    await publish('busy', 1);
    await publish('busy', 2);
    await until(() => seen.length === 2, 10_000, 'the events published while refused');
    // Room again: the client's poll parks, and wakes for the next event.
    await publish('full-1', 0);
    assert.equal((await filler).status, 200);
    await until(() => h.longPoll.parked === parkedPollCost(1), 10_000, "the client's poll parked");
    await publish('busy', 3);
    await until(() => seen.length === 3, 5000, 'the event after the refusal');
    assert.deepEqual(seen, [1, 2, 3]);
    assert.deepEqual(states, ['connecting', 'connected'], 'a refused poll is no disconnection');
    polls.forEach((p, i) => {
      const next = polls[i + 1];
      if (p.status === 503 && next) assert.ok(next.at - p.at >= 900, `polled again ${Math.round(next.at - p.at)} ms after a 503 (Retry-After is at least 1 s)`);
    });
  } finally {
    c.close();
    await h.stop();
  }
});

for (const transport of ['websocket', 'sse', 'poll'] as const) {
  it(`${transport}: a channel unsubscribed and subscribed again without \`after\` starts at the next event, and keeps its place across the next restart`, async () => {
    const h = await startTestServer();
    // Each SSE stream request is held back a little, so an event published just after a restart begins is published
    // before the stream reaches the server: only a cursor holding the channel's position can bring it back.
    const slowStreams: typeof fetch = async (input, init) => {
      if (new URL(String(input)).pathname === '/v1/stream') await new Promise((resolve) => setTimeout(resolve, 300));
      return fetch(input, init);
    };
    const c = new Herald({ url: h.url, token: ADMIN_KEY, WebSocket: NodeWebSocket as unknown as typeof WebSocket, transports: [transport], fetch: slowStreams, ...fast });
    const publish = (data: number) => h.call('POST', '/v1/channels/resub/events', { body: { data } });
    try {
      for (let i = 1; i <= 20; i++) await publish(i);
      // Another channel keeps the connection open across the unsubscribe.
      c.subscribe('keep', () => {});
      const first: number[] = [];
      const sub = c.subscribe('resub', (e) => first.push(e.data as number));
      await until(() => c.state === 'connected' && sub.position === 20, 5000, 'live at the head');
      await publish(21);
      await until(() => first.includes(21), 5000, 'the first subscription live');
      sub.unsubscribe();
      const second: number[] = [];
      c.subscribe('resub', (e) => second.push(e.data as number));
      // At once a restart (a channel added), and an event published while it is under way.
      c.subscribe('keep-2', () => {});
      await publish(22);
      await until(() => second.includes(22), 5000, 'the event published during the restart');
      await publish(23);
      await until(() => second.includes(23), 5000, 'the next one');
      // Before the fix a poll got 1…23 (the channel left out of the cursor reads as 0) and SSE lost 22.
      assert.deepEqual(second, [22, 23]);
    } finally {
      c.close();
      await h.stop();
    }
  });

  it(`${transport}: a position past the channel's head (history the server lost) moves back to its oldest event, told as a gap`, async () => {
    const h = await startTestServer();
    let requests = 0;
    const counted: typeof fetch = (input, init) => {
      requests++;
      return fetch(input, init);
    };
    const c = new Herald({ url: h.url, token: ADMIN_KEY, WebSocket: NodeWebSocket as unknown as typeof WebSocket, transports: [transport], fetch: counted, ...fast });
    const publish = (data: number) => h.call('POST', '/v1/channels/behind/events', { body: { data } });
    try {
      for (let i = 1; i <= 3; i++) await publish(i);
      const seen: number[] = [];
      const gaps: GapInfo[] = [];
      // The client was at 10 before the server went back to a backup holding 3 events.
      c.subscribe('behind', { after: 10, onGap: (gap) => gaps.push(gap) }, (e) => seen.push(e.seq));
      await until(() => seen.length === 3, 5000, 'the events the server holds');
      assert.deepEqual(gaps, [{ channel: 'behind', after: 10, oldest: 1 }]);
      await publish(4);
      await until(() => seen.includes(4), 5000, 'the next event');
      // Before the fix every event up to 10 was dropped as delivered, and a poll asked again at once, hundreds of
      // times a second.
      assert.deepEqual(seen, [1, 2, 3, 4]);
      const before = requests;
      await new Promise((resolve) => setTimeout(resolve, 1000));
      assert.ok(requests - before <= 2, `${requests - before} requests in a quiet second`);
    } finally {
      c.close();
      await h.stop();
    }
  });
}

it('poll: a first poll that gets no answer (a dead pooled connection) is given up after the heartbeat timeout, not 25 s on', async () => {
  const h = await startTestServer();
  // The state read goes through; every poll that asks for no wait hangs, as one sent on a dead connection does.
  const hanging: typeof fetch = (input, init) => {
    const url = new URL(String(input));
    if (url.pathname === '/v1/events' && url.searchParams.get('wait') === '0') {
      return new Promise((_resolve, reject) => init?.signal?.addEventListener('abort', () => reject(init.signal!.reason)));
    }
    return fetch(input, init);
  };
  const c = new Herald({ url: h.url, token: ADMIN_KEY, transports: ['poll'], fetch: hanging, backoff: { baseMs: 50, maxMs: 200 }, heartbeatTimeoutMs: 1000 });
  const reasons: string[] = [];
  c.on('state', (state, detail) => state === 'disconnected' && reasons.push(detail.reason ?? ''));
  try {
    const started = performance.now();
    c.subscribe('dead', () => {});
    await until(() => reasons.length > 0, 10_000, 'the attempt given up');
    const took = performance.now() - started;
    assert.match(reasons[0]!, /poll timed out/);
    assert.ok(took < 5000, `given up after ${Math.round(took)} ms`);
  } finally {
    c.close();
    await h.stop();
  }
});

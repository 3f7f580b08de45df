// SDK behaviours that once broke with every test still passing (issue 16).
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeCursor, encodeCursor } from '@herald/protocol';
import { Herald, type GapInfo } from '../src/index.js';
import { ADMIN_KEY, startTestServer, until } from '../../server/test/helpers.js';

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

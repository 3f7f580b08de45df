import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket as NodeWebSocket } from 'ws';
import { Herald, HeraldClientError, type HeraldEvent, type HeraldOptions } from '../src/index.js';
import { ADMIN_KEY, startTestServer, until, type TestServer } from '../../server/test/helpers.js';
import { freePort } from '../../server/test/support/ports.js';

const WebSocket = NodeWebSocket as unknown as typeof globalThis.WebSocket;
const fast = { backoff: { baseMs: 50, maxMs: 200 }, heartbeatTimeoutMs: 3000 } satisfies Partial<HeraldOptions>;

/** Publishes `from..to` on a channel, one request each, data = the number. */
async function publishRange(h: TestServer, channel: string, from: number, to: number): Promise<void> {
  for (let i = from; i <= to; i++) {
    const res = await h.call('POST', `/v1/channels/${channel}/events`, { body: { data: i } });
    assert.equal(res.status, 201);
  }
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('@herald/client against a real server', () => {
  const clients: Herald[] = [];
  const servers: TestServer[] = [];
  after(async () => {
    for (const c of clients) c.close();
    for (const s of servers) await s.stop();
  });
  const client = (options: HeraldOptions) => {
    const c = new Herald(options);
    clients.push(c);
    return c;
  };
  const server = async (settings: Record<string, unknown> = {}) => {
    const s = await startTestServer(settings);
    servers.push(s);
    return s;
  };

  it('subscribes over WebSocket: backlog after `after`, then live, each once and in order', async () => {
    const h = await server();
    // The credential goes in the first frame, never in the URL, which proxies and servers log.
    const upgrades: string[] = [];
    h.app.server.prependListener('upgrade', (request: { url?: string }) => upgrades.push(request.url ?? ''));
    await publishRange(h, 'ws', 1, 3);
    const states: string[] = [];
    const c = client({ url: h.url, token: ADMIN_KEY, WebSocket, ...fast });
    c.on('state', (state, detail) => states.push(`${state}:${detail.transport}`));
    const seen: number[] = [];
    const sub = c.subscribe('ws', { after: 1 }, (e) => seen.push(e.data as number));
    await until(() => seen.length === 2);
    await publishRange(h, 'ws', 4, 6);
    await until(() => seen.length === 5);
    assert.deepEqual(seen, range(2, 6));
    assert.deepEqual(states.slice(0, 2), ['connecting:websocket', 'connected:websocket']);
    assert.equal(sub.position, 6);
    const ack = await c.publish('ws', { type: 'from.sdk', data: 7 });
    assert.equal(ack.seq, 7);
    await until(() => seen.length === 6);
    sub.unsubscribe();
    // After unsubscribe nothing more arrives: a marker on another channel, published later on the same socket, shows it.
    const markers: unknown[] = [];
    c.subscribe('ws-marker', { after: 0 }, (e) => markers.push(e.data));
    await publishRange(h, 'ws', 8, 8);
    await publishRange(h, 'ws-marker', 1, 1);
    await until(() => markers.length === 1);
    assert.deepEqual(seen, range(2, 7), 'no event after unsubscribe');
    assert.ok(upgrades.length > 0);
    assert.deepEqual([...new Set(upgrades)], ['/v1/ws'], 'no token in any upgrade URL');
  });

  it('refuses to publish what the server would never see as sent: Infinity and NaN (sent as null), a channel named . or ..', async () => {
    const h = await server();
    const c = client({ url: h.url, token: ADMIN_KEY, WebSocket, ...fast });
    const refused = (code: string) => (error: unknown) => error instanceof HeraldClientError && error.code === code;
    await assert.rejects(c.publish('numbers', { data: { amount: Infinity } }), refused('bad_request'));
    await assert.rejects(c.publish('numbers', { data: 1, meta: { ratio: Number.NaN } }), refused('bad_request'));
    await assert.rejects(c.publish('numbers', { data: [-Infinity] }, { ephemeral: true }), refused('bad_request'));
    await assert.rejects(c.publish('..', { data: 1 }), refused('invalid_channel'));
    assert.throws(() => c.subscribe('.', () => {}), refused('invalid_channel'));
    // Data that refers to itself is refused as JSON.stringify refuses it, at once (a walk without a visited set spun).
    const circular: Record<string, unknown> = { n: 1 };
    circular.self = circular;
    await assert.rejects(c.publish('numbers', { data: circular }), TypeError);
    assert.equal((await c.publish('numbers', { data: 1.7976931348623157e308 })).seq, 1, 'the largest double is a number like any other');
    assert.deepEqual((await h.call('GET', '/v1/channels/numbers/events')).body.events.map((e: { data: unknown }) => e.data), [1.7976931348623157e308]);
  });

  it('starts live by default and misses nothing published after subscribing, on every transport', async () => {
    const h = await server();
    await publishRange(h, 'live', 1, 2);
    for (const transport of ['websocket', 'sse', 'poll'] as const) {
      const c = client({ url: h.url, token: ADMIN_KEY, WebSocket, transports: [transport], ...fast });
      const seen: number[] = [];
      c.subscribe('live', (e) => seen.push(e.data as number));
      await until(() => c.state === 'connected', 5000, `${transport} connected`);
      const head = (await h.call('GET', '/v1/channels/live/events?limit=1')).body.head as number;
      await publishRange(h, 'live', head + 1, head + 2);
      await until(() => seen.length === 2, 5000, `${transport} live events`);
      assert.deepEqual(seen, [head + 1, head + 2], transport);
      c.close();
    }
  });

  it('resumes across a server restart mid-stream: every event exactly once, in order', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-sdk-restart-'));
    const port = await freePort();
    let h = await startTestServer({ port }, dir);
    try {
      const c = client({ url: h.url, token: ADMIN_KEY, WebSocket, ...fast });
      const seen: number[] = [];
      c.subscribe('restart', { after: 0 }, (e) => seen.push(e.data as number));
      await publishRange(h, 'restart', 1, 20);
      await until(() => seen.length === 20);
      await h.stop();
      h = await startTestServer({ port }, dir);
      await publishRange(h, 'restart', 21, 40); // some land before the client is back: they must come from the log
      await until(() => seen.length >= 40, 10_000, 'all 40 events');
      await publishRange(h, 'restart', 41, 45);
      await until(() => seen.length >= 45);
      assert.deepEqual(seen, range(1, 45));
      assert.equal(c.transportName, 'websocket');
    } finally {
      await h.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('falls back from WebSocket to SSE, then to long polling, without losing or repeating an event', async () => {
    const h = await server();
    let sockets = 0;
    // A proxy that lets the first WebSocket through, then refuses every later one.
    class FlakyWebSocket extends NodeWebSocket {
      constructor(url: string) {
        sockets += 1;
        super(sockets === 1 ? url : url.replace(/:\d+\//, ':1/'));
      }
    }
    let blockStreams = false;
    const fetchThrough: typeof fetch = (input, init) =>
      blockStreams && String(input).includes('/v1/stream') ? Promise.reject(new TypeError('proxy refuses streaming')) : fetch(input, init);
    const transports: string[] = [];
    const c = client({ url: h.url, token: ADMIN_KEY, WebSocket: FlakyWebSocket as unknown as typeof globalThis.WebSocket, fetch: fetchThrough, fallbackAfter: 1, ...fast });
    c.on('state', (state, detail) => state === 'connected' && transports.push(detail.transport!));
    const seen: number[] = [];
    c.subscribe('fallback', { after: 0 }, (e) => seen.push(e.data as number));
    await publishRange(h, 'fallback', 1, 10);
    await until(() => seen.length === 10);

    // Cut the WebSocket: the client cannot get another, and moves to SSE.
    for (const session of (h.ws as unknown as { sessions: Set<{ ws: { terminate(): void } }> }).sessions) session.ws.terminate();
    await publishRange(h, 'fallback', 11, 20);
    await until(() => seen.length === 20, 10_000, 'events over SSE');
    assert.equal(c.transportName, 'sse');

    // Now streaming breaks too: long polling takes over.
    blockStreams = true;
    for (const stream of (h.sse as unknown as { streams: Set<{ res: { destroy(): void } }> }).streams) stream.res.destroy();
    await publishRange(h, 'fallback', 21, 30);
    await until(() => seen.length === 30, 10_000, 'events over long polling');
    assert.equal(c.transportName, 'poll');
    assert.deepEqual(seen, range(1, 30));
    assert.deepEqual(transports, ['websocket', 'sse', 'poll']);
  });

  it('hands a gap to the app when history was trimmed', async () => {
    const h = await server({ retention: { maxEvents: 2 } });
    await publishRange(h, 'gappy', 1, 5);
    await h.trimmer.runOnce();
    for (const transport of ['websocket', 'sse', 'poll'] as const) {
      const c = client({ url: h.url, token: ADMIN_KEY, WebSocket, transports: [transport], ...fast });
      const gaps: unknown[] = [];
      const seen: HeraldEvent[] = [];
      c.subscribe('gappy', { after: 1, onGap: (g) => gaps.push(g) }, (e) => seen.push(e));
      await until(() => seen.length === 2, 5000, transport);
      assert.deepEqual(gaps, [{ channel: 'gappy', after: 1, oldest: 4 }], transport);
      assert.deepEqual(seen.map((e) => e.seq), [4, 5]);
      c.close();
    }
  });

  it('refreshes the token through getToken when one is refused', async () => {
    const h = await server();
    const key = await h.createKey(['subscribe'], ['secure']);
    const issued: string[] = [];
    const c = client({
      url: h.url,
      WebSocket,
      ...fast,
      getToken: async () => {
        // The first token is no good; the next ones are minted by the app's backend (here, the API).
        if (issued.length === 0) {
          issued.push('eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.bad');
          return issued[0]!;
        }
        const minted = await h.call('POST', '/v1/tokens', { token: key, body: { sub: 'u', channels: ['secure'], ttl: 60 } });
        issued.push(minted.body.token);
        return minted.body.token as string;
      },
    });
    const seen: number[] = [];
    c.subscribe('secure', { after: 0 }, (e) => seen.push(e.data as number));
    await until(() => c.state === 'connected', 5000);
    await publishRange(h, 'secure', 1, 3);
    await until(() => seen.length === 3);
    assert.equal(issued.length, 2);
  });

  it('gives up with an error when a fixed credential is refused', async () => {
    const h = await server();
    const c = client({ url: h.url, token: 'hk_not_valid', WebSocket, ...fast });
    const errors: string[] = [];
    c.on('error', (e) => errors.push(e.code));
    c.subscribe('x', () => {});
    await until(() => errors.length > 0);
    assert.deepEqual(errors, ['unauthorized']);
    assert.equal(c.state, 'disconnected');
  });
});

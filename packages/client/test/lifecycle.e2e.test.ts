// SDK behaviours that had no test (issue 16): onError, the idle-stream watchdog, token refresh; and a spawned
// `herald serve` answering its open long polls on SIGTERM.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket as NodeWebSocket } from 'ws';
import { HeraldClientError, type HeraldOptions } from '../src/index.js';
import { suiteResources } from './fixtures.js';
import { ADMIN_KEY, CLI_ADMIN_KEY, eventually, spawnHerald, startTestServer, until, type TestServer } from '../../server/test/helpers.js';

const WebSocket = NodeWebSocket as unknown as typeof globalThis.WebSocket;
const fast = { backoff: { baseMs: 20, maxMs: 100 }, WebSocket } satisfies Partial<HeraldOptions>;
const TRANSPORTS = ['websocket', 'sse', 'poll'] as const;
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function publishRange(h: TestServer, channel: string, from: number, to: number): Promise<void> {
  for (let i = from; i <= to; i++) assert.equal((await h.call('POST', `/v1/channels/${channel}/events`, { body: { data: i } })).status, 201);
}

/**
 * A TCP proxy in front of a server whose open connections can be made to go silent: nothing passes either
 * way and nothing is closed, as when a NAT or a load balancer drops a flow. New connections pass again.
 */
class SilencingProxy {
  private readonly server: Server;
  private readonly pairs = new Set<{ client: Socket; upstream: Socket; silent: boolean }>();
  port = 0;
  connections = 0;

  constructor(private readonly target: number) {
    this.server = createServer((client) => {
      this.connections += 1;
      const upstream = connect(this.target, '127.0.0.1');
      const pair = { client, upstream, silent: false };
      this.pairs.add(pair);
      client.on('data', (d) => void (pair.silent || upstream.write(d)));
      upstream.on('data', (d) => void (pair.silent || client.write(d)));
      const drop = () => {
        this.pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      client.on('close', drop).on('error', drop);
      upstream.on('close', drop).on('error', drop);
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
    return `http://127.0.0.1:${this.port}`;
  }

  /** Every connection open now goes silent for good. */
  silence(): number {
    for (const pair of this.pairs) pair.silent = true;
    return this.pairs.size;
  }

  async close(): Promise<void> {
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

describe('@herald/client: errors, watchdog and credentials', () => {
  const { client, cleanups } = suiteResources();
  let shared: TestServer | undefined;
  const server = async () => {
    if (!shared) {
      shared = await startTestServer();
      const s = shared;
      cleanups.push(() => s.stop());
    }
    return shared;
  };

  for (const transport of ['websocket', 'sse', 'poll'] as const) {
  it(`${transport}: a channel the credential does not cover goes to that subscription’s onError and the client’s error event; the others keep flowing`, async () => {
    const h = await server();
    const token = await h.createKey(['subscribe'], ['mine:*']);
    let tokensAsked = 0;
    // With getToken too: a refused channel is no refused credential, so no new token is asked for.
    const c = client({ url: h.url, getToken: async () => (tokensAsked++, token), transports: [transport], ...fast });
    const clientErrors: HeraldClientError[] = [];
    c.on('error', (e) => clientErrors.push(e));
    const refused: HeraldClientError[] = [];
    const allowed: number[] = [];
    const otherErrors: HeraldClientError[] = [];
    c.subscribe('theirs', { after: 0, onError: (e) => refused.push(e) }, () => assert.fail('no event of a refused channel'));
    c.subscribe(`mine:${transport}`, { after: 0, onError: (e) => otherErrors.push(e) }, (e) => allowed.push(e.data as number));
    await until(() => refused.length === 1, 5000, 'onError of the refused subscription');
    assert.ok(refused[0] instanceof HeraldClientError);
    assert.equal(refused[0].code, 'forbidden');
    assert.match(refused[0].message, /theirs/);
    assert.deepEqual(clientErrors, refused, 'the client-level error event carries the same error');
    await publishRange(h, `mine:${transport}`, 1, 3);
    await until(() => allowed.length === 3, 5000, 'events of the allowed channel');
    assert.deepEqual(allowed, [1, 2, 3]);
    assert.deepEqual(otherErrors, []);
    assert.equal(c.state, 'connected');
    // Before, on SSE and polling, the one refused channel failed every request: no channel got an event, and the
    // client asked for a new token and failed again, over and over.
    assert.equal(tokensAsked, 1);
    // Another change of subscriptions neither asks for the refused channel again nor tells it again.
    const later: number[] = [];
    c.subscribe(`mine:${transport}:later`, { after: 0 }, (e) => later.push(e.data as number));
    await publishRange(h, `mine:${transport}:later`, 1, 1);
    await until(() => later.length === 1, 5000, 'events of a channel subscribed later');
    assert.equal(refused.length, 1, 'told once');
    assert.equal(clientErrors.length, 1);
    // A second subscription to the refused channel asks the server nothing and is told the refusal itself.
    const second: HeraldClientError[] = [];
    c.subscribe('theirs', { onError: (e) => second.push(e) }, () => assert.fail('no event of a refused channel'));
    await until(() => second.length === 1, 5000, "the second subscription's onError");
    assert.equal(second[0]!.code, 'forbidden');
    assert.match(second[0]!.message, /theirs/);
    assert.equal(refused.length, 1, 'the first subscription is not told again');
    assert.equal(clientErrors.length, 1, 'nor the client');
    c.close();
  });
  }

  it('websocket: a channel unsubscribed before its refusal came, then subscribed again, is asked for again and told', async () => {
    const h = await server();
    const token = await h.createKey(['subscribe'], ['mine:*']);
    const c = client({ url: h.url, token, transports: ['websocket'], ...fast });
    const clientErrors: HeraldClientError[] = [];
    c.on('error', (e) => clientErrors.push(e));
    c.subscribe('mine:ws-race', () => {});
    await until(() => c.state === 'connected', 5000, 'connected');
    c.subscribe('theirs', () => {}).unsubscribe();
    await until(() => clientErrors.length === 1, 5000, 'the refusal of the first subscribe');
    const told: HeraldClientError[] = [];
    c.subscribe('theirs', { onError: (e) => told.push(e) }, () => {});
    await until(() => told.length === 1, 5000, "the new subscription's onError");
    assert.equal(told[0]!.code, 'forbidden');
  });

  it('websocket: a channel refused for a passing reason (the per-socket limit) is asked for again by a rewinding subscription, and told', async () => {
    const h = await startTestServer({ limits: { channelsPerRequest: 1 } });
    cleanups.push(() => h.stop());
    const c = client({ url: h.url, token: ADMIN_KEY, transports: ['websocket'], ...fast });
    const first: HeraldClientError[] = [];
    c.subscribe('one', () => {});
    c.subscribe('two', { onError: (e) => first.push(e) }, () => {});
    await until(() => first.length === 1, 5000, 'the refusal of the second channel');
    const again: HeraldClientError[] = [];
    c.subscribe('two', { after: 0, onError: (e) => again.push(e) }, () => {});
    await until(() => again.length === 1, 5000, 'the rewinding subscription asked the server again');
    assert.equal(again[0]!.code, 'bad_request');
  });

  it('websocket: a resubscribe refused for a while (a presence join over its budget) does not hand over the old subscription\'s events', async () => {
    // An epoch change subscribes the channel again from 0, with its presence join; the server's one join a second for
    // the channel refuses that, and keeps the first subscription (from seq 3) streaming until the retry replaces it.
    const h = await startTestServer({ channels: { presence: ['room'] }, limits: { presenceJoinsPerChannel: 1 } });
    cleanups.push(() => h.stop());
    await publishRange(h, 'room', 1, 5);
    const c = client({ url: h.url, token: ADMIN_KEY, transports: ['websocket'], ...fast });
    const got: number[] = [];
    c.subscribe('room', { after: 3, epoch: 'an-epoch-of-another-history' }, (e) => got.push(e.data as number));
    c.presence('room');
    await until(() => c.state === 'connected', 5000, 'connected');
    await publishRange(h, 'room', 6, 6);
    await until(() => got.length >= 6, 10_000, 'the new history from its start, once the retry is taken');
    await publishRange(h, 'room', 7, 7);
    await until(() => got.includes(7), 5000, 'a live event');
    assert.deepEqual(got, range(1, 7));
  });

  for (const transport of ['sse', 'poll'] as const) {
    it(`${transport}: a fixed credential that is refused ends the client with an unauthorized error, and no retry`, async () => {
      const h = await server();
      const c = client({ url: h.url, token: 'hk_not_a_key_of_this_server_0123456789', transports: [transport], ...fast });
      const errors: HeraldClientError[] = [];
      const states: string[] = [];
      c.on('error', (e) => errors.push(e));
      c.on('state', (s) => states.push(s));
      c.subscribe('theirs', { after: 0 }, () => assert.fail('no event of a refused channel'));
      await until(() => errors.length === 1 && c.state === 'disconnected', 5000, 'the error and the end');
      assert.equal(errors[0]!.code, 'unauthorized');
      assert.match(errors[0]!.message, /refused/);
      const ended = states.length;
      // Closed for good: a publish the client could read if it were still trying changes nothing.
      await publishRange(h, 'theirs', 1, 1);
      await until(() => h.sse.size === 0 && h.longPoll.waiting === 0, 2000, 'nothing left open on the server');
      assert.equal(states.length, ended, 'no reconnect after the refusal');
    });
  }

  it('websocket: a fixed credential the server refuses is never reported connected', async () => {
    // The server upgrades the socket, then closes it with 1008: the client said `connected` in between.
    const h = await server();
    const c = client({ url: h.url, token: 'hk_not_a_key_of_this_server_0123456789', transports: ['websocket'], ...fast });
    const errors: HeraldClientError[] = [];
    const states: string[] = [];
    c.on('error', (e) => errors.push(e));
    c.on('state', (s) => states.push(s));
    c.subscribe('theirs', { after: 0 }, () => assert.fail('no event of a refused channel'));
    await until(() => errors.length > 0 && c.state === 'disconnected', 5000, 'the error and the end');
    assert.equal(errors[0]!.code, 'unauthorized');
    assert.ok(!states.includes('connected'), states.join(' '));
    c.close();
  });

  for (const transport of ['websocket', 'sse'] as const) {
    it(`${transport}: a connection that goes silent is dropped by the watchdog and resumed, losing nothing`, async () => {
      // The server's own heartbeats are far apart, so only the client's watchdog can notice the silence.
      const h = await startTestServer({ ws: { heartbeat: 60 }, sse: { heartbeat: 60 } });
      cleanups.push(() => h.stop());
      const proxy = new SilencingProxy(Number(new URL(h.url).port));
      const url = await proxy.listen();
      cleanups.push(() => proxy.close());
      const c = client({ url, token: ADMIN_KEY, transports: [transport], ...fast, heartbeatTimeoutMs: 600 });
      const reasons: string[] = [];
      c.on('state', (state, detail) => state === 'disconnected' && reasons.push(detail.reason ?? ''));
      const seen: number[] = [];
      c.subscribe('quiet', { after: 0 }, (e) => seen.push(e.data as number));
      await publishRange(h, 'quiet', 1, 2);
      await until(() => seen.length === 2, 5000, 'events before the silence');
      const connectionsBefore = proxy.connections;
      assert.ok(proxy.silence() >= 1);
      // Published while the old connection is silent: they reach the client only through a new one.
      await publishRange(h, 'quiet', 3, 4);
      const silencedAt = Date.now();
      await until(() => reasons.length >= 1, 5000, 'the watchdog fired');
      const noticedAfter = Date.now() - silencedAt;
      assert.equal(reasons[0], 'heartbeat timeout');
      assert.ok(noticedAfter < 3000, `noticed after ${noticedAfter} ms`);
      await until(() => seen.length >= 4, 5000, 'events published during the silence');
      assert.ok(proxy.connections > connectionsBefore, 'over a new connection');
      await publishRange(h, 'quiet', 5, 5);
      await until(() => seen.length >= 5, 5000, 'live again');
      assert.deepEqual(seen, range(1, 5));
      assert.equal(c.state, 'connected');
    });
  }

  for (const transport of TRANSPORTS) {
    it(`${transport}: getToken is asked again when the token expires, and the stream goes on with the new one`, async () => {
      const h = await server();
      const channel = `refresh-${transport}`;
      const minted: string[] = [];
      const getToken = async () => {
        // Two-second tokens: the server ends a connection whose token expired (within its one-second sweep).
        const res = await h.call('POST', '/v1/tokens', { body: { sub: 'reader', channels: [channel], ttl: 2 } });
        assert.equal(res.status, 201);
        minted.push(res.body.token);
        return res.body.token as string;
      };
      const c = client({ url: h.url, getToken, transports: [transport], ...fast });
      const errors: unknown[] = [];
      c.on('error', (e) => errors.push(e));
      const seen: number[] = [];
      c.subscribe(channel, { after: 0 }, (e) => seen.push(e.data as number));
      await publishRange(h, channel, 1, 2);
      await until(() => seen.length === 2, 5000, 'events with the first token');
      assert.equal(minted.length, 1);
      const expiresAt = (JSON.parse(Buffer.from(minted[0]!.split('.')[1]!, 'base64url').toString()) as { exp: number }).exp * 1000;
      await until(() => Date.now() > expiresAt, 5000, 'the first token expired');
      // WebSocket and SSE are ended by the server at expiry; a parked poll answers these, and its next request is refused.
      await publishRange(h, channel, 3, 4);
      await until(() => seen.length >= 4 && minted.length >= 2, 8000, 'events with a refreshed token');
      assert.deepEqual(seen, range(1, 4));
      assert.deepEqual(errors, []);
      assert.equal(new Set(minted).size, minted.length, 'each refresh is a new token');
    });
  }

  for (const transport of ['websocket', 'sse'] as const) {
    it(`${transport}: a fixed token that expires ends the client at the server's close, without one more refused request`, async () => {
      const h = await server();
      const token = (await h.call('POST', '/v1/tokens', { body: { sub: 'fixed', channels: ['fixed'], ttl: 2 } })).body.token as string;
      let requests = 0;
      const counting: typeof fetch = (input, init) => (requests++, fetch(input, init));
      let sockets = 0;
      const Counting = class extends WebSocket {
        constructor(url: string | URL, protocols?: string | string[]) {
          super(url, protocols);
          sockets++;
        }
      };
      const c = client({ url: h.url, token, transports: [transport], ...fast, fetch: counting, WebSocket: Counting });
      const errors: HeraldClientError[] = [];
      c.on('error', (e) => errors.push(e));
      c.subscribe('fixed', { after: 0 }, () => {});
      await until(() => c.state === 'connected', 5000, 'connected');
      const made = { requests, sockets };
      // The server ends the connection within its one-second sweep after the expiry.
      await until(() => errors.length > 0 && c.state === 'disconnected', 8000, 'the end at expiry');
      assert.equal(errors[0]!.code, 'unauthorized');
      assert.match(errors[0]!.message, /expired/);
      assert.deepEqual({ requests, sockets }, made, 'no request and no socket after the close');
    });
  }

  it('a refused token makes the client ask getToken for another one and connect with it', async () => {
    const h = await server();
    const good = (await h.call('POST', '/v1/tokens', { body: { sub: 'r', channels: ['second-try'], ttl: 600 } })).body.token as string;
    const answers = ['not-a-valid-token', good];
    let asked = 0;
    const c = client({ url: h.url, getToken: () => answers[Math.min(asked++, 1)]!, transports: ['websocket'], ...fast });
    const errors: unknown[] = [];
    c.on('error', (e) => errors.push(e));
    const seen: number[] = [];
    c.subscribe('second-try', { after: 0 }, (e) => seen.push(e.data as number));
    await publishRange(h, 'second-try', 1, 1);
    await until(() => seen.length === 1, 5000, 'an event with the second token');
    assert.equal(asked, 2, 'asked once, refused, asked again');
    assert.deepEqual(errors, []);
    // A token with more than 30 s left is kept across reconnects: no needless refresh.
    const states: string[] = [];
    c.on('state', (state) => states.push(state));
    for (const session of (h.ws as unknown as { sessions: Set<{ principal?: { id: string }; ws: { terminate(): void } }> }).sessions) {
      if (session.principal?.id === 'r') session.ws.terminate();
    }
    await until(() => states.includes('disconnected') && states.at(-1) === 'connected', 5000, 'dropped and reconnected');
    await publishRange(h, 'second-try', 2, 2);
    await until(() => seen.length === 2, 5000, 'an event after the reconnect');
    assert.equal(asked, 2);
  });

  it('a getToken that throws is retried with backoff, not fatal', async () => {
    const h = await server();
    let calls = 0;
    const c = client({
      url: h.url,
      getToken: () => {
        calls += 1;
        if (calls < 3) throw new Error('auth service down');
        return ADMIN_KEY;
      },
      transports: ['websocket'],
      ...fast,
    });
    const reasons: string[] = [];
    c.on('state', (state, detail) => state === 'disconnected' && reasons.push(detail.reason ?? ''));
    const seen: number[] = [];
    c.subscribe('flaky-auth', { after: 0 }, (e) => seen.push(e.data as number));
    await publishRange(h, 'flaky-auth', 1, 1);
    await until(() => seen.length === 1, 5000, 'connected once getToken works');
    assert.equal(calls, 3);
  });
});

describe('herald serve on SIGTERM with long polls open', () => {
  it('answers every parked poll at once with an empty page, and exits 0 quickly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-sigterm-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const running = await spawnHerald(['serve', '--host', '127.0.0.1', '--port', '0', '--data', dir, '--log-level', 'warn']);
    const auth = { authorization: `Bearer ${CLI_ADMIN_KEY}` };
    const pub = await fetch(`${running.url}/v1/channels/lp-a/events`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{"data":1}' });
    assert.equal(pub.status, 201);
    const polls = [
      fetch(`${running.url}/v1/channels/lp-a/events?after=1&wait=30`, { headers: auth }),
      fetch(`${running.url}/v1/channels/lp-b/events?wait=30`, { headers: auth }),
      fetch(`${running.url}/v1/events?channel=lp-b&channel=lp-c&wait=30`, { headers: auth }),
    ];
    after(() => void (running.child.exitCode === null && running.child.kill('SIGKILL')));
    const parked = async () => {
      const text = await (await fetch(`${running.url}/metrics`, { headers: auth })).text();
      return Number(/^herald_connections_open\{transport="long_poll"\} (\d+)/m.exec(text)?.[1] ?? 0);
    };
    await eventually(async () => assert.equal(await parked(), polls.length, 'every poll parked'));
    const stoppedAt = Date.now();
    running.child.kill('SIGTERM');
    const answers = await Promise.all(polls.map(async (p) => ({ status: (await p).status, body: (await (await p).json()) as { events: unknown[] }, at: Date.now() })));
    for (const answer of answers) {
      assert.equal(answer.status, 200);
      assert.deepEqual(answer.body.events, []);
      assert.ok(answer.at - stoppedAt < 2000, `answered ${answer.at - stoppedAt} ms after SIGTERM`);
    }
    assert.equal(answers[0]!.body && (answers[0]!.body as { next?: number }).next, 1, 'the single-channel page keeps the position');
    assert.ok(typeof (answers[2]!.body as { cursor?: unknown }).cursor === 'string', 'the multi-channel page has a cursor to resume from');
    const exit = await running.exited;
    const exitedAfter = Date.now() - stoppedAt;
    assert.deepEqual(exit, { code: 0, signal: null });
    assert.ok(exitedAfter < 3000, `exited ${exitedAfter} ms after SIGTERM`);
  });
});

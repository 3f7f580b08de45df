// Regression tests for behaviours that once broke without any other test noticing (issue 16).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { connect, type AddressInfo } from 'node:net';
import { createServer } from 'node:http';
import { spawn } from 'node:child_process';
import { sign, generateSecret } from '@herald/webhooks';
import { ADMIN_KEY, BIN, eventually, rawConnection, startTestServer, until } from './helpers.js';
import { WsTestClient } from './ws-client.js';

describe('shutdown', () => {
  /** Stops the server and returns how long it took, failing past `limitMs`. */
  async function timedStop(stop: () => Promise<void>, limitMs = 2000): Promise<number> {
    const started = Date.now();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      stop(),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`close() still waiting after ${limitMs} ms`)), limitMs))),
    ]).finally(() => clearTimeout(timer));
    return Date.now() - started;
  }

  it('a server with an aborted long poll closes within a couple of seconds', async () => {
    const h = await startTestServer();
    const abort = new AbortController();
    const poll = globalThis.fetch(`${h.url}/v1/channels/parked/events?after=0&wait=30`, { headers: { authorization: `Bearer ${ADMIN_KEY}` }, signal: abort.signal });
    await until(() => h.longPoll.waiting === 1, 5000, 'the poll to park');
    abort.abort();
    await assert.rejects(poll);
    // A connection that never sent a complete request, as an aborted or pre-opened fetch can leave behind.
    const u = new URL(h.url);
    const idle = connect(Number(u.port), u.hostname);
    const partial = connect(Number(u.port), u.hostname);
    await Promise.all([idle, partial].map((s) => new Promise((r) => s.once('connect', r))));
    partial.write('GET /v1/channels/parked/events?wait=30 HTTP/1.1\r\nHost: x\r\n');
    try {
      await timedStop(() => h.stop());
    } finally {
      idle.destroy();
      partial.destroy();
    }
  });

  it('still answers a parked long poll before it closes', async () => {
    const h = await startTestServer();
    const poll = h.call('GET', '/v1/channels/parked/events?after=0&wait=30');
    await until(() => h.longPoll.waiting === 1, 5000, 'the poll to park');
    await timedStop(() => h.stop());
    const res = await poll;
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.events, []);
  });

  it('answers a request that arrives while it closes with its own JSON 503, Retry-After and CORS headers', async () => {
    // A browser's long poll, released by the shutdown, is followed at once by the next one, on a kept-alive connection
    // of its pool. Fastify's own answer to it had no CORS headers: the page saw a CORS failure in its console instead
    // of the 503 a server shutting down gives, and no Retry-After.
    const origin = 'http://app.example';
    const lines: Array<{ level: number; msg: string; err?: unknown }> = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const h = await startTestServer({ cors: { origins: [origin] } }, undefined, { logger });
    // A WebSocket that does not answer the close frame holds the gateway's drain open, so the server stays closing.
    const ws = await rawConnection(h.url);
    ws.socket.on('error', () => {});
    ws.socket.write(`GET /v1/ws?token=${ADMIN_KEY} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
    await until(() => ws.received().startsWith('HTTP/1.1 101'), 5000, 'the WebSocket handshake');
    const request = `GET /v1/channels/parked/events?after=0&wait=30 HTTP/1.1\r\nHost: x\r\nOrigin: ${origin}\r\nAuthorization: Bearer ${ADMIN_KEY}\r\n\r\n`;
    const [poll, kept] = [await rawConnection(h.url), await rawConnection(h.url)];
    // A closing server may reset a connection once it has answered on it.
    for (const conn of [poll, kept]) conn.socket.on('error', () => {});
    kept.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await until(() => kept.received().includes('\r\n\r\n{'), 5000, 'the first answer on the kept connection');
    const first = kept.received().length;
    poll.socket.write(request);
    await until(() => h.longPoll.waiting === 1, 5000, 'the poll to park');
    const stopped = h.stop();
    await until(() => poll.received().includes('"events":[]'), 5000, 'the poll to be released');
    kept.socket.write(request);
    await until(() => kept.received().slice(first).includes('\r\n\r\n{'), 5000, 'the second answer');
    ws.socket.destroy();
    await stopped;
    for (const conn of [ws, poll, kept]) conn.socket.destroy();
    const second = kept.received().slice(first);
    assert.match(second, /^HTTP\/1\.1 503 /);
    assert.match(second, /\r\naccess-control-allow-origin: http:\/\/app\.example\r\n/i);
    assert.match(second, /\r\nretry-after: \d+\r\n/i);
    assert.deepEqual(JSON.parse(second.slice(second.indexOf('\r\n\r\n') + 4)).error, {
      code: 'unavailable',
      message: 'The server is shutting down.',
      details: { reason: 'shutting_down' },
    });
    // A planned refusal: no error line with a stack for it.
    assert.deepEqual(lines.filter((l) => l.level >= 50).map((l) => l.msg), []);
  });
});

describe('publish and ingest scopes', () => {
  it('scopes Idempotency-Key to the channel: the same key on two channels makes two events', async () => {
    const h = await startTestServer();
    try {
      const headers = { 'idempotency-key': 'same-key' };
      const one = await h.call('POST', '/v1/channels/p1/events', { body: { data: 1 }, headers });
      const two = await h.call('POST', '/v1/channels/p2/events', { body: { data: 2 }, headers });
      assert.equal(one.status, 201);
      assert.equal(two.status, 201, 'a new event, not a replay of p1');
      assert.notEqual(two.body.id, one.body.id);
      assert.equal(two.body.channel, 'p2');
      assert.deepEqual(two.body.data, 2);
      assert.equal((await h.call('GET', '/v1/channels/p2/events?after=0')).body.events.length, 1);
      // And on the same channel it is still a replay.
      const again = await h.call('POST', '/v1/channels/p1/events', { body: { data: 3 }, headers });
      assert.equal(again.status, 200);
      assert.equal(again.body.id, one.body.id);
    } finally {
      await h.stop();
    }
  });

  it('scopes ingest dedupe to the source, and dedupes Standard Webhooks retries whatever their timestamp', async () => {
    const h = await startTestServer();
    try {
      const secret = generateSecret();
      for (const name of ['std-a', 'std-b']) {
        const res = await h.call('POST', '/v1/sources', { body: { name, provider: 'standard', secrets: [secret], channel: `in:${name}` } });
        assert.equal(res.status, 201, JSON.stringify(res.body));
      }
      const ingest = async (source: string, body: string, timestamp: number) => {
        const res = await fetch(`${h.url}/v1/ingest/${source}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...sign('standard', { secret, body, id: 'msg_shared', timestamp }) },
          body,
        });
        return { status: res.status, body: (await res.json()) as { duplicate: boolean; event: { id: string; channel: string } } };
      };
      const now = Math.floor(Date.now() / 1000);
      const first = await ingest('std-a', '{"type":"a.first"}', now);
      assert.equal(first.status, 200);
      assert.equal(first.body.duplicate, false);
      // A retry: same webhook-id, a new timestamp (and so a new signature).
      const retry = await ingest('std-a', '{"type":"a.first"}', now + 7);
      assert.equal(retry.body.duplicate, true, 'a retry with a later webhook-timestamp is a duplicate');
      assert.equal(retry.body.event.id, first.body.event.id);
      assert.equal((await h.call('GET', '/v1/channels/in:std-a/events?after=0')).body.events.length, 1);
      // The same webhook-id on another source is that source's own event.
      const other = await ingest('std-b', '{"type":"b.first"}', now);
      assert.equal(other.body.duplicate, false);
      assert.equal(other.body.event.channel, 'in:std-b');
      assert.notEqual(other.body.event.id, first.body.event.id);
      assert.equal((await h.call('GET', '/v1/channels/in:std-b/events?after=0')).body.events.length, 1);
    } finally {
      await h.stop();
    }
  });
});

describe('WebSocket subscriptions', () => {
  it('unsubscribe stops the channel; subscribing again replaces the feed instead of adding one', async () => {
    const h = await startTestServer();
    const ws = new WsTestClient(`${h.url.replace('http', 'ws')}/v1/ws?token=${ADMIN_KEY}`);
    try {
      await ws.opened;
      const publish = async (channel: string, data: number) => assert.equal((await h.call('POST', `/v1/channels/${channel}/events`, { body: { data } })).status, 201);
      const events = (channel: string) => ws.ops('event').filter((e) => e.channel === channel).map((e) => e.data as number);
      ws.send({ op: 'subscribe', channel: 'u', ref: 's1' });
      ws.send({ op: 'subscribe', channel: 'marker', ref: 'm1' });
      await ws.next('subscribed', 2);
      await publish('u', 1);
      await until(() => events('u').length === 1);

      ws.send({ op: 'unsubscribe', channel: 'u', ref: 'u1' });
      await ws.next('unsubscribed');
      await publish('u', 2);
      // A marker on another channel, published after: once it is here, an event of `u` would have been too.
      await publish('marker', 1);
      await until(() => events('marker').length === 1);
      await publish('marker', 2);
      await until(() => events('marker').length === 2);
      assert.deepEqual(events('u'), [1], 'nothing arrives after unsubscribed');

      // Subscribe twice: each event must still arrive once.
      ws.send({ op: 'subscribe', channel: 'u', after: 2, ref: 's2' });
      ws.send({ op: 'subscribe', channel: 'u', after: 2, ref: 's3' });
      await ws.next('subscribed', 4);
      await publish('u', 3);
      await until(() => events('u').length >= 2);
      await publish('marker', 3);
      await until(() => events('marker').length === 3);
      assert.deepEqual(events('u'), [1, 3], 'the re-subscribe left one feed');
    } finally {
      ws.ws.close();
      await h.stop();
    }
  });
});

describe('outbound delivery guards', () => {
  /** A receiver on loopback that records every request and answers `status`. */
  async function receiver(status: number) {
    const received: string[] = [];
    const server = createServer((req, res) => {
      received.push(req.url ?? '');
      req.resume();
      res.writeHead(status).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    return {
      received,
      port,
      close: async () => {
        server.closeAllConnections();
        await new Promise((r) => server.close(r));
      },
    };
  }

  it('disables an endpoint that keeps failing for delivery.disableAfter, and says so on herald:system', async () => {
    const r = await receiver(500);
    const h = await startTestServer({ delivery: { allowPrivateNetworks: ['127.0.0.0/8'], retrySchedule: [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1], disableAfter: 0.3, timeout: 2 } });
    try {
      const ep = await h.call('POST', '/v1/endpoints', { body: { url: `http://127.0.0.1:${r.port}/hook`, channels: ['failing'] } });
      assert.equal(ep.status, 201, JSON.stringify(ep.body));
      assert.equal((await h.call('POST', '/v1/channels/failing/events', { body: { data: 1 } })).status, 201);
      const info = await eventually(async () => {
        const body = (await h.call('GET', `/v1/endpoints/${ep.body.id}`)).body;
        assert.equal(body.enabled, false);
        return body;
      }, 10_000);
      assert.match(info.disabledReason, /without a break/);
      // Published just after the endpoint is disabled, and readable once that append is durable: wait for it.
      await eventually(async () => {
        const system = (await h.call('GET', '/v1/channels/herald:system/events')).body.events;
        assert.ok(system.some((e: any) => e.type === 'endpoint.disabled' && e.data.endpointId === ep.body.id), 'endpoint.disabled is on herald:system');
      });
    } finally {
      await h.stop();
      await r.close();
    }
  });

  it('checks the address again at delivery time: a name that now resolves to loopback is refused (DNS rebinding)', async () => {
    const r = await receiver(200);
    const h = await startTestServer({ delivery: { httpsOnly: false, retrySchedule: [60], timeout: 2 } });
    try {
      // Registered while it pointed at a public address; later the name resolves inward.
      const ep = await h.call('POST', '/v1/endpoints', { body: { url: 'http://93.184.216.34/hook', channels: ['rebind'] } });
      assert.equal(ep.status, 201, JSON.stringify(ep.body));
      const record = (await h.storage.deliveries.getEndpoint(ep.body.id))!;
      await h.storage.deliveries.updateEndpoint({ ...record, url: `http://localhost:${r.port}/hook` });
      // Any change through the API makes the worker read the endpoint afresh (it keeps the list for up to a second).
      assert.equal((await h.call('PATCH', `/v1/endpoints/${ep.body.id}`, { body: { description: 'moved' } })).status, 200);
      assert.equal((await h.call('POST', '/v1/channels/rebind/events', { body: { data: 1 } })).status, 201);
      const attempt = await eventually(async () => {
        const deliveries = (await h.call('GET', `/v1/endpoints/${ep.body.id}/deliveries`)).body.deliveries;
        assert.equal(deliveries.length, 1);
        const attempts = (await h.call('GET', `/v1/deliveries/${deliveries[0].id}/attempts`)).body.attempts;
        assert.equal(attempts.length, 1);
        return attempts[0];
      }, 10_000);
      assert.match(attempt.error, /SSRF guard/);
      assert.deepEqual(r.received, [], 'nothing reached the loopback receiver');
    } finally {
      await h.stop();
      await r.close();
    }
  });
});

describe('the herald CLI', () => {
  it('bare `herald` prints the usage and exits 2, as its help says', async () => {
    const child = spawn(process.execPath, [BIN], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 2);
    assert.match(out, /Usage: herald/);
    assert.match(out, /2 bad usage/);
  });
});

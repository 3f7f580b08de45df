import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import SwaggerParser from '@apidevtools/swagger-parser';
import { generateSecret, sign } from '@herald/webhooks';
import type { RouteOptions } from 'fastify';
import { loadConfig } from '../src/config/load.js';
import { startServer } from '../src/server.js';
import { ADMIN_KEY, eventually, startTestServer, until, type TestServer } from './helpers.js';
import { createTestDatabase } from './support/postgres.js';
import { freePort } from './support/ports.js';

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

/** `name{labels}` → value, from the Prometheus text format. */
type Scrape = Map<string, number>;

async function scrape(h: TestServer): Promise<Scrape> {
  const res = await fetch(`${h.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const out: Scrape = new Map();
  for (const line of (await res.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

const v = (s: Scrape, key: string) => s.get(key) ?? 0;

/** A local webhook receiver whose answer depends on the path. */
class Receiver {
  readonly received: Array<{ path: string; headers: IncomingMessage['headers']; body: string }> = [];
  private server!: Server;
  base = '';
  constructor(private readonly respond: (path: string, count: number, res: ServerResponse) => void) {}
  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const path = req.url ?? '/';
        this.received.push({ path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        this.respond(path, this.received.filter((r) => r.path === path).length, res);
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }
  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

function openWs(h: TestServer, token: string | null = ADMIN_KEY): Promise<{ ws: WebSocket; frames: any[] }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${h.url.replace('http', 'ws')}/v1/ws${token ? `?token=${token}` : ''}`);
    const frames: any[] = [];
    ws.on('message', (data) => frames.push(JSON.parse(data.toString())));
    ws.once('open', () => resolve({ ws, frames }));
    ws.once('error', reject);
  });
}

describe('observability: /metrics after real traffic on every path', () => {
  let h: TestServer;
  let receiver: Receiver;
  const secret = generateSecret();
  before(async () => {
    h = await startTestServer({
      delivery: { allowPrivateNetworks: ['127.0.0.0/8'], retrySchedule: [0.2], jitter: 0, timeout: 0.5 },
      limits: { bodyBytes: 64 * 1024 },
    });
    receiver = await new Receiver((path, count, res) => {
      if (path === '/flaky') return void res.writeHead(count === 1 ? 500 : 200).end();
      if (path === '/bad') return void res.writeHead(400).end();
      if (path === '/gone') return void res.writeHead(410).end();
      if (path === '/hang') return; // never answers: the attempt times out
      res.writeHead(200).end('ok');
    }).start();
    const src = await h.call('POST', '/v1/sources', { body: { name: 'std', provider: 'standard', secrets: [secret], channel: 'in:std' } });
    assert.equal(src.status, 201, JSON.stringify(src.body));
  });
  after(async () => {
    await h.stop();
    await receiver.stop();
  });

  it('is behind the admin key on the API port by default', async () => {
    assert.equal((await h.call('GET', '/metrics', { token: null })).status, 401);
    const key = await h.createKey(['subscribe', 'publish'], ['*']);
    const res = await fetch(`${h.url}/metrics`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal(res.status, 403);
  });

  it('counts appends by way in, publish latency, commits and fan-out lag', async () => {
    const before = await scrape(h);
    assert.equal((await h.call('POST', '/v1/channels/m-http/events', { body: { data: 1 } })).status, 201);
    const batch = await h.call('POST', '/v1/events', { body: { events: [1, 2, 3].map((i) => ({ channel: 'm-http', data: i })) } });
    assert.equal(batch.status, 201);
    // An idempotent replay appends nothing.
    const replay = () => h.call('POST', '/v1/channels/m-http/events', { body: { data: 'r' }, headers: { 'idempotency-key': 'k1' } });
    await replay();
    await replay();
    const after = await scrape(h);
    assert.equal(v(after, 'herald_events_appended_total{via="http"}') - v(before, 'herald_events_appended_total{via="http"}'), 5);
    assert.equal(v(after, 'herald_publish_duration_seconds_count{via="http"}') - v(before, 'herald_publish_duration_seconds_count{via="http"}'), 4);
    assert.ok(v(after, 'herald_group_commit_batch_size_count{store="sqlite"}') > v(before, 'herald_group_commit_batch_size_count{store="sqlite"}'));
    assert.ok(v(after, 'herald_store_commit_duration_seconds_count{store="sqlite"}') > v(before, 'herald_store_commit_duration_seconds_count{store="sqlite"}'));
    assert.equal(v(after, 'herald_fanout_lag_seconds_count') - v(before, 'herald_fanout_lag_seconds_count'), 3, 'once per publish that appended');
    assert.equal(v(after, 'herald_bus_up'), 1);
    assert.ok(after.has('herald_bus_messages_published_total'));
    assert.ok(after.has('herald_bus_messages_received_total'));
  });

  it('counts WebSocket connections, subscriptions, deliveries and publishes', async () => {
    const before = await scrape(h);
    const a = await openWs(h);
    const b = await openWs(h);
    for (const s of [a, b]) s.ws.send(JSON.stringify({ op: 'subscribe', channel: 'm-ws', ref: 's' }));
    await until(() => a.frames.some((f) => f.op === 'subscribed') && b.frames.some((f) => f.op === 'subscribed'));
    const open = await scrape(h);
    assert.equal(v(open, 'herald_connections_open{transport="ws"}'), 2);
    assert.equal(v(open, 'herald_subscriptions_open') - v(before, 'herald_subscriptions_open'), 2);
    a.ws.send(JSON.stringify({ op: 'publish', channel: 'm-ws', data: { n: 1 }, ref: 'p1', traceparent: TRACEPARENT }));
    await until(() => b.frames.some((f) => f.op === 'event'));
    await until(() => a.frames.some((f) => f.op === 'ack'));
    const event = b.frames.find((f) => f.op === 'event');
    assert.equal(event.meta?.traceparent, TRACEPARENT, 'the WebSocket publish kept its trace context');
    const after = await scrape(h);
    assert.equal(v(after, 'herald_events_appended_total{via="ws"}') - v(before, 'herald_events_appended_total{via="ws"}'), 1);
    assert.equal(v(after, 'herald_realtime_deliveries_total{transport="ws"}') - v(before, 'herald_realtime_deliveries_total{transport="ws"}'), 2);
    a.ws.close();
    b.ws.close();
    await eventually(async () => {
      const closed = await scrape(h);
      assert.equal(v(closed, 'herald_connections_open{transport="ws"}'), 0);
      assert.equal(v(closed, 'herald_subscriptions_open'), v(before, 'herald_subscriptions_open'));
    });
  });

  it('counts SSE streams and deliveries, parked long polls, and refusals on each transport', async () => {
    const before = await scrape(h);
    const controller = new AbortController();
    const res = await fetch(`${h.url}/v1/channels/m-sse/stream?token=${ADMIN_KEY}`, { signal: controller.signal });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    let text = '';
    const reading = (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        text += Buffer.from(value).toString('utf8');
      }
    })().catch(() => {});
    const poll = h.call('GET', '/v1/channels/m-poll/events?wait=5');
    await eventually(async () => {
      const s = await scrape(h);
      assert.equal(v(s, 'herald_connections_open{transport="sse"}'), 1);
      assert.equal(v(s, 'herald_connections_open{transport="long_poll"}'), 1);
    });
    await h.call('POST', '/v1/channels/m-sse/events', { body: { data: 'x' } });
    await h.call('POST', '/v1/channels/m-poll/events', { body: { data: 'y' } });
    await until(() => text.includes('"data":"x"'));
    assert.equal((await poll).body.events.length, 1);
    // Refusals: no credential on a private channel, and a bad one on the WebSocket.
    assert.equal((await fetch(`${h.url}/v1/channels/m-sse/stream`)).status, 401);
    assert.equal((await h.call('GET', '/v1/channels/m-poll/events?wait=1', { token: null })).status, 401);
    const bad = new WebSocket(`${h.url.replace('http', 'ws')}/v1/ws?token=nope`);
    await new Promise((resolve) => bad.once('close', resolve));
    const forbidden = await fetch(`${h.url}/v1/channels/m-sse/stream?token=${ADMIN_KEY}`, { headers: { origin: 'https://evil.example' } });
    assert.equal(forbidden.status, 403);
    const after = await scrape(h);
    const d = (key: string) => v(after, key) - v(before, key);
    assert.equal(d('herald_realtime_deliveries_total{transport="sse"}'), 1);
    assert.equal(d('herald_connections_refused_total{transport="sse",reason="unauthorized"}'), 1);
    assert.equal(d('herald_connections_refused_total{transport="sse",reason="forbidden"}'), 1);
    assert.equal(d('herald_connections_refused_total{transport="long_poll",reason="unauthorized"}'), 1);
    assert.equal(d('herald_connections_refused_total{transport="ws",reason="unauthorized"}'), 1);
    controller.abort();
    await reading;
    await eventually(async () => assert.equal(v(await scrape(h), 'herald_connections_open{transport="sse"}'), 0));
  });

  it('counts inbound webhooks by provider and outcome', async () => {
    const before = await scrape(h);
    const ingest = (body: string, headers: Record<string, string>) =>
      fetch(`${h.url}/v1/ingest/std`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
    const body = JSON.stringify({ type: 'thing.happened', n: 1 });
    const headers = sign('standard', { secret, body, id: 'msg_obs_1' });
    assert.equal((await ingest(body, { ...headers, traceparent: TRACEPARENT })).status, 200);
    assert.equal((await ingest(body, headers)).status, 200); // the provider's retry: a duplicate
    assert.equal((await ingest(body, sign('standard', { secret: generateSecret(), body }))).status, 401);
    assert.equal((await ingest(body, sign('standard', { secret, body, timestamp: Math.floor(Date.now() / 1000) - 3600 }))).status, 401);
    const big = JSON.stringify({ pad: 'x'.repeat(70 * 1024) });
    assert.equal((await ingest(big, sign('standard', { secret, body: big }))).status, 413);
    // Signed, but nothing Herald can store: the sender's fault, counted apart from a forged signature.
    const notJson = 'not json';
    assert.equal((await ingest(notJson, sign('standard', { secret, body: notJson }))).status, 400);
    const after = await scrape(h);
    const d = (outcome: string) =>
      v(after, `herald_inbound_webhooks_total{provider="standard",outcome="${outcome}"}`) - v(before, `herald_inbound_webhooks_total{provider="standard",outcome="${outcome}"}`);
    assert.deepEqual(
      ['accepted', 'duplicate', 'invalid_signature', 'expired', 'too_large', 'invalid', 'error'].map(d),
      [1, 1, 1, 1, 1, 1, 0],
    );
    assert.equal(v(after, 'herald_events_appended_total{via="ingest"}') - v(before, 'herald_events_appended_total{via="ingest"}'), 1);
    const page = await h.call('GET', '/v1/channels/in:std/events');
    assert.equal(page.body.events.at(-1).meta.traceparent, TRACEPARENT, 'the ingest request kept its trace context');
    assert.equal(page.body.events.at(-1).meta.source, 'std', "Herald's own meta is still there");
  });

  it('counts each outbound attempt once by outcome, delivery latency, dead letters and disabled endpoints', async () => {
    const before = await scrape(h);
    const endpoint = async (path: string, channel: string, url = `${receiver.base}${path}`) => {
      const res = await h.call('POST', '/v1/endpoints', { body: { url, channels: [channel] } });
      assert.equal(res.status, 201, JSON.stringify(res.body));
    };
    await endpoint('/flaky', 'out-flaky');
    await endpoint('/bad', 'out-bad');
    await endpoint('/gone', 'out-gone');
    await endpoint('/hang', 'out-hang');
    // A port nothing listens on: connection refused.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    await endpoint('', 'out-net', `http://127.0.0.1:${closedPort}/hook`);
    // Disabled by hand: no news for an operator's alert, so neither the gauge nor /v1/stats counts it.
    const statsBefore = (await h.call('GET', '/v1/stats')).body;
    const manual = await h.call('POST', '/v1/endpoints', { body: { url: `${receiver.base}/manual`, channels: ['out-manual'] } });
    assert.equal((await h.call('PATCH', `/v1/endpoints/${manual.body.id}`, { body: { enabled: false } })).status, 200);
    for (const channel of ['out-flaky', 'out-bad', 'out-gone', 'out-hang', 'out-net']) {
      await h.call('POST', `/v1/channels/${channel}/events`, { body: { data: channel } });
    }
    await eventually(
      async () => {
        const s = await scrape(h);
        const d = (outcome: string) => v(s, `herald_outbound_attempts_total{outcome="${outcome}"}`) - v(before, `herald_outbound_attempts_total{outcome="${outcome}"}`);
        // flaky: 500 then 200; bad: 400 twice (the schedule has one retry); gone: 410 once, then disabled;
        // hang: two timeouts; the closed port: two connection errors.
        assert.deepEqual(
          { success: d('success'), http_4xx: d('http_4xx'), http_5xx: d('http_5xx'), timeout: d('timeout'), network: d('network'), ssrf_refused: d('ssrf_refused') },
          { success: 1, http_4xx: 3, http_5xx: 1, timeout: 2, network: 2, ssrf_refused: 0 },
        );
        assert.equal(v(s, 'herald_delivery_latency_seconds_count') - v(before, 'herald_delivery_latency_seconds_count'), 1);
        assert.equal(v(s, 'herald_deliveries{status="failed"}') - v(before, 'herald_deliveries{status="failed"}'), 4);
        assert.equal(v(s, 'herald_endpoints_disabled') - v(before, 'herald_endpoints_disabled'), 1);
        assert.equal(v(s, 'herald_events_appended_total{via="system"}') - v(before, 'herald_events_appended_total{via="system"}'), 1);
      },
      10_000,
    );
    const statsAfter = (await h.call('GET', '/v1/stats')).body;
    assert.equal(statsAfter.endpoints.disabled - statsBefore.endpoints.disabled, 1, 'the 410 one, not the one disabled by hand');
  });

  it('counts a slow consumer it drops', async () => {
    const before = await scrape(h);
    // A raw socket that upgrades, subscribes, then never reads: the server's send buffer fills.
    const port = Number(new URL(h.url).port);
    const socket = connect(port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(
      `GET /v1/ws?token=${ADMIN_KEY} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    await new Promise((resolve) => socket.once('data', resolve));
    const payload = Buffer.from(JSON.stringify({ op: 'subscribe', channel: 'm-slow' }));
    const mask = Buffer.from([1, 2, 3, 4]);
    const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
    socket.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]));
    socket.pause();
    // No wait for the subscription: publishing repeats until the drop is counted.
    const data = 'x'.repeat(60 * 1024);
    await eventually(
      async () => {
        await h.call('POST', '/v1/channels/m-slow/events', { body: { data } });
        const s = await scrape(h);
        assert.equal(v(s, 'herald_slow_consumer_disconnects_total{transport="ws"}') - v(before, 'herald_slow_consumer_disconnects_total{transport="ws"}'), 1);
      },
      15_000,
    );
    socket.destroy();
  });

  it('reports the default Node process metrics under herald_', async () => {
    const s = await scrape(h);
    for (const name of ['herald_process_cpu_seconds_total', 'herald_nodejs_eventloop_lag_seconds', 'herald_nodejs_heap_size_used_bytes']) {
      assert.ok(s.has(name), name);
    }
    assert.ok([...s.keys()].some((k) => k.startsWith('herald_nodejs_gc_duration_seconds')));
  });
});

describe('observability: metrics configuration', () => {
  it('metrics.public serves /metrics without a credential; metrics.enabled false serves nothing', async () => {
    const open = await startTestServer({ metrics: { public: true } });
    try {
      assert.equal((await fetch(`${open.url}/metrics`)).status, 200);
    } finally {
      await open.stop();
    }
    const off = await startTestServer({ metrics: { enabled: false } });
    try {
      assert.equal((await off.call('GET', '/metrics')).status, 404);
    } finally {
      await off.stop();
    }
  });

  it('metrics.port moves /metrics to a listener of its own, without auth', async () => {
    const port = await freePort('127.0.0.1');
    const h = await startTestServer({ metrics: { port } });
    try {
      assert.equal(h.metricsUrl, `http://127.0.0.1:${port}/metrics`);
      const res = await fetch(h.metricsUrl!);
      assert.equal(res.status, 200);
      assert.match(await res.text(), /^# HELP herald_/m);
      assert.equal((await h.call('GET', '/metrics')).status, 404);
    } finally {
      await h.stop();
    }
  });

  it('exports the SQLite checkpoint family on a SQLite node, and not on a PostgreSQL one', async () => {
    const family = /^# TYPE herald_store_checkpoint_failures_total counter$/m;
    const db = await createTestDatabase('herald_metrics');
    try {
      const pg = await startTestServer({ store: { url: db.url } });
      try {
        const text = await fetch(`${pg.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } }).then((r) => r.text());
        assert.match(text, /^# TYPE herald_events_appended_total counter$/m);
        assert.doesNotMatch(text, family);
      } finally {
        await pg.stop();
      }
    } finally {
      await db.drop();
    }
    const sqlite = await startTestServer();
    try {
      const text = await fetch(`${sqlite.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } }).then((r) => r.text());
      assert.match(text, family);
    } finally {
      await sqlite.stop();
    }
  });

  it('names an IPv6 metrics.host in brackets', async () => {
    const port = await freePort('::1');
    const h = await startTestServer({ metrics: { port, host: '::1' } });
    try {
      assert.equal(h.metricsUrl, `http://[::1]:${port}/metrics`);
      assert.equal((await fetch(h.metricsUrl!)).status, 200);
    } finally {
      await h.stop();
    }
  });
});

describe('observability: traceparent from publish to every receiver', () => {
  it('sends the publish request\'s traceparent on each outbound delivery, and keeps it in meta', async () => {
    const h = await startTestServer({ delivery: { allowPrivateNetworks: ['127.0.0.0/8'], retrySchedule: [0.2], jitter: 0 } });
    const receiver = await new Receiver((_path, count, res) => void res.writeHead(count === 1 ? 503 : 200).end()).start();
    try {
      for (const path of ['/a', '/b']) {
        assert.equal((await h.call('POST', '/v1/endpoints', { body: { url: `${receiver.base}${path}`, channels: ['traced'] } })).status, 201);
      }
      const published = await h.call('POST', '/v1/channels/traced/events', {
        body: { data: { n: 1 }, meta: { tenant: 'acme' } },
        headers: { traceparent: TRACEPARENT },
      });
      assert.equal(published.status, 201);
      assert.deepEqual(published.body.meta, { tenant: 'acme', traceparent: TRACEPARENT });
      // Untraced, and an invalid header (ignored, as the spec asks).
      const plain = await h.call('POST', '/v1/channels/traced/events', { body: { data: { n: 2 } }, headers: { traceparent: 'not-a-trace' } });
      assert.equal(plain.body.meta, undefined);
      // Each receiver: the first event's 503, its retry, and the second event.
      await until(() => receiver.received.length >= 6, 10_000, 'six deliveries');
      const traced = receiver.received.filter((r) => JSON.parse(r.body).id === published.body.id);
      assert.equal(traced.length, 4, 'two receivers, one retry each');
      for (const r of traced) assert.equal(r.headers.traceparent, TRACEPARENT);
      for (const r of receiver.received.filter((x) => JSON.parse(x.body).id === plain.body.id)) assert.equal(r.headers.traceparent, undefined);
      // A batch: the header applies to each event, unless the event's meta carries its own.
      const own = '00-11111111111111111111111111111111-2222222222222222-01';
      const batch = await h.call('POST', '/v1/events', {
        body: { events: [{ channel: 'b', data: 1 }, { channel: 'b', data: 2, meta: { traceparent: own } }] },
        headers: { traceparent: TRACEPARENT },
      });
      assert.deepEqual(batch.body.events.map((e: any) => e.meta.traceparent), [TRACEPARENT, own]);
    } finally {
      await h.stop();
      await receiver.stop();
    }
  });
});

describe('OpenAPI document', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-openapi-'));
  const routes: RouteOptions[] = [];
  let server: Awaited<ReturnType<typeof startServer>>;
  let doc: any;
  before(async () => {
    const config = loadConfig({ env: {}, cwd: dir, flags: { port: 0, dataDir: dir, logLevel: 'silent', adminKey: ADMIN_KEY } });
    server = await startServer(config, { onRoute: (route) => routes.push(route) });
    const res = await fetch(`${server.url}/v1/openapi.json`);
    assert.equal(res.status, 200);
    doc = await res.json();
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is a valid OpenAPI 3.1 document', async () => {
    assert.equal(doc.openapi, '3.1.0');
    await SwaggerParser.validate(structuredClone(doc));
  });

  it('documents every route Fastify registered', () => {
    assert.ok(routes.length > 20);
    const missing: string[] = [];
    for (const route of routes) {
      // @fastify/cors answers every preflight with one catch-all route; OpenAPI has no path for `*`.
      if (route.url === '*' && route.method === 'OPTIONS') continue;
      const methods = (Array.isArray(route.method) ? route.method : [route.method]).filter((m) => m !== 'HEAD');
      // As @fastify/swagger writes paths: `:id` → `{id}`, a trailing wildcard `*` → `{*}`.
      const path = route.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}').replace(/\*$/, '{*}');
      for (const method of methods) {
        const operation = doc.paths[path]?.[method.toLowerCase()];
        if (!operation) missing.push(`${method} ${route.url}`);
        else {
          assert.ok(operation.summary && !operation.summary.startsWith(method), `${method} ${route.url} has a summary`);
          assert.ok(operation.tags?.length, `${method} ${route.url} has a tag`);
          assert.ok(operation.responses['4XX'], `${method} ${route.url} documents its errors`);
        }
      }
    }
    assert.deepEqual(missing, []);
  });

  it('has numeric request fields only where the finite-number check looks (top-level querystring and body)', () => {
    // Ajv coerces text like `Infinity` past a number's range checks; http/finite-numbers.ts checks the top-level
    // fields of a querystring or body. A numeric field anywhere else would go unchecked.
    const numeric = (schema: any): boolean =>
      typeof schema === 'object' && schema !== null && ([].concat(schema.type ?? []).some((t: string) => t === 'number' || t === 'integer') || Object.values(schema).some(numeric));
    const unchecked: string[] = [];
    for (const route of routes) {
      const schema = (route.schema ?? {}) as Record<string, any>;
      for (const part of ['params', 'headers']) if (numeric(schema[part])) unchecked.push(`${route.method} ${route.url} ${part}`);
      for (const part of ['querystring', 'query', 'body']) {
        for (const [name, property] of Object.entries((schema[part]?.properties ?? {}) as Record<string, any>)) {
          const nested = { ...property, type: undefined };
          if (numeric(nested)) unchecked.push(`${route.method} ${route.url} ${part}.${name} (nested)`);
        }
      }
    }
    assert.deepEqual(unchecked, []);
    // The walk does find numbers: the poll's `limit`, for one.
    const poll = routes.find((route) => route.url === '/v1/channels/:channel/events' && route.method === 'GET');
    assert.ok(numeric((poll?.schema as any)?.querystring));
  });

  it('describes the error shape, the security schemes, SSE and the WebSocket frames', () => {
    assert.deepEqual(doc.components.schemas.Error.required, ['error']);
    assert.deepEqual(doc.components.schemas.Error.properties.error.required, ['code', 'message']);
    assert.ok(doc.components.schemas.Error.properties.error.properties.code.enum.includes('webhook_signature_invalid'));
    assert.deepEqual(Object.keys(doc.components.securitySchemes).sort(), ['apiKey', 'portalToken', 'subscriberToken', 'tokenQuery']);
    assert.deepEqual(doc.paths['/v1/endpoints/{id}'].get.security, [{ apiKey: [] }, { portalToken: [] }, { tokenQuery: [] }]);
    assert.deepEqual(doc.paths['/healthz'].get.security, []);
    assert.deepEqual(doc.paths['/v1/ingest/{source}'].post.security, []);
    assert.deepEqual(doc.paths['/v1/keys'].post.security, [{ apiKey: [] }, { tokenQuery: [] }]);
    assert.ok(doc.paths['/v1/channels/{channel}/stream'].get.responses['200'].content['text/event-stream']);
    assert.ok(doc.paths['/v1/stream'].get.responses['200'].content['text/event-stream']);
    assert.ok(doc.paths['/v1/ws'].get.responses['101']);
    for (const name of ['WsClientSubscribe', 'WsClientPublish', 'WsServerEvent', 'WsServerAck', 'WsServerError', 'WsClientFrame', 'WsServerFrame']) {
      assert.ok(doc.components.schemas[name], name);
    }
    assert.ok(doc.components.schemas.WsClientPublish.properties.traceparent);
    const publish = doc.paths['/v1/channels/{channel}/events'].post;
    assert.ok(publish.requestBody.content['application/json'].schema.required.includes('data'));
    assert.ok(publish.parameters.some((p: any) => p.in === 'header' && p.name === 'traceparent'));
    const header = (operation: any, name: string) => operation.parameters?.find((p: any) => p.in === 'header' && p.name === name);
    for (const path of ['/v1/channels/{channel}/events', '/v1/events']) assert.equal(header(doc.paths[path].post, 'Idempotency-Key')?.schema.maxLength, 255, path);
    for (const path of ['/v1/channels/{channel}/stream', '/v1/stream']) assert.ok(header(doc.paths[path].get, 'Last-Event-ID'), path);
    // The poll's position is documented still, though the route reads it itself.
    assert.ok(doc.paths['/v1/channels/{channel}/events'].get.parameters.some((p: any) => p.in === 'query' && p.name === 'after'));
  });
});

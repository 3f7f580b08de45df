import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fetch } from 'undici';
import { sign } from '@herald/webhooks';
import { ADMIN_KEY, eventually, startTestServer, until, type TestServer } from './helpers.js';
import { WsTestClient } from './ws-client.js';

/** The admin API and the pages the web console stands on, through the real server. */
describe('the console API', () => {
  let h: TestServer;
  let receiver: Server;
  let receiverUrl: string;
  const received: Array<{ id: string; body: any }> = [];

  before(async () => {
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        received.push({ id: String(req.headers['webhook-id']), body: JSON.parse(body) });
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/in`;
    h = await startTestServer({
      delivery: { allowPrivateNetworks: ['127.0.0.0/8'] },
      retention: { maxEvents: 500, maxAge: 3600, rules: [{ channels: ['audit:*'], maxEvents: 5 }] },
    });
  });
  after(async () => {
    receiver.closeAllConnections();
    receiver.close();
    await h.stop();
  });

  it('GET /v1/stats: counters that move with publishes and deliveries, admin only', async () => {
    const before = (await h.call('GET', '/v1/stats')).body;
    assert.deepEqual(Object.keys(before.connections).sort(), ['long_poll', 'sse', 'ws']);
    assert.deepEqual(Object.keys(before.webhooks.byOutcome).sort(), ['http_4xx', 'http_5xx', 'network', 'ssrf_refused', 'success', 'timeout']);
    assert.equal(before.node, h.nodeId);
    await h.call('POST', '/v1/events', { body: { events: [{ channel: 'stats', data: 1 }, { channel: 'stats', data: 2 }] } });
    const ws = new WsTestClient(`${h.url.replace('http', 'ws')}/v1/ws?token=${ADMIN_KEY}`);
    await ws.opened;
    const after = await eventually(async () => {
      const now = (await h.call('GET', '/v1/stats')).body;
      assert.equal(now.connections.ws, before.connections.ws + 1);
      return now;
    });
    ws.ws.close();
    assert.equal(after.events.appended - before.events.appended, 2);
    assert.equal(after.events.byVia.http - before.events.byVia.http, 2);
    assert.equal((await h.call('GET', '/v1/stats', { token: null })).status, 401);
    const subscriber = await h.createKey(['subscribe'], ['*']);
    assert.equal((await h.call('GET', '/v1/stats', { token: subscriber })).status, 403);
  });

  it('GET /v1/channels: names a page at a time with head, epoch, oldest kept seq and retention', async () => {
    for (const channel of ['audit:a', 'audit:b', 'audit:c']) {
      for (let i = 0; i < 3; i++) await h.call('POST', `/v1/channels/${channel}/events`, { body: { data: i } });
    }
    const first = await h.call('GET', '/v1/channels?prefix=audit:&limit=2');
    assert.equal(first.status, 200);
    assert.deepEqual(first.body.channels.map((c: any) => c.name), ['audit:a', 'audit:b']);
    assert.equal(first.body.next, 'audit:b');
    const a = first.body.channels[0];
    assert.equal(a.head, 3);
    assert.equal(a.oldest, 1);
    assert.equal(typeof a.epoch, 'string');
    assert.deepEqual(a.retention, { maxEvents: 5, maxAge: 3600 }, 'the rule for audit:* applies');
    const second = await h.call('GET', `/v1/channels?prefix=audit:&limit=2&after=${first.body.next}`);
    assert.deepEqual(second.body.channels.map((c: any) => c.name), ['audit:c']);
    assert.equal(second.body.next, undefined);
    const stats = (await h.call('GET', '/v1/channels?prefix=stats')).body.channels[0];
    assert.deepEqual(stats.retention, { maxEvents: 500, maxAge: 3600 });
    assert.equal((await h.call('GET', '/v1/channels', { token: null })).status, 401);
    // `?token=` is a credential here as on every route, not an unknown parameter.
    assert.equal((await h.call('GET', `/v1/channels?prefix=audit:&token=${ADMIN_KEY}`, { token: null })).status, 200);
    // What no channel name can hold is a 400, not a store error.
    for (const query of ['prefix=a%00', 'after=%00', 'prefix=caf%C3%A9']) assert.equal((await h.call('GET', `/v1/channels?${query}`)).status, 400, query);
  });

  it('POST /v1/endpoints/{id}/test on an endpoint deleted while the test is being written: 404, and no delivery left behind', async () => {
    const doomed = (await h.call('POST', '/v1/endpoints', { body: { url: receiverUrl, channels: ['orders'] } })).body;
    const store = h.storage.deliveries;
    const create = store.createDeliveries.bind(store);
    // The delete lands between the route's look-up of the endpoint and the delivery's write.
    store.createDeliveries = async (...args) => {
      store.createDeliveries = create;
      assert.equal((await h.call('DELETE', `/v1/endpoints/${doomed.id}`)).status, 204);
      return create(...args);
    };
    try {
      const sent = await h.call('POST', `/v1/endpoints/${doomed.id}/test`, { body: {} });
      assert.equal(sent.status, 404, JSON.stringify(sent.body));
      assert.equal(sent.body.error.message, `No endpoint ${doomed.id}.`, 'the answer an unknown endpoint gets');
    } finally {
      store.createDeliveries = create;
    }
    assert.deepEqual(await store.listDeliveries(doomed.id, undefined, 10), [], 'no delivery owed to the deleted endpoint');
  });

  it('POST /v1/endpoints/{id}/test: one signed delivery to that endpoint alone, outside the log', async () => {
    const make = async (channels: string[]) => (await h.call('POST', '/v1/endpoints', { body: { url: receiverUrl, channels } })).body;
    const target = await make(['shop:*', 'orders']);
    const bystander = await make(['orders']);
    const sent = await h.call('POST', `/v1/endpoints/${target.id}/test`, { body: {} });
    assert.equal(sent.status, 202, JSON.stringify(sent.body));
    assert.equal(sent.body.endpointId, target.id);
    assert.equal(sent.body.channel, 'orders', "the endpoint's first plain channel name");
    assert.equal(sent.body.seq, 0);
    await until(() => received.some((r) => r.id === sent.body.eventId), 5000, 'the test delivery');
    const event = received.find((r) => r.id === sent.body.eventId)!.body;
    assert.equal(event.type, 'herald.test');
    assert.deepEqual(event.data, { message: 'A test event from Herald.', endpointId: target.id });
    await eventually(async () => assert.equal((await h.call('GET', `/v1/deliveries/${sent.body.id}`)).body.status, 'succeeded'));
    assert.deepEqual((await h.call('GET', `/v1/endpoints/${bystander.id}/deliveries`)).body.deliveries, [], 'no other endpoint got it');
    assert.equal((await h.call('GET', '/v1/channels/orders/events')).body.head, 0, 'nothing was appended to the log');

    const custom = await h.call('POST', `/v1/endpoints/${target.id}/test`, { body: { channel: 'shop:9', type: 'order.paid', data: { total: 5 } } });
    assert.equal(custom.status, 202);
    await until(() => received.some((r) => r.id === custom.body.eventId), 5000, 'the custom test delivery');
    assert.deepEqual(received.find((r) => r.id === custom.body.eventId)!.body.data, { total: 5 });
    // A channel the endpoint does not follow, a disabled endpoint, an unknown one.
    assert.equal((await h.call('POST', `/v1/endpoints/${target.id}/test`, { body: { channel: 'billing' } })).status, 400);
    await h.call('PATCH', `/v1/endpoints/${bystander.id}`, { body: { enabled: false } });
    assert.equal((await h.call('POST', `/v1/endpoints/${bystander.id}/test`, { body: {} })).body.error.code, 'conflict');
    assert.equal((await h.call('POST', '/v1/endpoints/ep_nope/test', { body: {} })).status, 404);
    // No body at all is the default test event, as `{}` is.
    const bare = await h.call('POST', `/v1/endpoints/${target.id}/test`);
    assert.equal(bare.status, 202, JSON.stringify(bare.body));
    await until(() => received.some((r) => r.id === bare.body.eventId), 5000, 'the test delivery sent with no body');
    assert.equal(received.find((r) => r.id === bare.body.eventId)!.body.type, 'herald.test');

    // Events published after the test still reach the endpoint: the test left the channel's cursor alone.
    const published = (await h.call('POST', '/v1/channels/orders/events', { body: { data: 'real' } })).body;
    await until(() => received.some((r) => r.id === published.id), 5000, 'the real event');

    const stats = await h.call('GET', `/v1/endpoints/${target.id}/stats`);
    assert.deepEqual(
      { ...stats.body, window: undefined },
      { endpointId: target.id, window: undefined, succeeded: stats.body.window, failed: 0, pending: 0, retrying: 0, successRate: 1 },
    );
    assert.equal(stats.body.window, 4, "three test deliveries and the real event");
    const idle = await h.call('GET', `/v1/endpoints/${bystander.id}/stats`);
    assert.equal(idle.body.successRate, null, 'no delivery tried yet: no rate');
  });

  it('GET /v1/endpoints/{id}/stats: failures and retries count against the rate', async () => {
    const failing = createServer((_req, res) => res.writeHead(500).end('down'));
    await new Promise<void>((resolve) => failing.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(failing.address() as AddressInfo).port}/`;
      const endpoint = (await h.call('POST', '/v1/endpoints', { body: { url, channels: ['flaky'] } })).body;
      await h.call('POST', '/v1/channels/flaky/events', { body: { data: 1 } });
      const stats = await eventually(async () => {
        const body = (await h.call('GET', `/v1/endpoints/${endpoint.id}/stats`)).body;
        assert.equal(body.retrying, 1);
        return body;
      });
      assert.equal(stats.successRate, 0);
    } finally {
      failing.closeAllConnections();
      failing.close();
    }
  });

  it('GET /v1/sources/{name}/ingests: the latest requests, newest first, refusals with their reason', async () => {
    const secret = 'whsec_Zq8vN2pLx4Rt7Wm1Kc9Bd3Hf6Jy0Ts5';
    assert.equal((await h.call('POST', '/v1/sources', { body: { name: 'shop', provider: 'stripe', secrets: [secret] } })).status, 201);
    const post = (body: string, headers: Record<string, string>) =>
      fetch(`${h.url}/v1/ingest/shop`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
    const body = JSON.stringify({ id: 'evt_ingest_1', type: 'charge.succeeded' });
    assert.equal((await post(body, sign('stripe', { secret, body }))).status, 200);
    assert.equal((await post(body, sign('stripe', { secret, body }))).status, 200);
    assert.equal((await post(body, {})).status, 401);
    const notJson = 'not json';
    assert.equal((await post(notJson, sign('stripe', { secret, body: notJson }))).status, 400);
    const { ingests } = (await h.call('GET', '/v1/sources/shop/ingests')).body;
    assert.deepEqual(
      ingests.map((r: any) => [r.outcome, r.status, r.reason]),
      [
        ['refused', 400, 'invalid_json'],
        ['refused', 401, 'webhook_signature_invalid'],
        ['duplicate', 200, undefined],
        ['accepted', 200, undefined],
      ],
    );
    assert.equal(ingests[3].event.seq, 1);
    assert.equal(ingests[2].event.id, ingests[3].event.id);
    assert.equal(ingests[1].bytes, Buffer.byteLength(body));
    assert.match(ingests[1].message, /signature/i);
    assert.equal(JSON.stringify(ingests).includes(secret), false);
    assert.equal((await h.call('GET', '/v1/sources/nope/ingests')).status, 404);
    assert.equal((await h.call('GET', '/v1/sources/shop/ingests', { token: null })).status, 401);
  });

  it('keeps only the latest 50 ingests per source', async () => {
    for (let i = 0; i < 55; i++) await fetch(`${h.url}/v1/ingest/shop`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: `{"n":${i}}` });
    const { ingests } = (await h.call('GET', '/v1/sources/shop/ingests')).body;
    assert.equal(ingests.length, 50);
    assert.equal(ingests[0].bytes, Buffer.byteLength('{"n":54}'));
  });
});

describe('pages Herald serves itself reach its realtime transports from the same origin', () => {
  const servers: TestServer[] = [];
  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });
  const start = async (settings: Record<string, unknown> = {}) => {
    const server = await startTestServer(settings);
    servers.push(server);
    return server;
  };
  const upgrade = (h: TestServer, origin: string) => new WsTestClient(`${h.url.replace('http', 'ws')}/v1/ws?token=${ADMIN_KEY}`, { origin });
  const stream = async (h: TestServer, origin: string) => {
    const controller = new AbortController();
    const res = await fetch(`${h.url}/v1/channels/x/stream?token=${ADMIN_KEY}`, { headers: { origin }, signal: controller.signal });
    controller.abort();
    return res.status;
  };

  for (const [name, settings] of [
    ['without cors.origins', {}],
    ['with cors.origins listing another site', { cors: { origins: ['http://app.example'] } }],
  ] as const) {
    it(`${name}: accepts the server's own origin and refuses a foreign one`, async () => {
      const h = await start(settings);
      const own = upgrade(h, h.url);
      await own.opened;
      own.send({ op: 'subscribe', channel: 'x', ref: 'r' });
      await own.next('subscribed');
      own.ws.close();
      await assert.rejects(upgrade(h, 'http://evil.example').opened, /HTTP 403/);
      // Same host, another port: another origin.
      const otherPort = h.url.replace(/:(\d+)$/, (_m, p) => `:${Number(p) + 1}`);
      await assert.rejects(upgrade(h, otherPort).opened, /HTTP 403/);
      assert.equal(await stream(h, h.url), 200);
      assert.equal(await stream(h, 'http://evil.example'), 403);
    });
  }

  it('still accepts a listed foreign origin', async () => {
    const h = await start({ cors: { origins: ['http://app.example'] } });
    const listed = upgrade(h, 'http://app.example');
    await listed.opened;
    listed.ws.close();
    assert.equal(await stream(h, 'http://app.example'), 200);
  });
});

describe('the console pages and their files', () => {
  let h: TestServer;
  before(async () => {
    h = await startTestServer();
  });
  after(async () => {
    await h.stop();
  });

  it('serves /console with a CSP that allows no inline script and no framing', async () => {
    const res = await fetch(`${h.url}/console`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/html/);
    const csp = res.headers.get('content-security-policy')!;
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.match(csp, /connect-src 'self'/);
    assert.equal(res.headers.get('x-frame-options'), 'DENY');
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
    const html = await res.text();
    assert.match(html, /<script type="module" src="\/ui\/console\/app.js"><\/script>/);
    assert.doesNotMatch(html.replace(/<script[^>]*src=[^>]*><\/script>/g, ''), /<script/, 'no inline script');
    const slash = await fetch(`${h.url}/console/`, { redirect: 'manual' });
    assert.equal(slash.status, 301);
    assert.equal(slash.headers.get('location'), '/console');
  });

  it('serves the UI files and the vendored libraries, with no bare import left for the browser', async () => {
    const app = await fetch(`${h.url}/ui/console/app.js`);
    assert.equal(app.status, 200);
    assert.match(app.headers.get('content-type')!, /javascript/);
    assert.equal(app.headers.get('x-content-type-options'), 'nosniff');
    for (const file of ['preact.mjs', 'preact-hooks.mjs', 'htm.mjs', 'uplot.mjs']) {
      const res = await fetch(`${h.url}/ui/vendor/${file}`);
      assert.equal(res.status, 200, file);
      assert.match(res.headers.get('content-type')!, /^text\/javascript/);
      const bare = /\b(?:from|import)\s*\(?\s*["'](?![./])[\w@][\w@/.-]*["']/.exec(await res.text());
      assert.equal(bare?.[0], undefined, `${file} imports only relative paths`);
    }
    const hooks = await fetch(`${h.url}/ui/vendor/preact-hooks.mjs`);
    assert.match(await hooks.text(), /from"\.\/preact\.mjs"/);
    const again = await fetch(`${h.url}/ui/vendor/preact-hooks.mjs`, { headers: { 'if-none-match': hooks.headers.get('etag')! } });
    assert.equal(again.status, 304);
    const css = await fetch(`${h.url}/ui/vendor/uplot.css`);
    assert.match(css.headers.get('content-type')!, /^text\/css/);
  });

  it('serves nothing outside the UI folder and no directory listing', async () => {
    for (const path of ['/ui/../package.json', '/ui/%2e%2e/package.json', '/ui/console/', '/ui/console', '/ui/', '/ui/vendor/nope.mjs', '/ui/shared/missing.js']) {
      const res = await fetch(`${h.url}${path}`);
      assert.equal(res.status, 404, path);
      assert.equal(((await res.json()) as any).error.code, 'not_found', path);
    }
  });
});

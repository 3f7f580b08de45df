import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { verify } from '@herald/webhooks';
import { CLI_ADMIN_KEY, eventually, sleep, spawnHerald, startTestServer, until, type TestServer } from './helpers.js';
import { HookReceiver, type Respond } from './support/receiver.js';

const LOOPBACK = { allowPrivateNetworks: ['127.0.0.0/8'] };

/** True when `hook` carries a Standard Webhooks signature made with `secret`. */
function verifies(secret: string, hook: { headers: Record<string, string | string[] | undefined>; body: string }): boolean {
  try {
    return verify('standard', { secret, headers: hook.headers, body: hook.body }).ok;
  } catch {
    return false;
  }
}

describe('outbound webhooks', () => {
  let h: TestServer;
  const receivers: HookReceiver[] = [];
  const receiver = async (respond?: Respond) => {
    const r = await new HookReceiver(respond).start();
    receivers.push(r);
    return r;
  };
  before(async () => {
    h = await startTestServer({ delivery: { ...LOOPBACK, retrySchedule: [0.3, 0.6], timeout: 2 } });
  });
  after(async () => {
    await h.stop();
    for (const r of receivers) await r.stop();
  });

  const createEndpoint = async (body: Record<string, unknown>) => {
    const res = await h.call('POST', '/v1/endpoints', { body });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body as { id: string; secret: string };
  };
  const publish = async (channel: string, data: unknown, type = 'test.event') => (await h.call('POST', `/v1/channels/${channel}/events`, { body: { type, data } })).body;

  it('signs every delivery so each scheme verifies it, with the spec headers', async () => {
    const r = await receiver();
    const endpoints = {
      standard: await createEndpoint({ url: r.url, channels: ['signed'], headers: { 'x-tenant': 'acme' } }),
      stripe: await createEndpoint({ url: r.url, channels: ['signed'], scheme: 'stripe' }),
      github: await createEndpoint({ url: r.url, channels: ['signed'], scheme: 'github', secret: 'github-hook-secret' }),
    };
    assert.match(endpoints.standard.secret, /^whsec_/);
    const event = await publish('signed', { n: 1 });
    await until(() => r.hooks.length === 3);
    for (const got of r.hooks) {
      assert.deepEqual(JSON.parse(got.body), event, 'the body is the event');
      assert.equal(got.headers['content-type'], 'application/json');
      assert.match(got.headers['user-agent']!, /^Herald\/\d+\.\d+\.\d+/);
      const scheme = got.headers['webhook-signature'] ? 'standard' : got.headers['stripe-signature'] ? 'stripe' : 'github';
      assert.equal(verify(scheme, { secret: endpoints[scheme].secret, headers: got.headers, body: got.body }).ok, true);
      if (scheme === 'standard') {
        assert.equal(got.headers['webhook-id'], event.id);
        assert.equal(got.headers['x-tenant'], 'acme');
      }
      if (scheme === 'github') {
        // What GitHub's own libraries (Octokit's middleware) require besides the signature, and what a Herald
        // github source dedupes and types by.
        assert.equal(got.headers['x-github-delivery'], event.id);
        assert.equal(got.headers['x-github-event'], 'test.event');
      }
    }
  });

  it("sends a github endpoint's own x-github-event as it is, in whatever case, not joined to the event's type", async () => {
    const r = await receiver();
    // Set by hand, it was the way to satisfy GitHub's libraries before Herald sent the header itself.
    await createEndpoint({ url: r.url, channels: ['own-event'], scheme: 'github', headers: { 'X-GitHub-Event': 'push' } });
    await publish('own-event', { n: 1 }, 'order.created');
    await until(() => r.hooks.length === 1);
    // Before, both went out, and the receiver read "push, order.created".
    assert.equal(r.hooks[0]!.headers['x-github-event'], 'push');
  });

  it('retries a receiver that fails twice, at the scheduled times, then records one success', async () => {
    const r = await receiver((_req, i, res) => res.writeHead(i < 2 ? 500 : 200).end(i < 2 ? 'not yet' : 'thanks'));
    const ep = await createEndpoint({ url: r.url, channels: ['flaky'] });
    await publish('flaky', 'x');
    await until(() => r.hooks.length === 3, 5000);
    const [a, b, c] = r.hooks.map((x) => x.at) as [number, number, number];
    // 0.3 s then 0.6 s, each ±20% jitter, plus a little scheduling slack.
    assert.ok(b - a >= 240 && b - a <= 360 + 150, `first retry after ${b - a} ms`);
    assert.ok(c - b >= 480 && c - b <= 720 + 150, `second retry after ${c - b} ms`);
    // Succeeded, with nothing scheduled: no attempt can follow (the log says so, no waiting needed).
    const [delivery] = await eventually(async () => {
      const list = (await h.call('GET', `/v1/endpoints/${ep.id}/deliveries`)).body.deliveries;
      assert.equal(list[0].status, 'succeeded');
      return list;
    });
    assert.equal(delivery.attempts, 3);
    assert.equal(delivery.nextAttemptAt, undefined);
    assert.equal(r.hooks.length, 3, 'nothing after the success');
    const attempts = (await h.call('GET', `/v1/deliveries/${delivery.id}/attempts`)).body.attempts;
    assert.deepEqual(attempts.map((x: any) => x.statusCode), [500, 500, 200]);
    assert.equal(attempts[0].responseBody, 'not yet');
    assert.ok(attempts.every((x: any) => typeof x.durationMs === 'number'));
    // Every retry of one event carries the same webhook-id.
    assert.equal(new Set(r.hooks.map((x) => x.headers['webhook-id'])).size, 1);
  });

  it('disables an endpoint that answers 410 and says so on herald:system', async () => {
    const r = await receiver((_req, _i, res) => res.writeHead(410).end());
    const ep = await createEndpoint({ url: r.url, channels: ['gone'] });
    await publish('gone', 1);
    await until(() => r.hooks.length === 1);
    const info = await eventually(async () => {
      const body = (await h.call('GET', `/v1/endpoints/${ep.id}`)).body;
      assert.equal(body.enabled, false);
      return body;
    });
    assert.match(info.disabledReason, /410/);
    // Published just after the endpoint is disabled, and readable once that append is durable: wait for it.
    await eventually(async () => {
      const system = (await h.call('GET', '/v1/channels/herald:system/events')).body.events;
      assert.ok(system.some((e: any) => e.type === 'endpoint.disabled' && e.data.endpointId === ep.id), 'endpoint.disabled is on herald:system');
    });
    await publish('gone', 2);
    await sleep(400);
    assert.equal(r.hooks.length, 1, 'a disabled endpoint gets nothing more');
  });

  it('honours Retry-After on 503', async () => {
    const r = await receiver((_req, i, res) => (i === 0 ? res.writeHead(503, { 'retry-after': '1' }).end() : res.writeHead(200).end()));
    await createEndpoint({ url: r.url, channels: ['later'] });
    await publish('later', 1);
    await until(() => r.hooks.length === 2, 5000);
    const gap = r.hooks[1]!.at - r.hooks[0]!.at;
    assert.ok(gap >= 950 && gap < 2000, `second attempt came ${gap} ms later, not after the 1 s Retry-After`);
  });

  it('keeps 49 endpoints flowing while a 50th is black-holed: the hole holds only its own two slots', async () => {
    let open = 0;
    let maxOpen = 0;
    const hole = await receiver((_req, _i, res) => {
      // Never answers; the worker's timeout ends the request.
      maxOpen = Math.max(maxOpen, ++open);
      res.on('close', () => open--);
    });
    const healthy = await Promise.all(Array.from({ length: 49 }, () => receiver()));
    await createEndpoint({ url: hole.url, channels: ['fan'], maxConcurrency: 2 });
    for (const r of healthy) await createEndpoint({ url: r.url, channels: ['fan'] });
    for (let i = 0; i < 20; i++) await publish('fan', i);
    // Were the hole's hanging requests in anyone else's way, every event would wait out its 2 s timeouts and retries.
    await until(() => healthy.every((r) => r.hooks.length === 20), 10_000, 'all 49 healthy receivers got every event');
    for (const r of healthy) assert.deepEqual(r.hooks.map((x) => x.event.data), Array.from({ length: 20 }, (_, i) => i));
    assert.ok(hole.hooks.length >= 1, 'the black hole was tried');
    assert.ok(maxOpen <= 2, `the black hole never held more than its maxConcurrency (2), saw ${maxOpen}`);
  });

  it('signs with both secrets during a rotation grace period', async () => {
    const r = await receiver();
    const ep = await createEndpoint({ url: r.url, channels: ['rotate'] });
    const rotated = await h.call('POST', `/v1/endpoints/${ep.id}/rotate-secret`, { body: { graceSeconds: 3600 } });
    assert.equal(rotated.status, 200);
    assert.notEqual(rotated.body.secret, ep.secret);
    await publish('rotate', 1);
    await until(() => r.hooks.length === 1);
    const got = r.hooks[0]!;
    assert.equal((got.headers['webhook-signature'] as string).split(' ').length, 2);
    assert.equal(verify('standard', { secret: ep.secret, headers: got.headers, body: got.body }).ok, true);
    assert.equal(verify('standard', { secret: rotated.body.secret, headers: got.headers, body: got.body }).ok, true);
    assert.equal((await h.call('GET', `/v1/endpoints/${ep.id}/secret`)).body.secret, rotated.body.secret);
    // No body at all: a day's grace, so the request after it is signed with all three.
    const bare = await h.call('POST', `/v1/endpoints/${ep.id}/rotate-secret`);
    assert.equal(bare.status, 200, JSON.stringify(bare.body));
    await publish('rotate', 2);
    await until(() => r.hooks.length === 2);
    const next = r.hooks[1]!;
    assert.equal((next.headers['webhook-signature'] as string).split(' ').length, 3);
    for (const secret of [ep.secret, rotated.body.secret, bare.body.secret]) assert.equal(verify('standard', { secret, headers: next.headers, body: next.body }).ok, true);
  });

  it('lists deliveries by status, keeps 1 KiB of the answer, and retries or recovers failed ones', async () => {
    let healthy = false;
    const r = await receiver((_req, _i, res) => res.writeHead(healthy ? 200 : 500).end('e'.repeat(2048)));
    const ep = await createEndpoint({ url: r.url, channels: ['dead'] });
    await publish('dead', 1);
    await publish('dead', 2);
    await until(() => r.hooks.length === 6, 5000, 'three attempts each');
    const failed = await eventually(async () => {
      const list = (await h.call('GET', `/v1/endpoints/${ep.id}/deliveries?status=failed`)).body.deliveries;
      assert.equal(list.length, 2);
      return list;
    });
    assert.equal((await h.call('GET', `/v1/endpoints/${ep.id}/deliveries?status=pending`)).body.deliveries.length, 0);
    const attempts = (await h.call('GET', `/v1/deliveries/${failed[0].id}/attempts`)).body.attempts;
    assert.equal(attempts.length, 3);
    assert.equal(attempts[0].responseBody.length, 1024);

    healthy = true;
    const retried = await h.call('POST', `/v1/deliveries/${failed[0].id}/retry`);
    assert.equal(retried.status, 202);
    await until(() => r.hooks.length === 7);
    await eventually(async () => assert.equal((await h.call('GET', `/v1/deliveries/${failed[0].id}`)).body.status, 'succeeded'));
    const again = await h.call('POST', `/v1/deliveries/${failed[0].id}/retry`);
    assert.equal(again.status, 409);

    // A window that ends before it starts holds nothing: said so, not answered `recovered: 0` as if it were checked.
    const inverted = await h.call('POST', `/v1/endpoints/${ep.id}/recover`, {
      body: { since: new Date(Date.now()).toISOString(), until: new Date(Date.now() - 60_000).toISOString() },
    });
    assert.equal(inverted.status, 400, JSON.stringify(inverted.body));
    assert.match(inverted.body.error.message, /comes before since/);
    const recovered = await h.call('POST', `/v1/endpoints/${ep.id}/recover`, { body: { since: new Date(Date.now() - 60_000).toISOString() } });
    assert.deepEqual(recovered.body, { recovered: 1 });
    await until(() => r.hooks.length === 8);
    await eventually(async () => assert.equal((await h.call('GET', `/v1/endpoints/${ep.id}/deliveries?status=succeeded`)).body.deliveries.length, 2));
  });

  it('filters by channel pattern and event type, and manages endpoints', async () => {
    const r = await receiver();
    const ep = await createEndpoint({ url: r.url, channels: ['shop:*'], types: ['order.*'] });
    await publish('shop:eu', 1, 'order.created');
    await publish('shop:eu', 2, 'user.created');
    await publish('other', 3, 'order.created');
    await publish('shop:us', 4, 'order.paid');
    await until(() => r.hooks.length === 2);
    await sleep(200);
    assert.deepEqual(r.hooks.map((x) => x.event.data), [1, 4]);
    const patched = await h.call('PATCH', `/v1/endpoints/${ep.id}`, { body: { types: [], description: 'all shop events' } });
    assert.equal(patched.body.description, 'all shop events');
    await publish('shop:eu', 5, 'user.created');
    await until(() => r.hooks.length === 3);
    assert.equal((await h.call('GET', '/v1/endpoints')).body.endpoints.some((e: any) => e.id === ep.id), true);
    assert.equal((await h.call('DELETE', `/v1/endpoints/${ep.id}`)).status, 204);
    assert.equal((await h.call('GET', `/v1/endpoints/${ep.id}`)).status, 404);
    const key = await h.createKey(['publish'], ['*']);
    assert.equal((await h.call('GET', '/v1/endpoints', { token: key })).status, 403);
  });

  it('moves and saves the cursor of channels no endpoint wants, and still delivers the next wanted event', async () => {
    const r = await receiver();
    await createEndpoint({ url: r.url, channels: ['kept:*'] });
    for (let i = 1; i <= 3; i++) {
      await publish('unwanted-a', i);
      await publish('unwanted-b', i);
    }
    await publish('kept:1', 'wanted');
    // Saved in one write a second later, not one write per event.
    await eventually(async () => {
      const cursors = await h.storage.deliveries.cursors();
      assert.deepEqual([cursors.get('unwanted-a'), cursors.get('unwanted-b'), cursors.get('kept:1')], [3, 3, 1], 'cursors saved');
    }, 5000);
    await until(() => r.hooks.length === 1);
    assert.equal(r.hooks[0]!.event.data, 'wanted');
  });
});

describe('outbound webhooks of an event whose chosen id holds a full stop', () => {
  it('are delivered under Standard Webhooks too (webhook-id with ~ for .), in channel order, and the server stays idle', async () => {
    // Standard Webhooks signs `id.timestamp.body` and its signer refuses an id with a `.`, which a chosen event id
    // may hold: such a delivery stayed pending with no attempt for good, held up its channel for an ordered
    // endpoint, and the worker retried it in a loop that, with an ordered endpoint, kept the event loop from
    // answering any request. A server of its own (a child process), so such a loop cannot stall this test.
    const dir = mkdtempSync(join(tmpdir(), 'herald-dotted-'));
    const r = await new HookReceiver().start();
    const admin = { authorization: `Bearer ${CLI_ADMIN_KEY}`, 'content-type': 'application/json' };
    const server = await spawnHerald(['serve', '--port', '0', '--data', dir, '--log-level', 'warn'], { HERALD_DELIVERY_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8' });
    let stdout = '';
    server.child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    const call = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${server.url}${path}`, { method, headers: admin, signal: AbortSignal.timeout(10_000), ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
      return { status: res.status, body: (await res.json()) as any };
    };
    try {
      const endpoint = async (body: Record<string, unknown>) => {
        const res = await call('POST', '/v1/endpoints', { url: r.url, channels: ['dotted'], ...body });
        assert.equal(res.status, 201, JSON.stringify(res.body));
        return res.body as { id: string; secret: string };
      };
      const standard = await endpoint({});
      const ordered = await endpoint({ ordering: 'channel' });
      const stripe = await endpoint({ scheme: 'stripe' });
      const dotted = (await call('POST', '/v1/channels/dotted/events', { id: 'order.42.created', type: 'order.created', data: { n: 1 } })).body;
      assert.equal(dotted.id, 'order.42.created');
      const next = (await call('POST', '/v1/channels/dotted/events', { type: 'order.paid', data: { n: 2 } })).body;
      await until(() => r.hooks.length >= 6, 10_000, 'both events at all three endpoints');
      const standardHooks = r.hooks.filter((hook) => hook.headers['webhook-signature']);
      assert.equal(standardHooks.length, 4);
      for (const hook of standardHooks) {
        const { id } = verify('standard', { secrets: [standard.secret, ordered.secret], headers: hook.headers, body: hook.body });
        assert.equal(id, hook.event.id === dotted.id ? 'order~42~created' : next.id);
      }
      const stripeHook = r.hooks.find((hook) => hook.headers['stripe-signature'] && hook.event.id === dotted.id);
      assert.ok(stripeHook && verify('stripe', { secret: stripe.secret, headers: stripeHook.headers, body: stripeHook.body }).ok);
      // The ordered endpoint got the dotted event first, then the next one.
      assert.deepEqual(standardHooks.filter((hook) => verifies(ordered.secret, hook)).map((hook) => hook.event.seq), [1, 2]);
      await eventually(async () => {
        for (const ep of [standard, ordered, stripe]) assert.deepEqual((await call('GET', `/v1/endpoints/${ep.id}/deliveries?status=pending`)).body.deliveries, []);
      });
      assert.doesNotMatch(stdout, /recording an attempt failed/);
    } finally {
      server.child.kill('SIGKILL');
      await server.exited;
      await r.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('an attempt whose outcome cannot be recorded', () => {
  it('holds its delivery back a while instead of sending it again at once, and delivers it once the store takes outcomes', async () => {
    const h = await startTestServer({ delivery: LOOPBACK });
    const r = await new HookReceiver().start();
    const deliveries = h.storage.deliveries;
    const record = deliveries.recordAttempt.bind(deliveries);
    let refusals = 0;
    deliveries.recordAttempt = async () => {
      refusals += 1;
      throw new Error('the store refuses the outcome');
    };
    try {
      assert.equal((await h.call('POST', '/v1/endpoints', { body: { url: r.url, channels: ['stuck'] } })).status, 201);
      assert.equal((await h.call('POST', '/v1/channels/stuck/events', { body: { data: 1 } })).status, 201);
      await until(() => refusals >= 1, 5000, 'the first attempt');
      await sleep(1500);
      // One attempt a second at most (before, the same delivery went out again at once: hundreds in this time).
      assert.ok(r.hooks.length <= 3, `${r.hooks.length} requests in 1.5 s`);
      deliveries.recordAttempt = record;
      const [endpoint] = (await h.call('GET', '/v1/endpoints')).body.endpoints;
      const succeeded = async () => (await h.call('GET', `/v1/endpoints/${endpoint.id}/deliveries?status=succeeded`)).body.deliveries.length;
      await until(async () => (await succeeded()) === 1, 5000, 'delivered once recorded');
    } finally {
      deliveries.recordAttempt = record;
      await h.stop();
      await r.stop();
    }
  });
});

describe('a delivery pump that fails', () => {
  it('runs again at the next tick: a retry due later is still sent, with no new event or edit to wake the worker', async () => {
    const h = await startTestServer({ delivery: { ...LOOPBACK, retrySchedule: [3], jitter: 0 } });
    const r = await new HookReceiver().start();
    r.status = 500;
    const deliveries = h.storage.deliveries;
    const nextDue = deliveries.nextDue.bind(deliveries);
    try {
      const endpoint = (await h.call('POST', '/v1/endpoints', { body: { url: r.url, channels: ['blip'] } })).body as { id: string };
      assert.equal((await h.call('POST', '/v1/channels/blip/events', { body: { data: 1 } })).status, 201);
      const attempts = async () => (await h.call('GET', `/v1/endpoints/${endpoint.id}/deliveries`)).body.deliveries[0]?.attempts ?? 0;
      await until(async () => (await attempts()) === 1, 5000, 'the first attempt recorded');
      // Past the passes its outcome kicked: from now on only the worker's own timer runs it.
      await sleep(1200);
      // The store fails one read of the worker's (PostgreSQL restarting, say), with the retry still to come. Before,
      // the failed pass armed no timer, and the retry waited for the next event or edit, however long that took.
      let failures = 0;
      deliveries.nextDue = async (...args) => {
        if (failures++ === 0) throw new Error('the store is away for a moment');
        return nextDue(...args);
      };
      await until(() => failures > 0, 3000, 'a pump read the store');
      r.status = 200;
      await until(() => r.hooks.length === 2, 6000, 'the retry sent after the failed pump');
    } finally {
      deliveries.nextDue = nextDue;
      await h.stop();
      await r.stop();
    }
  });
});

describe('a delivery pump failing for a while', () => {
  it('logs the streak once, not every tick, and once more when the pump works again', async () => {
    const lines: Array<{ level: number; msg: string; failures?: number }> = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const h = await startTestServer({ delivery: LOOPBACK }, undefined, { logger });
    const r = await new HookReceiver().start();
    const deliveries = h.storage.deliveries;
    const nextDue = deliveries.nextDue.bind(deliveries);
    try {
      await h.call('POST', '/v1/endpoints', { body: { url: r.url, channels: ['streak'] } });
      // The store away for about three idle ticks (PostgreSQL restarting, say): every pump fails.
      let failures = 0;
      deliveries.nextDue = async () => {
        failures += 1;
        throw new Error('the store is away');
      };
      await until(() => failures >= 3, 6000, 'three pumps failed');
      deliveries.nextDue = nextDue;
      await until(() => lines.some((l) => l.msg.startsWith('delivery pump works again')), 5000, 'the pump works again');
      const failed = lines.filter((l) => l.msg === 'delivery pump failed');
      assert.equal(failed.length, 1, `${failed.length} lines for ${failures} failed pumps`);
      assert.equal(failed[0]!.level, 50, 'at error');
      assert.ok(lines.find((l) => l.msg.startsWith('delivery pump works again'))!.failures! >= 3);
    } finally {
      deliveries.nextDue = nextDue;
      await h.stop();
      await r.stop();
    }
  });
});

describe('SSRF guard at registration', () => {
  it('refuses loopback, private and metadata URLs unless allowed', async () => {
    const h = await startTestServer({ delivery: { httpsOnly: false } });
    try {
      for (const url of ['http://127.0.0.1:9/hook', 'http://localhost/hook', 'http://169.254.169.254/latest/meta-data', 'http://10.0.0.1/', 'http://[::1]/', 'http://192.168.1.10/x', 'file:///etc/passwd']) {
        const res = await h.call('POST', '/v1/endpoints', { body: { url, channels: ['*'] } });
        assert.deepEqual([res.status, res.body.error?.code], [422, 'unprocessable'], `${url} answered ${res.status}`);
      }
      assert.equal((await h.call('GET', '/v1/endpoints')).body.endpoints.length, 0, 'nothing refused was registered');
    } finally {
      await h.stop();
    }
    const strict = await startTestServer({ delivery: { httpsOnly: true, allowPrivateNetworks: ['127.0.0.0/8'] } });
    try {
      const res = await strict.call('POST', '/v1/endpoints', { body: { url: 'http://127.0.0.1:9/hook', channels: ['*'] } });
      assert.equal(res.status, 422);
      assert.match(res.body.error.message, /https/);
    } finally {
      await strict.stop();
    }
  });
});

describe('outbound webhooks and kill -9', () => {
  it('delivers every event to every endpoint at least once after a crash mid-delivery', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-deliver-kill-'));
    // Slow receivers, so the crash catches deliveries in flight.
    const receivers = await Promise.all(
      [1, 2].map(() => new HookReceiver((_hook, _i, res) => setTimeout(() => res.writeHead(200).end(), 100)).start()),
    );
    const env = { HERALD_DELIVERY_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8', HERALD_DELIVERY_RETRY_SCHEDULE: '0.2,0.2,0.2' };
    const admin = { authorization: `Bearer ${CLI_ADMIN_KEY}`, 'content-type': 'application/json' };
    try {
      const first = await spawnHerald(['serve', '--port', '0', '--data', dir, '--log-level', 'warn'], env);
      for (const r of receivers) {
        const res = await fetch(`${first.url}/v1/endpoints`, { method: 'POST', headers: admin, body: JSON.stringify({ url: r.url, channels: ['crash'], maxConcurrency: 2 }) });
        assert.equal(res.status, 201);
      }
      const published: string[] = [];
      for (let i = 0; i < 40; i++) {
        const res = await fetch(`${first.url}/v1/channels/crash/events`, { method: 'POST', headers: admin, body: JSON.stringify({ data: i }) });
        published.push(((await res.json()) as { id: string }).id);
      }
      await until(() => receivers.every((r) => r.hooks.length >= 3), 5000);
      first.child.kill('SIGKILL');
      await first.exited;
      assert.ok(receivers.some((r) => r.eventIds().size < 40), 'the crash came mid-delivery');

      const second = await spawnHerald(['serve', '--port', '0', '--data', dir, '--log-level', 'warn'], env);
      try {
        await until(() => receivers.every((r) => published.every((id) => r.eventIds().has(id))), 20_000, 'every event at every endpoint');
      } finally {
        second.child.kill('SIGTERM');
        await second.exited;
      }
    } finally {
      for (const r of receivers) await r.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('outbound webhooks over more channels than the dispatcher keeps in memory', () => {
  it('delivers every event of every channel while at most delivery.cursorCache cursors stay in memory', async () => {
    const h = await startTestServer({ delivery: { ...LOOPBACK, cursorCache: 2 } });
    const r = await new HookReceiver().start();
    try {
      const res = await h.call('POST', '/v1/endpoints', { body: { url: r.url, channels: ['many:*'] } });
      assert.equal(res.status, 201);
      const dispatcher = () => (h.delivery as unknown as { dispatcher: { cachedCursors: number } }).dispatcher;
      const channels = Array.from({ length: 12 }, (_, i) => `many:${i}`);
      const round = async () => {
        for (const channel of channels) assert.equal((await h.call('POST', `/v1/channels/${channel}/events`, { body: { data: 1 } })).status, 201);
      };
      await round();
      // The dispatcher saves moved cursors each second and evicts saved ones at the next tick.
      await until(() => dispatcher().cachedCursors <= 2, 5000);
      // Evicted channels written again: their cursors come back from the store, and their events are delivered.
      await round();
      await until(() => r.hooks.length >= 24, 5000);
      await until(() => dispatcher().cachedCursors <= 2, 5000);
      const got = r.hooks.map((hook) => `${hook.event.channel}/${hook.event.seq}`).sort();
      assert.deepEqual(got, channels.flatMap((c) => [`${c}/1`, `${c}/2`]).sort(), 'each event once');
    } finally {
      await h.stop();
      await r.stop();
    }
  });
});

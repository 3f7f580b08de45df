import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { SignJWT } from 'jose';
import { loadConfig } from '../src/config/load.js';
import { eventually, startTestServer, type TestServer } from './helpers.js';
import { HookReceiver } from './support/receiver.js';

/**
 * A hostile tenant against the endpoint portal's API, through a real server: each test is an attack that
 * once worked, and fails if it works again (the README's Endpoint portal section states the rules).
 */

const TOKEN_SECRET = 'portal-attacks-token-secret-0123456789abcdef';
/** A receiver address tenants may use (portal.allowPrivateNetworks below); nothing is ever delivered there. */
const PUBLIC = 'http://127.0.0.2:9/hook';

interface Session {
  token: string;
  allowedChannels: string[];
}

async function openSession(h: TestServer, body: Record<string, unknown>): Promise<Session> {
  const res = await h.call('POST', '/v1/portal/sessions', { body });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body as Session;
}

describe('portal attacks: tenant names', () => {
  let h: TestServer;
  before(async () => {
    h = await startTestServer({ tokenSecret: TOKEN_SECRET });
  });
  after(async () => h?.stop());

  it("refuses tenant names with ':', so one tenant's default channels ({tenant}:*) never cover another's", async () => {
    // Tenant `acme` gets `acme:*`, which covered every channel of a tenant `acme:eu` (`acme:eu:*`): its endpoints
    // received acme:eu's events and its event-type picker listed acme:eu's types.
    const nested = await h.call('POST', '/v1/portal/sessions', { body: { tenant: 'acme:eu' } });
    assert.equal(nested.status, 400, JSON.stringify(nested.body));
    const tagged = await h.call('POST', '/v1/endpoints', { body: { url: PUBLIC, channels: ['acme:eu:orders'], tenant: 'acme:eu' } });
    assert.equal(tagged.status, 400, 'the admin cannot tag an endpoint with such a tenant either');
    const offline = await new SignJWT({ portal: { tenant: 'acme:eu', channels: ['acme:eu:*'] } })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('portal:acme:eu')
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(TOKEN_SECRET));
    assert.equal((await h.call('GET', '/v1/endpoints', { token: offline })).status, 401, 'nor can a token minted offline name one');
    for (const tenant of ['acme', 'acme.eu', 'org_42', 'cus-EU-1']) {
      assert.equal((await h.call('POST', '/v1/portal/sessions', { body: { tenant } })).status, 201, tenant);
    }
  });

  it('refuses a portal.channels template where {tenant} is not followed by ":" or the end of the pattern', () => {
    const load = (channels: string[]) => loadConfig({ env: {}, cwd: tmpdir(), flags: { portal: { channels } } });
    // `{tenant}*` for tenant `acme` is `acme*`, which covers `acmecorp:orders`; `{tenant}.*` covers tenant `acme.eu`'s.
    for (const channels of [['{tenant}*'], ['{tenant}.*'], ['{tenant}-*'], ['tenants:{tenant}*']]) {
      assert.throws(() => load(channels), /portal/, JSON.stringify(channels));
    }
    for (const channels of [['{tenant}:*'], ['tenants:{tenant}:*', '{tenant}'], ['t.{tenant}:orders']]) {
      assert.deepEqual(load(channels).portal.channels, channels);
    }
  });
});

describe('portal attacks: what a tenant may reach and how much it may use', () => {
  let h: TestServer;
  let receiver: HookReceiver;
  /** An "internal service" on loopback that answers with something a tenant must not read. */
  let internal: Server;
  let internalUrl: string;
  let acme: Session;

  before(async () => {
    internal = createServer((_req, res) => res.writeHead(500, { 'content-type': 'text/plain' }).end('internal-secret-config'));
    await new Promise<void>((resolve) => internal.listen(0, '127.0.0.1', resolve));
    internalUrl = `http://127.0.0.1:${(internal.address() as AddressInfo).port}/admin`;
    // The platform lets its own (admin) endpoints reach loopback, as a platform with internal receivers does.
    h = await startTestServer({
      tokenSecret: TOKEN_SECRET,
      delivery: { allowPrivateNetworks: ['127.0.0.0/8'], retrySchedule: [], timeout: 2 },
      // …and its tenants' endpoints one address of it, which stands for "the internet" here (no test leaves the machine).
      portal: { maxEndpoints: 3, allowPrivateNetworks: ['127.0.0.2/32'] },
    });
    receiver = await new HookReceiver().start();
    acme = await openSession(h, { tenant: 'acme' });
  });
  after(async () => {
    await h?.stop();
    await receiver?.stop();
    internal?.closeAllConnections();
    await new Promise((resolve) => internal?.close(resolve));
  });

  const as = (s: Session) => ({ token: s.token });

  it("does not extend delivery.allowPrivateNetworks to portal sessions: a tenant cannot point an endpoint at the platform's network", async () => {
    // Before: the tenant's endpoint reached the internal service, and its delivery log showed the answer's body.
    const created = await h.call('POST', '/v1/endpoints', { ...as(acme), body: { url: internalUrl, channels: ['acme:orders'] } });
    assert.equal(created.status, 422, JSON.stringify(created.body));
    assert.match(created.body.error.message, /portal\.allowPrivateNetworks/);
    for (const url of ['http://0x7f.0.0.1/', 'http://2130706433/', 'http://127.1/', 'http://[::ffff:127.0.0.1]/', 'http://localhost/', 'http://0/']) {
      const res = await h.call('POST', '/v1/endpoints', { ...as(acme), body: { url, channels: ['acme:orders'] } });
      assert.equal(res.status, 422, `${url}: ${JSON.stringify(res.body)}`);
    }
    // No oracle of the platform's names: one that resolves inward and one that does not resolve read the same, and
    // the answer names no address. Before, "Refused http://localhost: 127.0.0.1 is a private…" or "Cannot resolve …".
    const answers = [];
    for (const host of ['localhost', 'no-such-host.invalid']) {
      const res = await h.call('POST', '/v1/endpoints', { ...as(acme), body: { url: `http://${host}/hook`, channels: ['acme:orders'] } });
      assert.equal(res.status, 422);
      assert.doesNotMatch(res.body.error.message, /127\.0\.0\.1|::1|resolve [a-z]/);
      answers.push(res.body.error.message.replace(host, 'HOST'));
    }
    assert.equal(answers[0], answers[1]);
    const adminTold = await h.call('POST', '/v1/endpoints', { body: { url: 'http://no-such-host.invalid/hook', channels: ['ops'] } });
    assert.match(adminTold.body.error.message, /Cannot resolve no-such-host\.invalid/, 'the admin is still told what is wrong');

    const own = await h.call('POST', '/v1/endpoints', { ...as(acme), body: { url: PUBLIC, channels: ['acme:orders'] } });
    assert.equal(own.status, 201, JSON.stringify(own.body));
    const moved = await h.call('PATCH', `/v1/endpoints/${own.body.id}`, { ...as(acme), body: { url: internalUrl } });
    assert.equal(moved.status, 422, 'nor move one there');
    assert.equal((await h.call('GET', `/v1/endpoints/${own.body.id}`)).body.url, PUBLIC);

    const admin = await h.call('POST', '/v1/endpoints', { body: { url: internalUrl, channels: ['ops'] } });
    assert.equal(admin.status, 201, 'the admin still may');
    await h.call('DELETE', `/v1/endpoints/${own.body.id}`);
    await h.call('DELETE', `/v1/endpoints/${admin.body.id}`);
  });

  it("checks a tenant's endpoints against portal.allowPrivateNetworks at delivery time too (DNS rebinding, admin-made tenant endpoints)", async () => {
    // A name that resolved outward when registered and inward later, or an endpoint the admin tagged with a tenant:
    // at connection time the tenant's rules still apply, since the tenant reads every attempt's response snippet.
    const port = new URL(internalUrl).port;
    const ids: string[] = [];
    for (const url of [`http://localhost:${port}/admin`, internalUrl]) {
      const res = await h.call('POST', '/v1/endpoints', { body: { url, channels: ['acme:rebind'], tenant: 'acme' } });
      assert.equal(res.status, 201, `the admin may register ${url}: ${JSON.stringify(res.body)}`);
      ids.push(res.body.id);
    }
    const platformOwn = await h.call('POST', '/v1/endpoints', { body: { url: `http://localhost:${port}/admin`, channels: ['acme:rebind'] } });
    assert.equal(platformOwn.status, 201);
    assert.equal((await h.call('POST', '/v1/channels/acme:rebind/events', { body: { data: { n: 1 } } })).status, 201);
    const attemptOf = (id: string) =>
      eventually(async () => {
        const [delivery] = (await h.call('GET', `/v1/endpoints/${id}/deliveries`)).body.deliveries;
        assert.ok(delivery?.attempts > 0, `a delivery to ${id} was attempted`);
        return (await h.call('GET', `/v1/deliveries/${delivery.id}/attempts`)).body.attempts[0];
      }, 10_000);
    try {
      for (const id of ids) {
        const attempt = await attemptOf(id);
        assert.equal(attempt.statusCode, undefined, JSON.stringify(attempt));
        assert.match(attempt.error, /SSRF guard|private|loopback/i);
        assert.ok(!String(attempt.responseBody ?? '').includes('internal-secret-config'), 'the internal answer never reaches the tenant');
      }
      const platform = await attemptOf(platformOwn.body.id);
      assert.equal(platform.statusCode, 500, "the platform's own endpoint still reaches its network");
    } finally {
      for (const id of [...ids, platformOwn.body.id]) await h.call('DELETE', `/v1/endpoints/${id}`);
    }
  });

  it("cannot re-point or re-key an endpoint the admin made for its tenant with channels wider than the session's", async () => {
    const wide = await h.call('POST', '/v1/endpoints', { body: { url: PUBLIC, channels: ['*'], tenant: 'acme' } });
    assert.equal(wide.status, 201, JSON.stringify(wide.body));
    try {
      for (const body of [{ url: 'http://127.0.0.2:9/elsewhere' }, { enabled: false }, { description: 'mine now' }]) {
        const res = await h.call('PATCH', `/v1/endpoints/${wide.body.id}`, { ...as(acme), body });
        assert.equal(res.status, 403, `${JSON.stringify(body)}: ${JSON.stringify(res.body)}`);
      }
      assert.equal((await h.call('POST', `/v1/endpoints/${wide.body.id}/rotate-secret`, { ...as(acme), body: {} })).status, 403);
      // Narrowed into the session and re-pointed (at once or in turn), it sent what it still owed on the wider
      // channels (another tenant's events) to the session's URL.
      for (const body of [{ channels: ['acme:orders'], url: 'http://127.0.0.2:9/elsewhere' }, { channels: ['acme:orders'] }]) {
        const res = await h.call('PATCH', `/v1/endpoints/${wide.body.id}`, { ...as(acme), body });
        assert.equal(res.status, 403, `${JSON.stringify(body)}: ${JSON.stringify(res.body)}`);
      }
      // A test event signed with its secret, on another tenant's channel, would reach the platform's receiver as real.
      const forged = await h.call('POST', `/v1/endpoints/${wide.body.id}/test`, { ...as(acme), body: { channel: 'globex:orders', type: 'order.paid' } });
      assert.equal(forged.status, 403, JSON.stringify(forged.body));
      const endpointNow = (await h.call('GET', `/v1/endpoints/${wide.body.id}`)).body;
      assert.deepEqual([endpointNow.url, endpointNow.channels], [PUBLIC, ['*']], 'unchanged');
      assert.equal((await h.call('POST', `/v1/endpoints/${wide.body.id}/test`, { body: { channel: 'globex:orders' } })).status, 202, 'the admin still may');
      // Once the admin narrows it into the session, the session may re-point it, but not send again what it owed
      // on the wider channels.
      assert.equal((await h.call('POST', '/v1/channels/globex:orders/events', { body: { data: { card: 'globex' } } })).status, 201);
      const failed = await eventually(async () => {
        const list = (await h.call('GET', `/v1/endpoints/${wide.body.id}/deliveries?status=failed`)).body.deliveries;
        const found = list.find((d: { channel: string; seq: number }) => d.channel === 'globex:orders' && d.seq > 0);
        assert.ok(found, 'the globex delivery failed');
        return found;
      }, 10_000);
      assert.equal((await h.call('PATCH', `/v1/endpoints/${wide.body.id}`, { body: { channels: ['acme:orders'] } })).status, 200);
      assert.equal((await h.call('PATCH', `/v1/endpoints/${wide.body.id}`, { ...as(acme), body: { url: 'http://127.0.0.2:9/mine' } })).status, 200);
      const retried = await h.call('POST', `/v1/deliveries/${failed.id}/retry`, { ...as(acme) });
      assert.equal(retried.status, 403, JSON.stringify(retried.body));
      // Nor in bulk: a recover of the whole window leaves it failed, for the session and for the admin alike, as the
      // endpoint no longer covers that channel (before, the session's recover sent it to its own URL).
      const window = { since: new Date(0).toISOString() };
      for (const caller of [as(acme), {}]) {
        const recovered = await h.call('POST', `/v1/endpoints/${wide.body.id}/recover`, { ...caller, body: window });
        assert.deepEqual([recovered.status, recovered.body], [202, { recovered: 0 }]);
      }
      assert.equal((await h.call('GET', `/v1/deliveries/${failed.id}`)).body.status, 'failed');
    } finally {
      await h.call('DELETE', `/v1/endpoints/${wide.body.id}`);
    }
  });

  it('caps the endpoints of one tenant at portal.maxEndpoints: no unbounded fan-out from one session', async () => {
    // Before: a session could create endpoints without end, each receiving every event of its channels (a
    // fan-out it could aim at any host) and each held in every node's memory.
    const create = () => h.call('POST', '/v1/endpoints', { ...as(acme), body: { url: PUBLIC, channels: ['acme:orders'] } });
    // Sent at once. Against a server in its own process each used to pass the count before any was inserted (400 at
    // once made 401 against 100); in this process the requests do not interleave so, and the store's conformance
    // suite races the inserts themselves (cluster-delivery.e2e.test.ts races them over two nodes).
    const burst = await Promise.all(Array.from({ length: 20 }, () => create()));
    assert.deepEqual(
      burst.map((res) => res.status).sort(),
      [201, 201, 201, ...Array.from({ length: 17 }, () => 403)],
    );
    const ids: string[] = burst.filter((res) => res.status === 201).map((res) => res.body.id);
    const fourth = await create();
    assert.equal(fourth.status, 403, JSON.stringify(fourth.body));
    assert.match(fourth.body.error.message, /portal\.maxEndpoints|at most 3/);
    assert.equal((await h.call('POST', '/v1/endpoints', { body: { url: PUBLIC, channels: ['acme:orders'], tenant: 'acme' } })).status, 201, 'the admin is not capped');
    await h.call('DELETE', `/v1/endpoints/${ids[0]}`);
    assert.equal((await create()).status, 403, "the admin's endpoint for the tenant counts too");
    for (const id of (await h.call('GET', '/v1/endpoints?tenant=acme')).body.endpoints.map((e: { id: string }) => e.id)) {
      await h.call('DELETE', `/v1/endpoints/${id}`);
    }
    assert.equal((await create()).status, 201, 'deleting makes room');
  });

  it('limits test events from a portal session, in count and size: a tenant cannot fill the delivery store', async () => {
    // Before: every `POST …/test` wrote a delivery of up to limits.bodyBytes (1 MiB), as fast as the tenant could call.
    const session = await openSession(h, { tenant: 'tester' });
    const endpoint = await h.call('POST', '/v1/endpoints', { body: { url: receiver.url, channels: ['tester:orders'], tenant: 'tester' } });
    assert.equal(endpoint.status, 201, JSON.stringify(endpoint.body));
    const test = (data?: unknown) => h.call('POST', `/v1/endpoints/${endpoint.body.id}/test`, { ...as(session), body: data === undefined ? {} : { data } });

    const big = await test({ blob: 'x'.repeat(64 * 1024) });
    assert.equal(big.status, 413, JSON.stringify(big.body));
    assert.equal(big.body.error.code, 'payload_too_large');

    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) statuses.push((await test()).status);
    const accepted = statuses.filter((s) => s === 202).length;
    assert.equal(accepted, 30, 'at most 30 a minute per tenant');
    const refused = await test();
    assert.equal(refused.status, 429, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, 'too_many_requests');
    assert.ok(Number(refused.headers.get('retry-after')) > 0, 'with a Retry-After');

    const admin = await h.call('POST', `/v1/endpoints/${endpoint.body.id}/test`, { body: { data: { blob: 'x'.repeat(64 * 1024) } } });
    assert.equal(admin.status, 202, 'the admin is not limited');
    const other = await openSession(h, { tenant: 'bystander' });
    const hers = await h.call('POST', '/v1/endpoints', { body: { url: receiver.url, channels: ['bystander:orders'], tenant: 'bystander' } });
    assert.equal((await h.call('POST', `/v1/endpoints/${hers.body.id}/test`, { ...as(other), body: {} })).status, 202, 'another tenant is not limited by this one');
  });
});

describe('portal attacks: framing', () => {
  let h: TestServer;
  before(async () => {
    h = await startTestServer();
  });
  after(async () => h?.stop());

  it('serves the HTML of /portal and /console nowhere without their frame-ancestors and CSP (not /ui/…/index.html)', async () => {
    for (const path of ['/ui/portal/index.html', '/ui/console/index.html', '/ui/console/INDEX.HTM', '/ui/portal/index.html?x=1']) {
      const res = await fetch(h.url + path);
      await res.arrayBuffer();
      assert.equal(res.status, 404, `${path} is served without the page headers (clickjacking, no CSP)`);
    }
    for (const path of ['/portal', '/console']) {
      const res = await fetch(h.url + path);
      await res.arrayBuffer();
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-security-policy') ?? '', /frame-ancestors/, `${path} has its framing rule`);
    }
  });
});

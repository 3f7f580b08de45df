import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './helpers.js';
import { installBlockingDns, type BlockingDns } from './support/blocking-dns.js';

/**
 * Endpoint hosts are resolved with getaddrinfo() on libuv's thread pool, where a durable publish's WAL sync runs
 * too. A portal tenant that named hosts whose DNS never answers once held every thread of the pool: publishes and
 * inbound webhooks waited for its DNS (found by a review; delivery/lookup-gate.ts is the fix). Here the DNS of
 * `*.slow.test` holds a pool thread until the test lets it go.
 */

const TOKEN_SECRET = 'dns-stall-token-secret-0123456789abcdef';
/** Longer than any answer here should take; a publish still waiting then is waiting for the tenant's DNS. */
const STALLED_MS = 15_000;

function withinStall<T>(what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const stalled = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} waited for the tenant's DNS`)), STALLED_MS);
  });
  return Promise.race([promise, stalled]).finally(() => clearTimeout(timer));
}

describe("a tenant's slow DNS", () => {
  let h: TestServer;
  let dns: BlockingDns;
  before(async () => {
    dns = installBlockingDns();
    h = await startTestServer({ tokenSecret: TOKEN_SECRET, delivery: { allowPrivateNetworks: ['127.0.0.0/8'] } });
  });
  after(async () => {
    dns?.restore();
    await h?.stop();
  });

  it('holds at most one thread of the pool: publishes and the admin\'s endpoint checks go on while it hangs', async () => {
    const session = await h.call('POST', '/v1/portal/sessions', { body: { tenant: 'mallory' } });
    assert.equal(session.status, 201, JSON.stringify(session.body));
    const token = session.body.token as string;
    // An address literal: no lookup.
    const own = await h.call('POST', '/v1/endpoints', { body: { url: 'https://93.184.215.14/x', channels: ['mallory:*'] }, token });
    assert.equal(own.status, 201, JSON.stringify(own.body));
    // Twice the pool's threads of lookups that never answer, none awaited.
    const patches = Array.from({ length: 8 }, (_, i) =>
      h.call('PATCH', `/v1/endpoints/${own.body.id as string}`, { body: { url: `https://x${i}.slow.test/` }, token }),
    );
    while (dns.asked === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    // Time for the other PATCHes to reach the server (and, were nothing in the way, every thread of the pool).
    await new Promise((resolve) => setTimeout(resolve, 500));

    const published = await withinStall('a publish', h.call('POST', '/v1/channels/orders/events', { body: { data: { n: 1 } } }));
    assert.equal(published.status, 201, JSON.stringify(published.body));
    // The admin's own lookups have slots the tenant's cannot take ("localhost" goes to the real resolver).
    const registered = await withinStall('an admin registration', h.call('POST', '/v1/endpoints', { body: { url: 'http://localhost:9/platform', channels: ['orders'] } }));
    assert.equal(registered.status, 201, JSON.stringify(registered.body));
    assert.equal(dns.asked, 1, "one of the tenant's lookups at a time reaches the resolver; the others wait their turn");
    assert.equal(dns.held, 1);

    dns.releaseAll();
    for (const patch of await Promise.all(patches)) {
      assert.equal(patch.status, 422, JSON.stringify(patch.body));
      assert.match(patch.body.error.message, /^Refused https:\/\/x\d\.slow\.test: a portal endpoint's host must resolve/);
    }
  });
});

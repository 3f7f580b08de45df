import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rawConnection, sleep, suiteServers, until } from './helpers.js';

const MiB = 1024 * 1024;

/** Headers and most of a body that claims `length` bytes, then nothing: the connection holds what it sent. */
async function stalledBody(url: string, path: string, length: number, headers = '') {
  const connection = await rawConnection(url);
  connection.socket.write(`POST ${path} HTTP/1.1\r\nHost: herald\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n${headers}\r\n`);
  connection.socket.write(Buffer.alloc(length - 100, 0x20));
  return connection;
}

describe('limits.incomingBodyBytes', () => {
  const { start } = suiteServers({ limits: { incomingBodyBytes: 3 * MiB, bodyBytes: MiB } });

  it('answers 503 too_many_bodies, unread, while bodies already arriving hold the bound, and lets bodies in again as they go', async () => {
    const h = await start();
    assert.equal((await h.call('POST', '/v1/sources', { body: { name: 'open', provider: 'stripe', secrets: ['whsec_open_0123456789abcdef0123'] } })).status, 201);
    // Inbound webhooks need no credential: before, each of these held its megabyte until limits.requestTimeout.
    const stalled = [];
    for (let i = 0; i < 3; i++) stalled.push(await stalledBody(h.url, '/v1/ingest/open', MiB));
    await sleep(200);
    const refused = await fetch(`${h.url}/v1/ingest/open`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"id":"evt_1"}' });
    assert.equal(refused.status, 503);
    const retryAfter = Number(refused.headers.get('retry-after'));
    assert.ok(retryAfter >= 1 && retryAfter <= 5, `Retry-After ${retryAfter}`);
    const body = (await refused.json()) as { error: { code: string; details?: { reason?: string } } };
    assert.equal(body.error.code, 'unavailable');
    assert.equal(body.error.details?.reason, 'too_many_bodies');
    // Requests without a body are not counted.
    assert.equal((await fetch(`${h.url}/healthz`)).status, 200);

    // One stalled sender gives up: its megabyte is free again.
    stalled[0]!.socket.destroy();
    await until(async () => {
      const res = await fetch(`${h.url}/v1/ingest/open`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"id":"evt_2"}' });
      return res.status === 401; // read, and refused for its (missing) signature
    }, 5000, 'a body let in once one stalled sender left');
    for (const { socket } of stalled.slice(1)) socket.destroy();
  });

  it('counts a body only until it is answered: a keep-alive connection sends many times the bound, one after another', async () => {
    const h = await start({ limits: { incomingBodyBytes: 4096, bodyBytes: MiB } });
    const statuses = new Set<number>();
    for (let i = 0; i < 200; i++) statuses.add((await h.call('POST', '/v1/channels/kept/events', { body: { data: 'x'.repeat(1000) } })).status);
    assert.deepEqual([...statuses], [201]);
  });

  it('lets one body in when none is arriving, whatever the bound', async () => {
    const h = await start({ limits: { incomingBodyBytes: 1, bodyBytes: MiB } });
    const res = await h.call('POST', '/v1/channels/one/events', { body: { data: { n: 1 } } });
    assert.equal(res.status, 201);
  });

  it('refuses a batch publish from a credential that may publish nowhere before its body is read', async () => {
    const h = await start();
    const token = await h.call('POST', '/v1/tokens', { body: { sub: 'reader', channels: ['news:*'] } });
    assert.equal(token.status, 201);
    // The body never comes: the answer must not wait for it (Node then discards what arrives, holding none of it).
    const { socket, received } = await stalledBody(h.url, '/v1/events', MiB, `Authorization: Bearer ${token.body.token}\r\n`);
    await until(() => received().includes('\r\n\r\n{'), 5000, 'an answer before the body is complete');
    socket.destroy();
    assert.match(received(), /^HTTP\/1\.1 403 /);
    assert.match(received(), /may not publish to any channel/);
  });
});

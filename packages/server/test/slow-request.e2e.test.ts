import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { ADMIN_KEY, rawConnection, sleep, suiteServers } from './helpers.js';

describe('limits.requestTimeout', () => {
  const { start } = suiteServers({ limits: { requestTimeout: 1 } });

  it('answers 408 and closes a connection whose body does not arrive in time, before anything is authenticated', async () => {
    const h = await start();
    const created = await h.call('POST', '/v1/sources', { body: { name: 'slow', provider: 'stripe', secrets: ['whsec_slow_0123456789abcdef0123'], channel: 'in:slow' } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const { socket, received } = await rawConnection(h.url);
    // A source's body is read in full before its signature can be checked.
    socket.write('POST /v1/ingest/slow HTTP/1.1\r\nHost: herald\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"a":');
    const closed = once(socket, 'close').then(() => 'closed');
    const outcome = await Promise.race([closed, sleep(10_000).then(() => 'still open after 10 s')]);
    assert.equal(outcome, 'closed');
    assert.match(received(), /^HTTP\/1\.1 408 /);
  });

  it('answers a request refused before its body arrived once, and closes the connection: no 408 after the 401', async () => {
    const h = await start();
    const { socket, received } = await rawConnection(h.url);
    // No credential: refused before the body is read; the rest of the body never comes.
    socket.write('POST /v1/channels/x/events HTTP/1.1\r\nHost: herald\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"data":');
    const closed = once(socket, 'close').then(() => 'closed');
    const outcome = await Promise.race([closed, sleep(5000).then(() => 'still open after 5 s')]);
    assert.equal(outcome, 'closed');
    // One answer to one request: the 401, not then also the 408 of limits.requestTimeout for the body that never came.
    assert.deepEqual(received().match(/^HTTP\/1\.1 \d+/gm), ['HTTP/1.1 401']);
    assert.match(received(), /\r\nconnection: close\r\n/i);
  });

  it('ends a slow request within a second past the limit, at the default 30 s too (Node alone checks every 30 s)', async () => {
    const h = await start({ limits: { requestTimeout: 2 } });
    const { socket, received } = await rawConnection(h.url);
    const started = Date.now();
    // Headers that never end: a slowloris.
    socket.write('GET /healthz HTTP/1.1\r\nHost: herald\r\nX-Slow: ');
    const trickle = setInterval(() => socket.write('a'), 200);
    try {
      await Promise.race([once(socket, 'close'), sleep(10_000)]);
    } finally {
      clearInterval(trickle);
    }
    const took = Date.now() - started;
    assert.match(received(), /^HTTP\/1\.1 408 /);
    assert.ok(took >= 1900 && took < 2000 + 1000 + 500, `ended after ${took} ms`);
    // The interval behind that bound, for the default limit: a second, not the 15 s that let 30 s run to 45.
    const byDefault = await start({ limits: { requestTimeout: 30 } });
    assert.equal((byDefault.app.server as unknown as { connectionsCheckingInterval: number }).connectionsCheckingInterval, 1000);
  });

  it('leaves streams and long polls open past it: their requests arrive at once', async () => {
    const h = await start({ limits: { requestTimeout: 1, pollWaitMax: 10 } });
    const poll = h.call('GET', '/v1/channels/slow/events?wait=8');
    const controller = new AbortController();
    const res = await fetch(`${h.url}/v1/channels/slow/stream?token=${ADMIN_KEY}`, { signal: controller.signal });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    await sleep(2500);
    await h.call('POST', '/v1/channels/slow/events', { body: { data: 'late' } });
    let text = '';
    while (!text.includes('"late"')) {
      const { value, done } = await reader.read();
      assert.equal(done, false, 'the stream ended');
      text += Buffer.from(value!).toString();
    }
    controller.abort();
    const polled = await poll;
    assert.equal(polled.status, 200);
    assert.deepEqual(
      polled.body.events.map((e: { data: unknown }) => e.data),
      ['late'],
    );
  });
});

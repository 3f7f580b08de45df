// Fan-out as the transports write it (issue 15): frames encoded once and written to every socket, the writes of
// one tick coalesced per socket. These check that what arrives is still exact: every subscriber, every event,
// in order, once, at every frame length, with SSE's chunked and HTTP/1.0 bodies.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tcpConnect } from 'node:net';
import { WsTestClient as Client } from './ws-client.js';
import { readStream } from './sse-client.js';
import { ADMIN_KEY, startTestServer, suiteServers, type TestServer, until } from './helpers.js';

/** The `data:` JSON of each complete SSE event in `text`, in order. */
const sseEvents = (text: string) =>
  text
    .split('\n\n')
    .slice(0, -1)
    .map((block) => block.split('\n').find((line) => line.startsWith('data: ')))
    .filter((line): line is string => line !== undefined)
    .map((line) => JSON.parse(line.slice(6)) as { seq: number; data: unknown });

describe('fan-out', () => {
  const { start, track } = suiteServers();
  const subscriber = async (h: TestServer, channel: string) => {
    const c = new Client(`${h.url.replace('http', 'ws')}/v1/ws?token=${ADMIN_KEY}`);
    track(c);
    await c.opened;
    c.send({ op: 'subscribe', channel });
    await c.next('subscribed');
    return c;
  };

  it('events committed together reach every WebSocket and SSE subscriber in order, once each', async () => {
    const h = await start();
    const sockets = await Promise.all([1, 2, 3].map(() => subscriber(h, 'burst')));
    const count = 60;
    const streams = [1, 2].map(() =>
      readStream(`${h.url}/v1/channels/burst/stream?token=${ADMIN_KEY}`, {}, (text) => sseEvents(text).length >= count, 10_000),
    );
    // Both streams are open (their retry line arrived) before anything is published.
    await until(() => h.sse.size === 2);
    // Published at once, so group commits hand the transports many events in one tick.
    const published = await Promise.all(
      Array.from({ length: count }, (_, i) => h.call('POST', '/v1/channels/burst/events', { body: { data: { i } } })),
    );
    assert.ok(published.every((r) => r.status === 201));
    const want = Array.from({ length: count }, (_, i) => i + 1);
    for (const c of sockets) {
      await c.next('event', count, 10_000);
      assert.deepEqual(c.ops('event').map((e) => e.seq), want);
    }
    for (const stream of await Promise.all(streams)) assert.deepEqual(sseEvents(stream.text).map((e) => e.seq), want);
  });

  it('frames of every length class arrive intact over WebSocket and SSE', async () => {
    const h = await start();
    // Payloads under 126 bytes, under 64 KiB and over it: the three WebSocket length encodings.
    const sizes = [1, 300, 70_000];
    const ws = await subscriber(h, 'sizes');
    const sse = readStream(`${h.url}/v1/channels/sizes/stream?token=${ADMIN_KEY}`, {}, (text) => sseEvents(text).length >= sizes.length, 10_000);
    await until(() => h.sse.size === 1);
    for (const size of sizes) assert.equal((await h.call('POST', '/v1/channels/sizes/events', { body: { data: 'x'.repeat(size) } })).status, 201);
    const events = await ws.next('event', sizes.length);
    assert.deepEqual(events.map((e) => (e.data as string).length), sizes);
    assert.deepEqual(sseEvents((await sse).text).map((e) => (e.data as string).length), sizes);
  });

  it('an HTTP/1.0 SSE request gets an unchunked body', async () => {
    const h = await start();
    const { port } = new URL(h.url);
    const socket = tcpConnect(Number(port), '127.0.0.1');
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('utf8')));
    socket.write(`GET /v1/channels/old/stream?token=${ADMIN_KEY} HTTP/1.0\r\nAccept: text/event-stream\r\n\r\n`);
    await until(() => h.sse.size === 1);
    await h.call('POST', '/v1/channels/old/events', { body: { data: 'hello' } });
    await until(() => received.includes('"data":"hello"'));
    socket.destroy();
    const [head, body] = received.split('\r\n\r\n');
    assert.match(head!, /^HTTP\/1\.1 200/);
    assert.doesNotMatch(head!, /transfer-encoding/i);
    assert.ok(body!.startsWith('retry: '), `the body starts with the retry line, no chunk size: ${JSON.stringify(body!.slice(0, 20))}`);
    assert.match(body!, /\nid: 1\ndata: \{/);
  });

  it('a client that leaves takes its stream or socket and its subscriptions with it', async () => {
    const h = await start();
    const listeners = () => (h.bus as unknown as { listenerCount(channel: string): number }).listenerCount('leave');
    const controller = new AbortController();
    const res = await fetch(`${h.url}/v1/channels/leave/stream?token=${ADMIN_KEY}`, { signal: controller.signal });
    assert.equal(res.status, 200);
    const ws = await subscriber(h, 'leave');
    // Each also hears the channel's ephemeral publishes until it goes.
    const ephemeral = () => h.presence.listenerCount('leave');
    await until(() => h.sse.size === 1 && listeners() === 2 && ephemeral() === 2);
    controller.abort();
    ws.ws.terminate();
    await until(() => h.sse.size === 0 && h.ws.size === 0 && listeners() === 0 && ephemeral() === 0);
  });

  it('drops an SSE client that stops reading at the send buffer bound, while the others keep receiving', async () => {
    const h = await start({ limits: { sendBufferBytes: 256 * 1024, bodyBytes: 4 * 1024 * 1024 } });
    const { port } = new URL(h.url);
    const slow = tcpConnect(Number(port), '127.0.0.1');
    let slowBytes = 0;
    let slowClosed = false;
    slow.on('data', (chunk: Buffer) => (slowBytes += chunk.length));
    slow.on('close', () => (slowClosed = true));
    slow.write(`GET /v1/channels/hose/stream?token=${ADMIN_KEY} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n`);
    await until(() => h.sse.size === 1 && slowBytes > 0);
    // Stop reading: the kernel buffers fill, then the server's send buffer.
    slow.pause();
    const batches = 20;
    const last = `"seq":${batches * 50},`;
    // Only the end of the text is looked at: checking all 8 MB after every chunk made this test quadratic (and
    // slow enough, with the server in the same process, to pass its deadline on a loaded machine).
    let tail = '';
    const fast = readStream(`${h.url}/v1/channels/hose/stream?token=${ADMIN_KEY}`, {}, (_text, chunk) => {
      tail = (tail + chunk).slice(-20_000);
      return tail.endsWith('\n\n') && tail.includes(last);
    }, 20_000);
    await until(() => h.sse.size === 2);
    const blob = 'x'.repeat(8 * 1024);
    for (let b = 0; b < batches; b++) {
      const events = Array.from({ length: 50 }, (_, i) => ({ channel: 'hose', data: { b, i, blob } }));
      assert.equal((await h.call('POST', '/v1/events', { body: { events } })).status, 201);
    }
    assert.deepEqual(sseEvents((await fast).text).map((e) => e.seq), Array.from({ length: batches * 50 }, (_, i) => i + 1));
    slow.resume();
    await until(() => slowClosed, 10_000, 'the slow client is dropped');
    assert.ok(slowBytes < batches * 50 * blob.length, 'the slow client was cut off before the end');
  });

  it('answers a publish with the JSON text its subscribers got, byte for byte, and any other publish in the same form', async () => {
    const h = await start();
    const ws = await subscriber(h, 'echo');
    const sse = readStream(`${h.url}/v1/channels/echo/stream?token=${ADMIN_KEY}`, {}, (text) => sseEvents(text).length >= 3, 10_000);
    await until(() => h.sse.size === 1);
    const post = async (path: string, body: unknown, token = ADMIN_KEY) => {
      const res = await fetch(h.url + path, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
    };
    const data = { note: 'quote " backslash \\ é 🦜', n: [1, 2.5, null] };
    const single = await post('/v1/channels/echo/events', { type: 'order.paid', data, meta: { source: 'test' } });
    const quiet = await post('/v1/channels/nobody/events', { type: 'order.paid', data, meta: { source: 'test' } });
    const batch = await post('/v1/events', { events: [{ channel: 'echo', data: { i: 2 } }, { channel: 'nobody', data: { i: 3 } }] });
    for (const answer of [single, quiet, batch]) {
      assert.equal(answer.status, 201);
      assert.equal(answer.type, 'application/json; charset=utf-8');
    }
    // A publish-only key may not read the channel: its duplicate is answered without the stored data, even though
    // the original was sent to subscribers.
    const writer = await h.createKey(['publish'], ['echo']);
    const mine = await post('/v1/events', { events: [{ channel: 'echo', id: 'order-1', data: { secret: 1 } }] }, writer);
    const again = await post('/v1/events', { events: [{ channel: 'echo', id: 'order-1', data: { secret: 2 } }] }, writer);
    assert.deepEqual([mine.status, again.status], [201, 201]);

    await ws.next('event', 3, 10_000);
    const streamed = (await sse).text;
    const answered = JSON.parse(single.text) as Record<string, unknown>;
    assert.ok(streamed.includes(`data: ${single.text}\n\n`), 'the text of the SSE frame, byte for byte');
    assert.deepEqual(answered, (({ op: _op, ...event }) => event)(ws.ops('event')[0]!));
    assert.deepEqual(Object.keys(JSON.parse(quiet.text) as object), Object.keys(answered), 'an event nobody got is answered with its keys in the same order');
    assert.deepEqual({ ...(JSON.parse(quiet.text) as object), id: answered.id, channel: 'echo', time: answered.time }, answered);
    const [echoed, unheard] = (JSON.parse(batch.text) as { events: Array<Record<string, unknown>> }).events;
    assert.ok(streamed.includes(`data: ${JSON.stringify(echoed)}\n\n`));
    assert.deepEqual([unheard!.channel, unheard!.seq, unheard!.data], ['nobody', 2, { i: 3 }]);
    assert.deepEqual((JSON.parse(mine.text) as { events: Array<Record<string, unknown>> }).events[0]!.data, { secret: 1 }, 'its own new event, whole');
    const duplicate = (JSON.parse(again.text) as { events: Array<Record<string, unknown>> }).events[0]!;
    assert.deepEqual([duplicate.id, duplicate.seq, 'data' in duplicate, 'meta' in duplicate], ['order-1', 3, false, false]);
  });

  it('an SSE stream ended by shutdown closes its chunked body after the close event', async () => {
    const h = await startTestServer();
    const stream = readStream(`${h.url}/v1/channels/bye/stream?token=${ADMIN_KEY}`, {}, () => false, 10_000);
    await until(() => h.sse.size === 1);
    await h.stop();
    const { text, ended } = await stream;
    assert.ok(ended, 'the body ended (fetch saw a valid end of the chunked body)');
    assert.match(text, /event: close\ndata: \{"reason":/);
  });
});

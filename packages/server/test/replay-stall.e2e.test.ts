import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { ADMIN_KEY, eventually, metricValue, suiteServers, type TestServer } from './helpers.js';

/** 32 MB of backlog: more than the kernel's socket buffers take, so the server's own buffer fills to half its bound. */
const EVENTS = 4000;
async function backlog(h: TestServer, channel: string, events = EVENTS): Promise<void> {
  const blob = 'x'.repeat(8 * 1024);
  for (let b = 0; b < events / 50; b++) {
    const events = Array.from({ length: 50 }, (_, i) => ({ channel, data: { b, i, blob } }));
    assert.equal((await h.call('POST', '/v1/events', { body: { events } })).status, 201);
  }
}

async function rawSocket(h: TestServer, request: string): Promise<Socket> {
  const socket = connect(Number(new URL(h.url).port), '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(request);
  await new Promise((resolve) => socket.once('data', resolve));
  return socket;
}

/** Slow consumers dropped so far: the metric is the process's, and these servers run in the test's process. */
const dropped = (h: TestServer, transport: 'sse' | 'ws') =>
  metricValue(h.url, ADMIN_KEY, `herald_slow_consumer_disconnects_total{transport="${transport}"}`).then((n) => n ?? 0);

describe('limits.replayStallTimeout', () => {
  // The default send buffer bound (4 MiB): a replay waits at half of it before each page (1 MiB), so a client that
  // reads nothing never passes the bound, and only the stall timeout drops it.
  const { start } = suiteServers({ limits: { bodyBytes: 4 * 1024 * 1024, replayStallTimeout: 1 } });

  it('drops an SSE client that reads nothing of its replay (before, it held the wait and its buffer forever)', async () => {
    const h = await start();
    await backlog(h, 'feed');
    const before = await dropped(h, 'sse');
    const socket = await rawSocket(h, `GET /v1/channels/feed/stream?after=0&token=${ADMIN_KEY} HTTP/1.1\r\nHost: x\r\n\r\n`);
    socket.pause();
    try {
      await eventually(async () => assert.equal(await dropped(h, 'sse'), before + 1), 15_000);
      await eventually(async () => assert.equal(await metricValue(h.url, ADMIN_KEY, 'herald_connections_open{transport="sse"}'), 0), 5000);
    } finally {
      socket.destroy();
    }
  });

  it('closes a WebSocket that reads nothing of its replays with 1013, once however many of its subscriptions stall', async () => {
    const h = await start();
    await backlog(h, 'feed-a', EVENTS / 2);
    await backlog(h, 'feed-b', EVENTS / 2);
    const before = await dropped(h, 'ws');
    const socket = await rawSocket(
      h,
      `GET /v1/ws?token=${ADMIN_KEY} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    const mask = Buffer.from([1, 2, 3, 4]);
    for (const channel of ['feed-a', 'feed-b']) {
      const payload = Buffer.from(JSON.stringify({ op: 'subscribe', channel, after: 0 }));
      socket.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!))]));
    }
    socket.pause();
    try {
      await eventually(async () => assert.equal(await dropped(h, 'ws'), before + 1), 15_000);
      // Both subscriptions' replays waited on the same socket: it is dropped, and counted, once.
      await new Promise((resolve) => setTimeout(resolve, 2000));
      assert.equal(await dropped(h, 'ws'), before + 1);
    } finally {
      socket.destroy();
    }
  });

  it('keeps a client that reads its whole replay', async () => {
    const h = await start();
    await backlog(h, 'feed');
    const before = await dropped(h, 'sse');
    const res = await fetch(`${h.url}/v1/channels/feed/stream?after=0&token=${ADMIN_KEY}`);
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes(`id: ${EVENTS}\n`)) {
      const { value } = await reader.read();
      text = text.slice(-64) + Buffer.from(value!).toString('latin1');
    }
    await reader.cancel();
    assert.equal(await dropped(h, 'sse'), before);
  });
});

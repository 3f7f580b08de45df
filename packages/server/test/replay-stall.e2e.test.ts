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

/** A WebSocket subscribed to `channels` from their start, which then reads nothing. */
async function wsReadingNothing(h: TestServer, channels: string[]): Promise<Socket> {
  const socket = await rawSocket(
    h,
    `GET /v1/ws?token=${ADMIN_KEY} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  );
  const mask = Buffer.from([1, 2, 3, 4]);
  for (const channel of channels) {
    const payload = Buffer.from(JSON.stringify({ op: 'subscribe', channel, after: 0 }));
    socket.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!))]));
  }
  socket.pause();
  return socket;
}

/** Reads an SSE stream of `channel` from its start up to the backlog's last event. */
async function readWholeReplay(h: TestServer, channel: string): Promise<void> {
  const res = await fetch(`${h.url}/v1/channels/${channel}/stream?after=0&token=${ADMIN_KEY}`);
  const reader = res.body!.getReader();
  let text = '';
  while (!text.includes(`id: ${EVENTS}\n`)) {
    const { value } = await reader.read();
    text = text.slice(-64) + Buffer.from(value!).toString('latin1');
  }
  await reader.cancel();
}

/** Slow consumers dropped so far: the metric is the process's, and these servers run in the test's process. */
const dropped = (h: TestServer, transport: 'sse' | 'ws' | 'long_poll') =>
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
    const socket = await wsReadingNothing(h, ['feed-a', 'feed-b']);
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
    await readWholeReplay(h, 'feed');
    assert.equal(await dropped(h, 'sse'), before);
  });
});

describe('limits.replayBytes', () => {
  // The smallest budget: one page at a time for the whole node. A stall timeout far longer than the test, so a client
  // dropped here is dropped by the budget's own rule (5 s without progress while other replays wait).
  const { start } = suiteServers({ limits: { bodyBytes: 4 * 1024 * 1024, replayBytes: 1024 * 1024, replayStallTimeout: 120 } });
  const MAX_HELD = 2 * 1024 * 1024;
  const held = (h: TestServer) => metricValue(h.url, ADMIN_KEY, 'herald_replay_bytes').then((n) => n ?? 0);
  const waits = (h: TestServer) => metricValue(h.url, ADMIN_KEY, 'herald_replay_waits_total').then((n) => n ?? 0);

  it('bounds what SSE replays hold together, drops clients that read nothing while others wait, and lets a reader through', async () => {
    const h = await start();
    await backlog(h, 'big');
    const [droppedBefore, waitsBefore] = [await dropped(h, 'sse'), await waits(h)];
    const stalled: Socket[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const socket = await rawSocket(h, `GET /v1/channels/big/stream?after=0&token=${ADMIN_KEY} HTTP/1.1\r\nHost: x\r\n\r\n`);
        socket.pause();
        stalled.push(socket);
      }
      // Without the budget each of them held 2 to 4 MiB of its replay beyond what the kernel took.
      await eventually(async () => assert.ok((await waits(h)) > waitsBefore, 'a replay waited for room'), 10_000);
      for (let i = 0; i < 5; i++) {
        const now = await held(h);
        assert.ok(now > 0 && now <= MAX_HELD, `${now} bytes held`);
        await new Promise((resolve) => setTimeout(resolve, 300));
      }

      // A client that reads gets its whole replay: those that read nothing give their share up once it waits.
      await readWholeReplay(h, 'big');
      assert.equal(await dropped(h, 'sse'), droppedBefore + 2, 'both clients that read nothing were dropped');
    } finally {
      for (const socket of stalled) socket.destroy();
    }
    await eventually(async () => assert.equal(await held(h), 0, 'nothing is held once the streams are gone'), 5000);
  });

  it('bounds what poll answers hold together: a connection that pipelines polls and reads nothing holds one, then is closed', async () => {
    const h = await start({ limits: { bodyBytes: 4 * 1024 * 1024, replayBytes: 1024 * 1024, replayStallTimeout: 120, pageBytes: 1024 * 1024 } });
    await backlog(h, 'polled');
    const before = await dropped(h, 'long_poll');
    const stalled: Socket[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const socket = await rawSocket(
          h,
          Array.from({ length: 4 }, (_, k) => `GET /v1/channels/polled/events?after=${k * 500}&limit=1000 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_KEY}\r\n\r\n`).join(''),
        );
        socket.pause();
        stalled.push(socket);
      }
      // Without the bound: 12 answers of 1 MiB, most of each beyond what the kernel took.
      for (let i = 0; i < 5; i++) {
        const now = await held(h);
        assert.ok(now <= MAX_HELD, `${now} bytes held`);
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
      // A poll that reads its answer gets it, once those that read nothing have given their share up.
      const res = await fetch(`${h.url}/v1/channels/polled/events?after=0&limit=1000`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
      assert.equal(res.status, 200);
      assert.ok(((await res.json()) as { events: unknown[] }).events.length > 0);
      assert.ok((await dropped(h, 'long_poll')) > before, 'a connection that read nothing was closed');
    } finally {
      for (const socket of stalled) socket.destroy();
    }
    await eventually(async () => assert.equal(await held(h), 0, 'nothing is held once the connections are gone'), 5000);
  });

  it('bounds what one WebSocket replaying several channels holds, and gives it all back when the socket closes', async () => {
    const h = await start();
    await backlog(h, 'ws-a', EVENTS / 2);
    await backlog(h, 'ws-b', EVENTS / 2);
    const socket = await wsReadingNothing(h, ['ws-a', 'ws-b']);
    try {
      await eventually(async () => assert.ok((await held(h)) > 0, 'the replays hold pages'), 10_000);
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const now = await held(h);
      assert.ok(now > 0 && now <= MAX_HELD, `${now} bytes held`);
    } finally {
      socket.destroy();
    }
    await eventually(async () => assert.equal(await held(h), 0, 'nothing is held once the socket is gone'), 5000);
  });
});

describe('requests pipelined behind a stream or a poll', () => {
  // The smallest budget and poll page: one poll's room is the whole node's.
  const { start } = suiteServers({ limits: { bodyBytes: 4 * 1024 * 1024, replayBytes: 1024 * 1024, pageBytes: 1024 * 1024 } });
  const held = (h: TestServer) => metricValue(h.url, ADMIN_KEY, 'herald_replay_bytes').then((n) => n ?? 0);
  const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_KEY}\r\n\r\n`;

  it('a poll behind an SSE stream holds no room while the stream lives, nor once its connection closed', async () => {
    const h = await start();
    await h.call('POST', '/v1/channels/piped/events', { body: { data: 1 } });
    // A client that reads everything; its poll can only be answered once the stream ends, which it never does.
    const socket = await rawSocket(h, get('/v1/channels/piped/stream?after=0') + get('/v1/channels/piped/events?after=0'));
    socket.resume();
    try {
      await new Promise((resolve) => setTimeout(resolve, 500));
      // Before, the poll held its page of room (here the whole budget) for the stream's life, and for good after.
      assert.equal(await held(h), 0);
      const poll = await fetch(`${h.url}/v1/channels/piped/events?after=0`, { headers: { authorization: `Bearer ${ADMIN_KEY}` }, signal: AbortSignal.timeout(5000) });
      assert.equal(poll.status, 200, 'another client is still served');
    } finally {
      socket.destroy();
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(await held(h), 0);
    const poll = await fetch(`${h.url}/v1/channels/piped/events?after=0`, { headers: { authorization: `Bearer ${ADMIN_KEY}` }, signal: AbortSignal.timeout(5000) });
    assert.equal(poll.status, 200);
  });

  it('an SSE stream behind a poll starts once the poll is answered, and streams', async () => {
    const h = await start();
    await h.call('POST', '/v1/channels/piped2/events', { body: { data: 'first' } });
    const socket = connect(Number(new URL(h.url).port), '127.0.0.1');
    let text = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    socket.write(get('/v1/channels/piped2/events?after=0') + get('/v1/channels/piped2/stream?after=0'));
    try {
      // Before, the stream found no socket (the poll's answer had it), and stayed open, empty.
      await eventually(async () => assert.match(text, /id: 1\ndata: .*"first"/), 5000);
      await h.call('POST', '/v1/channels/piped2/events', { body: { data: 'live' } });
      await eventually(async () => assert.match(text, /id: 2\ndata: .*"live"/), 5000);
      assert.ok(text.indexOf('"events":[') < text.indexOf('text/event-stream'), 'the poll answered first');
    } finally {
      socket.destroy();
    }
  });

  it('a poll page is bounded in bytes, not in UTF-16 units (CJK text takes three bytes a character)', async () => {
    const h = await start();
    const cjk = '中'.repeat(300_000);
    for (let i = 0; i < 3; i++) assert.equal((await h.call('POST', '/v1/channels/cjk/events', { body: { data: cjk } })).status, 201);
    const page = (await h.call('GET', '/v1/channels/cjk/events?after=0')).body;
    // 900 KB each: a second one passes the 1 MiB page (counted in units, all three fitted in 900,000).
    assert.deepEqual(page.events.map((e: { seq: number }) => e.seq), [1]);
  });
});

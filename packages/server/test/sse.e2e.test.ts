import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventSource } from 'eventsource';
import { readStream } from './sse-client.js';
import { HeraldError } from '@herald/protocol';
import { ADMIN_KEY, rawConnection, sleep, startTestServer, type TestServer, until } from './helpers.js';
import { freePort } from './support/ports.js';

/** Makes the server's store take `ms` to say where a channel stands, as PostgreSQL across a network can. */
function slowHeads(h: TestServer, ms: number): void {
  const store = h.storage.events;
  const head = store.head.bind(store);
  store.head = async (channel) => {
    await sleep(ms);
    return head(channel);
  };
}

/**
 * Publishes `probe` events to `channel` until `arrived` holds: a stream that starts live (no position) is
 * subscribed once one of them comes through, and from then on misses nothing.
 */
async function untilLive(h: TestServer, channel: string, arrived: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; !arrived(); i++) {
    if (Date.now() > deadline) throw new Error(`no probe on ${channel} arrived in ${timeoutMs} ms`);
    await h.call('POST', `/v1/channels/${channel}/events`, { body: { data: `probe${i}` } });
    await until(arrived, 50).catch(() => undefined);
  }
}

describe('Server-Sent Events', () => {
  const servers: TestServer[] = [];
  after(async () => {
    for (const s of servers) await s.stop();
  });
  const start = async (settings: Record<string, unknown> = {}, dir?: string) => {
    const s = await startTestServer(settings, dir);
    servers.push(s);
    return s;
  };

  it('follows the spec: headers, retry first, id and data per event, no event name', async () => {
    const h = await start({ sse: { retry: 1234 } });
    await h.call('POST', '/v1/channels/plain/events', { body: { type: 'greeting', data: { hello: 'world' } } });
    const { res, text } = await readStream(`${h.url}/v1/channels/plain/stream?after=0`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } }, (t) => t.includes('data:'));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.equal(res.headers.get('x-accel-buffering'), 'no');
    assert.ok(text.startsWith('retry: 1234\n\n'), text);
    const frame = text.split('\n\n')[1]!;
    const [idLine, dataLine, ...rest] = frame.split('\n');
    assert.equal(idLine, 'id: 1');
    assert.deepEqual(rest, []);
    const event = JSON.parse(dataLine!.slice('data: '.length));
    assert.equal(event.type, 'greeting');
    assert.deepEqual(event.data, { hello: 'world' });
  });

  it('a live stream starts from where its channel stood when its head was sent: an event published as soon as it opens arrives', async () => {
    const h = await start();
    slowHeads(h, 200);
    const controller = new AbortController();
    try {
      const res = await fetch(`${h.url}/v1/channels/opened/stream`, { headers: { authorization: `Bearer ${ADMIN_KEY}` }, signal: controller.signal });
      assert.equal(res.status, 200);
      // The client sees the stream open (the response head), and publishes at once.
      assert.equal((await h.call('POST', '/v1/channels/opened/events', { body: { data: 'first' } })).body.seq, 1);
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let text = '';
      const deadline = Date.now() + 3000;
      while (!text.includes('"seq":1,') && Date.now() < deadline) {
        const { value, done } = await Promise.race([reader.read(), sleep(3000).then(() => ({ value: undefined, done: true }))]);
        if (done) break;
        text += decoder.decode(value, { stream: true });
      }
      assert.match(text, /^id: 1\ndata: .*"data":"first"/m);
    } finally {
      controller.abort();
    }
  });

  it('a shutdown while a stream is still reading where it starts ends that stream too, and does not wait for its client', async () => {
    const h = await startTestServer();
    slowHeads(h, 300);
    const stream = readStream(`${h.url}/v1/channels/late/stream?token=${ADMIN_KEY}`, {}, () => false, 10_000);
    await sleep(100);
    const started = Date.now();
    await h.stop();
    assert.ok(Date.now() - started < 2000, `the shutdown took ${Date.now() - started} ms`);
    const { res, text, ended } = await stream;
    assert.equal(res.status, 200);
    assert.ok(ended, 'the body ended');
    assert.match(text, /event: close\ndata: \{"reason":"shutdown"\}/);
  });

  it('has no HEAD form: a HEAD is answered without stream bytes, and the connection serves the next request', async () => {
    const h = await start();
    for (const path of ['/v1/channels/head/stream', '/v1/stream?channel=head']) {
      const raw = await rawConnection(h.url);
      raw.socket.write(`HEAD ${path}${path.includes('?') ? '&' : '?'}token=${ADMIN_KEY} HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n`);
      await until(() => raw.received().includes('"status":"ok"'), 3000, `the request after HEAD ${path}`);
      const answers = raw.received().split(/(?=HTTP\/1\.1 )/);
      assert.equal(answers.length, 2, raw.received());
      assert.match(answers[0]!, /^HTTP\/1\.1 405 /);
      assert.match(answers[0]!, /\r\nallow: GET, OPTIONS\r\n/i);
      assert.doesNotMatch(raw.received(), /retry:/);
      raw.socket.destroy();
    }
  });

  it('answers 503 store_unavailable, not a 200 it then cuts, when the store cannot say where a stream starts', async () => {
    const h = await start();
    h.storage.events.head = async () => {
      throw new HeraldError('store_unavailable', 'The store is not answering.');
    };
    for (const path of ['/v1/channels/down/stream', '/v1/stream?channel=down&channel=other']) {
      const res = await fetch(`${h.url}${path}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
      assert.equal(res.status, 503, path);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'store_unavailable');
    }
    // The refused streams left nothing behind: no stream, no subscription.
    assert.equal(h.sse.size, 0);
  });

  it('sends a heartbeat comment', async () => {
    const h = await start({ sse: { heartbeat: 0.05 } });
    const { text } = await readStream(`${h.url}/v1/channels/quiet/stream?token=${ADMIN_KEY}`, {}, (t) => t.includes(': ping\n\n'));
    assert.ok(text.includes(': ping\n\n'));
  });

  it('refuses with a JSON 401 or 403, which ends EventSource retries', async () => {
    const h = await start();
    const none = await fetch(`${h.url}/v1/channels/private/stream`);
    assert.equal(none.status, 401);
    assert.equal(((await none.json()) as any).error.code, 'unauthorized');
    const key = await h.createKey(['subscribe'], ['other']);
    const notCovered = await fetch(`${h.url}/v1/channels/private/stream?token=${key}`);
    assert.equal(notCovered.status, 403);
    assert.equal(((await notCovered.json()) as any).error.code, 'forbidden');
    const badCursor = await fetch(`${h.url}/v1/channels/private/stream?token=${ADMIN_KEY}&lastEventId=abc`);
    assert.equal(badCursor.status, 400);
  });

  it('accepts the credential as a cookie', async () => {
    const h = await start();
    await h.call('POST', '/v1/channels/cookie/events', { body: { data: 1 } });
    const { res, text } = await readStream(`${h.url}/v1/channels/cookie/stream?after=0`, { headers: { cookie: `other=1; herald_token=${ADMIN_KEY}` } }, (t) => t.includes('data:'));
    assert.equal(res.status, 200);
    assert.ok(text.includes('"data":1'));
  });

  it('resumes an EventSource with Last-Event-ID across a server restart: no gap, no duplicate', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-sse-restart-'));
    try {
      const port = await freePort();
      let h = await startTestServer({ port, sse: { retry: 200 } }, dir);
      for (let i = 1; i <= 3; i++) await h.call('POST', '/v1/channels/resume/events', { body: { data: i } });

      const seen: number[] = [];
      const ids: string[] = [];
      let closes = 0;
      const es = new EventSource(`${h.url}/v1/channels/resume/stream?after=1&token=${ADMIN_KEY}`);
      es.onmessage = (message) => {
        seen.push(JSON.parse(message.data).data);
        ids.push(message.lastEventId);
      };
      es.addEventListener('close', () => closes++);
      try {
        await until(() => seen.length === 2, 5000, 'backlog');
        await h.call('POST', '/v1/channels/resume/events', { body: { data: 4 } });
        await until(() => seen.length === 3, 5000, 'live event');

        await h.stop(); // sends `event: close`, then ends the stream
        h = await startTestServer({ port, sse: { retry: 200 } }, dir);
        // Published while the client is still away: it must come from the log on reconnect.
        await h.call('POST', '/v1/channels/resume/events', { body: { data: 5 } });
        await until(() => seen.length === 4, 5000, 'replay after restart');
        await h.call('POST', '/v1/channels/resume/events', { body: { data: 6 } });
        await until(() => seen.length === 5, 5000, 'live after restart');
        assert.deepEqual(seen, [2, 3, 4, 5, 6]);
        assert.deepEqual(ids, ['2', '3', '4', '5', '6']);
        assert.equal(closes, 1);
      } finally {
        es.close();
        await h.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names where a live stream starts, so a reconnect before any event still resumes from there', async () => {
    // WHATWG HTML "dispatch the event": an `id:` in a block without data sets the last event ID and dispatches
    // nothing; browsers send it back as Last-Event-ID. Without one, a live stream that dropped before its first event
    // reconnected live again and never got what was published meanwhile.
    const h = await start({ sse: { retry: 1234 } });
    await h.call('POST', '/v1/channels/lv1/events', { body: { data: 1 } });
    await h.call('POST', '/v1/channels/lv1/events', { body: { data: 2 } });
    await h.call('POST', '/v1/channels/lv2/events', { body: { data: 1 } });
    const auth = { authorization: `Bearer ${ADMIN_KEY}` };
    /** The last event ID a WHATWG parser holds after `text`: the last `id` field, in a block that ended. */
    const lastId = (text: string) => [...text.slice(0, text.lastIndexOf('\n\n') + 2).matchAll(/^id: ?(.*)$/gm)].at(-1)?.[1];
    for (const [path, channel] of [
      ['/v1/channels/lv1/stream', 'lv1'],
      ['/v1/stream?channel=lv1&channel=lv2', 'lv2'],
    ] as const) {
      const first = await readStream(`${h.url}${path}`, { headers: auth }, (t) => t.includes('\n\n'));
      assert.match(first.text, /^retry: 1234\nid: [^\n]+\n\n/, path);
      assert.doesNotMatch(first.text, /data:/, `${path}: no event is dispatched`);
      const id = lastId(first.text);
      assert.ok(id, path);
      // Published while the client is away, after it saw the stream open.
      await h.call('POST', `/v1/channels/${channel}/events`, { body: { data: 'meanwhile' } });
      const again = await readStream(`${h.url}${path}`, { headers: { ...auth, 'last-event-id': id } }, (t) => t.includes('meanwhile'), 3000);
      assert.match(again.text, /"data":"meanwhile"/, `${path}: the reconnect resumes where the first stream started`);
      assert.doesNotMatch(again.text, /"data":[12][,}]/, `${path}: nothing from before it started`);
    }
    // A stream given a position does not need one: the browser sends the URL's position back again.
    const resumed = await readStream(`${h.url}/v1/channels/lv1/stream?after=0`, { headers: auth }, (t) => t.includes('\n\n'));
    assert.ok(resumed.text.startsWith('retry: 1234\n\n'), resumed.text);
  });

  it('sends a gap event after a trim, then the events that remain', async () => {
    const h = await start({ retention: { maxEvents: 2 } });
    for (let i = 1; i <= 5; i++) await h.call('POST', '/v1/channels/trimmed/events', { body: { data: i } });
    await h.trimmer.runOnce();
    const es = new EventSource(`${h.url}/v1/channels/trimmed/stream?after=1&token=${ADMIN_KEY}`);
    const log: string[] = [];
    es.addEventListener('gap', (m) => log.push(`gap ${m.data} id=${m.lastEventId}`));
    es.onmessage = (m) => log.push(`event ${JSON.parse(m.data).seq}`);
    try {
      await until(() => log.length === 3);
      assert.deepEqual(log, ['gap {"channel":"trimmed","after":1,"oldest":4} id=3', 'event 4', 'event 5']);
    } finally {
      es.close();
    }
  });

  it('streams several channels with one resumable cursor as the event id', async () => {
    const h = await start();
    await h.call('POST', '/v1/channels/s1/events', { body: { data: 'a1' } });
    const url = `${h.url}/v1/stream?channel=s1&channel=s2&token=${ADMIN_KEY}`;
    const first = new EventSource(`${url}&cursor=`);
    const seen: string[] = [];
    let lastId = '';
    first.onmessage = (m) => {
      seen.push(JSON.parse(m.data).data);
      lastId = m.lastEventId;
    };
    // A stream without a position starts at the head it reads when it opens: publish probes until one arrives,
    // so the stream is known to be live before the events the test counts.
    await untilLive(h, 's2', () => seen.some((d) => d.startsWith('probe')));
    const probes = seen.length;
    await h.call('POST', '/v1/channels/s2/events', { body: { data: 'b1' } });
    await h.call('POST', '/v1/channels/s1/events', { body: { data: 'a2' } });
    await until(() => seen.length === probes + 2);
    first.close();
    assert.deepEqual(seen.slice(probes), ['b1', 'a2']);
    assert.ok(!seen.includes('a1'), 'without a cursor the stream starts live');
    await h.call('POST', '/v1/channels/s2/events', { body: { data: 'b2' } });
    const resumed = new EventSource(`${url}&lastEventId=${lastId}`);
    const more: string[] = [];
    resumed.onmessage = (m) => more.push(JSON.parse(m.data).data);
    try {
      await until(() => more.length === 1);
      // A marker after b2: once it is here, anything resumed by mistake (a1, b1, a2, b2 again) would be too.
      await h.call('POST', '/v1/channels/s1/events', { body: { data: 'a3' } });
      await until(() => more.includes('a3'));
      assert.deepEqual(more, ['b2', 'a3']);
    } finally {
      resumed.close();
    }
  });

  it('applies the allowed CORS origins to the API and to streams', async () => {
    const h = await start({ cors: { origins: ['http://app.example'] }, channels: { public: ['pub'] } });
    const allowed = await fetch(`${h.url}/v1/channels/pub/events`, { headers: { origin: 'http://app.example' } });
    assert.equal(allowed.headers.get('access-control-allow-origin'), 'http://app.example');
    const other = await fetch(`${h.url}/v1/channels/pub/events`, { headers: { origin: 'http://evil.example' } });
    assert.equal(other.headers.get('access-control-allow-origin'), null);
    const { res } = await readStream(`${h.url}/v1/channels/pub/stream`, { headers: { origin: 'http://app.example' } }, (t) => t.includes('retry'));
    assert.equal(res.headers.get('access-control-allow-origin'), 'http://app.example');
    const preflight = await fetch(`${h.url}/v1/channels/pub/events`, {
      method: 'OPTIONS',
      headers: { origin: 'http://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
    });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get('access-control-allow-origin'), 'http://app.example');
    // A browser publish carrying a W3C traceparent (README, Tracing) must pass the preflight too.
    const traced = await fetch(`${h.url}/v1/channels/pub/events`, {
      method: 'OPTIONS',
      headers: { origin: 'http://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type,traceparent,tracestate' },
    });
    const allowedHeaders = (traced.headers.get('access-control-allow-headers') ?? '').split(/\s*,\s*/);
    assert.ok(allowedHeaders.includes('traceparent') && allowedHeaders.includes('tracestate'), allowedHeaders.join(','));
  });
});

// Issue #16, "cover what has no test at all", through the real server: PATCHing an endpoint to a private address,
// the per-endpoint delivery rate limit, the delivery timeout, the response-size cap, idempotency and ingest dedupe
// windows expiring, and backlogs past one page (500) on SSE, WebSocket and outbound delivery. Each test names the
// behaviour it pins and fails when that behaviour breaks.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetch } from 'undici';
import { generateSecret, sign } from '@herald/webhooks';
import { openSqliteStorage } from '../src/store/sqlite/open.js';
import { ADMIN_KEY, eventually, startTestServer, until, type TestServer } from './helpers.js';
import { WsTestClient } from './ws-client.js';

const LOOPBACK_ONLY = ['127.0.0.1/32'];
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** A local receiver; `respond` answers each request (after its body was read) and may leave it unanswered. */
async function startReceiver(respond: (req: IncomingMessage, res: ServerResponse, body: string) => void = (_q, res) => res.writeHead(200).end('ok')) {
  const arrivals: Array<{ at: number; body: string }> = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      arrivals.push({ at: Date.now(), body });
      respond(req, res, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    arrivals,
    seqs: () => arrivals.map((a) => (JSON.parse(a.body) as { seq: number }).seq),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
type Receiver = Awaited<ReturnType<typeof startReceiver>>;

/** A server, its receivers and helpers, torn down together. */
function harness(settings: () => Record<string, unknown>) {
  const state = { h: undefined as unknown as TestServer, receivers: [] as Receiver[] };
  before(async () => {
    state.h = await startTestServer(settings());
  });
  after(async () => {
    await state.h.stop();
    for (const r of state.receivers) await r.close();
  });
  return {
    get h() {
      return state.h;
    },
    async receiver(respond?: Parameters<typeof startReceiver>[0]) {
      const r = await startReceiver(respond);
      state.receivers.push(r);
      return r;
    },
    async endpoint(body: Record<string, unknown>) {
      const res = await state.h.call('POST', '/v1/endpoints', { body });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return res.body as { id: string; url: string };
    },
    async publish(channel: string, count: number) {
      for (let done = 0; done < count; done += 500) {
        const events = Array.from({ length: Math.min(500, count - done) }, (_, i) => ({ channel, type: 'test', data: { i: done + i } }));
        const res = await state.h.call('POST', '/v1/events', { body: { events } });
        assert.equal(res.status, 201, JSON.stringify(res.body));
      }
    },
    /** The endpoint's only delivery, and its attempts, once it has at least `attempts` of them. */
    async attemptsOf(endpointId: string, attempts: number, timeoutMs = 8000) {
      return eventually(async () => {
        const [delivery] = (await state.h.call('GET', `/v1/endpoints/${endpointId}/deliveries`)).body.deliveries;
        assert.ok(delivery, 'a delivery');
        const list = (await state.h.call('GET', `/v1/deliveries/${delivery.id}/attempts`)).body.attempts as Array<Record<string, any>>;
        assert.ok(list.length >= attempts, `${list.length} of ${attempts} attempts`);
        return { delivery: (await state.h.call('GET', `/v1/deliveries/${delivery.id}`)).body, attempts: list };
      }, timeoutMs);
    },
  };
}

describe('PATCH an endpoint to a private address', () => {
  const t = harness(() => ({ delivery: { allowPrivateNetworks: LOOPBACK_ONLY, retrySchedule: [0.2] } }));

  it('is refused with 422 unprocessable, changes nothing, and deliveries keep going to the old URL', async () => {
    const r = await t.receiver();
    const ep = await t.endpoint({ url: r.url, channels: ['patch-me'], description: 'before' });
    const inward = [
      'http://127.0.0.2/hook', // loopback, outside the one allowed address
      'http://10.1.2.3/hook',
      'http://172.16.0.1/hook',
      'http://192.168.1.10/hook',
      'http://100.64.0.1/hook', // carrier-grade NAT
      'http://169.254.169.254/latest/meta-data', // cloud metadata
      'http://[::1]/hook',
      'http://[fd00::1]/hook',
      'http://[::ffff:10.0.0.1]/hook',
      'http://0.0.0.0/hook',
    ];
    for (const url of inward) {
      const res = await t.h.call('PATCH', `/v1/endpoints/${ep.id}`, { body: { url, description: 'after' } });
      assert.deepEqual([res.status, res.body.error?.code], [422, 'unprocessable'], `${url}: ${JSON.stringify(res.body)}`);
      assert.match(res.body.error.message, /private, loopback, link-local, multicast or reserved/);
    }
    const now = (await t.h.call('GET', `/v1/endpoints/${ep.id}`)).body;
    assert.deepEqual([now.url, now.description], [r.url, 'before'], 'a refused PATCH changes no field');
    await t.publish('patch-me', 1);
    await until(() => r.arrivals.length === 1, 5000, 'the delivery to the original URL');
    // The allowed address is still accepted, so the refusals above are about the address, not PATCH itself.
    const allowed = await t.h.call('PATCH', `/v1/endpoints/${ep.id}`, { body: { url: r.url.replace('/hook', '/other') } });
    assert.equal(allowed.status, 200, JSON.stringify(allowed.body));
  });
});

describe('per-endpoint delivery rate limit', () => {
  const t = harness(() => ({ delivery: { allowPrivateNetworks: LOOPBACK_ONLY } }));

  it('holds: a burst of one second’s worth, then `rateLimit` per second, whatever the concurrency', async () => {
    const r = await t.receiver();
    const rate = 4;
    await t.endpoint({ url: r.url, channels: ['limited'], rateLimit: rate, maxConcurrency: 20 });
    // One delivery first, then an idle spell longer than a second: a bucket that kept filling past one second's
    // worth would let the burst below through at once.
    await t.h.call('POST', '/v1/channels/limited/events', { body: { data: 'warm-up' } });
    await until(() => r.arrivals.length === 1, 5000, 'the first delivery');
    await until(() => Date.now() - r.arrivals[0]!.at >= 2500, 5000, 'an idle spell of 2.5 s');
    r.arrivals.splice(0);
    await t.publish('limited', 20);
    await until(() => r.arrivals.length === 20, 15_000, 'all 20 deliveries');
    const first = r.arrivals[0]!.at;
    // Only lower bounds on time: a slow machine spreads arrivals out more, never less.
    const inFirstSecond = r.arrivals.filter((a) => a.at - first < 1000).length;
    assert.ok(inFirstSecond <= 2 * rate + 1, `at most a burst of ${rate} plus ${rate} more in the first second, saw ${inFirstSecond}`);
    const span = r.arrivals.at(-1)!.at - first;
    // 20 requests at 4/s after a burst of 4 take 4 s; allow for the token bucket's rounding.
    assert.ok(span >= 3500, `20 deliveries at ${rate}/s spread over ${span} ms`);
    assert.deepEqual(new Set(r.seqs()), new Set(range(2, 21)), 'each event delivered');
  });
});

/** Quick retries, no jitter, and the given `delivery.timeout`: for the timeout suites below. */
const timeoutHarness = (timeout: number) => harness(() => ({ delivery: { allowPrivateNetworks: LOOPBACK_ONLY, timeout, retrySchedule: [0.1, 0.1, 60], jitter: 0 } }));

describe('delivery timeout', () => {
  // Undici's headers and body timers tick about once a second, so they fire up to a second after the timeout. At
  // 2 s they still come well before the attempt's own deadline (twice the timeout); at 0.5 s the deadline, at 1 s,
  // could come first (it did, on a loaded machine).
  const TIMEOUT_S = 2;
  const t = timeoutHarness(TIMEOUT_S);

  it('a receiver that never answers: each attempt is recorded as a headers timeout, and retried', async () => {
    // Takes the request and never answers (the connection is closed when the receiver stops).
    const r = await t.receiver(() => {});
    const ep = await t.endpoint({ url: r.url, channels: ['silent'] });
    await t.publish('silent', 1);
    const { delivery, attempts } = await t.attemptsOf(ep.id, 2, 15_000);
    for (const attempt of attempts.slice(0, 2)) {
      assert.equal(attempt.statusCode, undefined, 'no answer, no status');
      assert.match(attempt.error, /^UND_ERR_HEADERS_TIMEOUT: /, 'the timeout, with its error code');
      assert.ok(attempt.durationMs >= TIMEOUT_S * 1000 * 0.9, `cut off after the timeout, not before (${attempt.durationMs} ms)`);
      assert.ok(attempt.durationMs < TIMEOUT_S * 1000 * 8, `cut off at the timeout, not much later (${attempt.durationMs} ms)`);
    }
    assert.equal(delivery.status, 'pending', 'retried, on the schedule');
    assert.equal(delivery.lastError, attempts.at(-1)!.error);
    assert.ok(r.arrivals.length >= 2, 'the receiver saw the retry');
    const metrics = await (await fetch(`${t.h.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).text();
    const timeouts = Number(/herald_outbound_attempts_total\{outcome="timeout"\} (\d+)/.exec(metrics)?.[1] ?? 0);
    assert.ok(timeouts >= 2, `counted as timeouts in /metrics (${timeouts})`);
  });

  it('a receiver that answers 200 and then stalls its body: a body timeout, retried rather than counted as a success', async () => {
    const r = await t.receiver((_q, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('partial…');
    });
    const ep = await t.endpoint({ url: r.url, channels: ['stalled'] });
    await t.publish('stalled', 1);
    const { delivery, attempts } = await t.attemptsOf(ep.id, 2, 15_000);
    for (const attempt of attempts.slice(0, 2)) assert.match(attempt.error, /^UND_ERR_BODY_TIMEOUT: /);
    assert.equal(delivery.status, 'pending');
  });
});

describe('delivery timeout: interim answers', () => {
  const TIMEOUT_S = 0.5;
  const t = timeoutHarness(TIMEOUT_S);

  it('a receiver that keeps sending interim 102 answers: the whole attempt ends by twice the timeout, and is retried', async () => {
    const r = await t.receiver((_q, res) => {
      const timer = setInterval(() => res.writeProcessing(), 100);
      res.on('close', () => clearInterval(timer));
    });
    const ep = await t.endpoint({ url: r.url, channels: ['interim'] });
    await t.publish('interim', 1);
    const { delivery, attempts } = await t.attemptsOf(ep.id, 2, 10_000);
    for (const attempt of attempts.slice(0, 2)) {
      assert.equal(attempt.statusCode, undefined);
      assert.match(attempt.error, /^ATTEMPT_TIMEOUT: /);
      assert.ok(attempt.durationMs >= TIMEOUT_S * 2000 * 0.9, `cut off at twice the timeout, not before (${attempt.durationMs} ms)`);
    }
    assert.equal(delivery.status, 'pending', 'retried, on the schedule');
  });
});

describe('response-size cap', () => {
  const t = harness(() => ({ delivery: { allowPrivateNetworks: LOOPBACK_ONLY } }));

  it('keeps the first 1 KiB of the answer in the attempt log', async () => {
    const answer = 'a'.repeat(1000) + 'b'.repeat(4000);
    const r = await t.receiver((_q, res) => res.writeHead(200, { 'content-length': answer.length }).end(answer));
    const ep = await t.endpoint({ url: r.url, channels: ['chatty'] });
    await t.publish('chatty', 1);
    const { delivery, attempts } = await t.attemptsOf(ep.id, 1);
    assert.equal(delivery.status, 'succeeded');
    assert.equal(attempts[0]!.responseBody, answer.slice(0, 1024), 'exactly the first 1024 characters');
  });

  it('stops reading a huge answer after 64 KiB: the attempt ends as a success and the receiver could send only a little of it', async () => {
    const HUGE = 256 * 1024 * 1024;
    let written = 0;
    let closed: () => void;
    const receiverClosed = new Promise<void>((resolve) => (closed = resolve));
    const chunk = Buffer.alloc(64 * 1024, 'x');
    const r = await t.receiver((_q, res) => {
      // Chunked, no content-length: Herald cannot know the size in advance.
      res.writeHead(200, { 'content-type': 'text/plain' });
      const pump = () => {
        while (written < HUGE && !res.destroyed) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        if (!res.destroyed) res.end();
      };
      res.once('close', () => closed());
      pump();
    });
    const ep = await t.endpoint({ url: r.url, channels: ['huge'] });
    await t.publish('huge', 1);
    const { delivery, attempts } = await t.attemptsOf(ep.id, 1, 10_000);
    assert.equal(delivery.status, 'succeeded');
    assert.equal(attempts[0]!.responseBody, 'x'.repeat(1024));
    await receiverClosed;
    // 64 KiB read, plus what the sockets' kernel buffers took before Herald hung up: megabytes, not the 256 MiB.
    assert.ok(written < 32 * 1024 * 1024, `Herald hung up early: the receiver wrote ${(written / 1048576).toFixed(1)} MiB of ${HUGE / 1048576}`);
  });
});

describe('idempotency and dedupe windows expiring', () => {
  // Keys are kept for the longer of retention.maxAge and ingest.dedupeWindow: 2 s here, checked every 0.2 s. (A
  // source's tolerance may be at most half of it, so sources take 1 s.)
  const t = harness(() => ({ retention: { maxAge: 2, trimInterval: 0.2 }, ingest: { dedupeWindow: 2, tolerance: 1 } }));

  it('an Idempotency-Key replays within the window and makes a new event once it has expired', async () => {
    const headers = { 'idempotency-key': 'expiring-key' };
    const first = await t.h.call('POST', '/v1/channels/idem/events', { body: { data: 1 }, headers });
    assert.equal(first.status, 201);
    const replay = await t.h.call('POST', '/v1/channels/idem/events', { body: { data: 2 }, headers });
    assert.deepEqual([replay.status, replay.body.id], [200, first.body.id], 'a replay within the window');
    // Waits for the condition itself: the same key makes a new event.
    const fresh = await eventually(async () => {
      const res = await t.h.call('POST', '/v1/channels/idem/events', { body: { data: 3 }, headers });
      assert.equal(res.status, 201, `still a replay: ${JSON.stringify(res.body)}`);
      return res;
    }, 10_000);
    assert.notEqual(fresh.body.id, first.body.id);
    assert.deepEqual(fresh.body.data, 3);
  });

  it('an ingest dedupe id is a duplicate within the window and a new event once it has expired', async () => {
    const secret = generateSecret();
    const created = await t.h.call('POST', '/v1/sources', { body: { name: 'exp-std', provider: 'standard', secrets: [secret], channel: 'in:exp' } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const ingest = async () => {
      const body = '{"type":"thing.happened"}';
      const res = await fetch(`${t.h.url}/v1/ingest/exp-std`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...sign('standard', { secret, body, id: 'msg_expiring', timestamp: Math.floor(Date.now() / 1000) }) },
        body,
      });
      assert.equal(res.status, 200);
      return (await res.json()) as { duplicate: boolean; event: { id: string } };
    };
    const first = await ingest();
    assert.equal(first.duplicate, false);
    const again = await ingest();
    assert.deepEqual([again.duplicate, again.event.id], [true, first.event.id]);
    const later = await eventually(async () => {
      const res = await ingest();
      assert.equal(res.duplicate, false, 'still deduped');
      return res;
    }, 10_000);
    assert.notEqual(later.event.id, first.event.id);
  });
});

describe('the idempotency window is the longer of retention.maxAge and ingest.dedupeWindow', () => {
  const t = harness(() => ({ retention: { maxAge: 1, trimInterval: 0.2 }, ingest: { dedupeWindow: 600 } }));

  it('a key outlives its event: after retention trimmed the event, the same key appends nothing (409 conflict)', async () => {
    const headers = { 'idempotency-key': 'long-lived' };
    const first = await t.h.call('POST', '/v1/channels/trimmed/events', { body: { data: 1 }, headers });
    assert.equal(first.status, 201);
    // The condition that shows maxAge has passed and a trim pass ran: the event is gone from the channel.
    await eventually(async () => {
      const page = (await t.h.call('GET', '/v1/channels/trimmed/events?after=0')).body;
      assert.equal(page.events.length, 0, 'not trimmed yet');
    }, 10_000);
    const replay = await t.h.call('POST', '/v1/channels/trimmed/events', { body: { data: 2 }, headers });
    assert.deepEqual([replay.status, replay.body.error?.code], [409, 'conflict'], `the key is kept for ingest.dedupeWindow: ${JSON.stringify(replay.body)}`);
    const batch = await t.h.call('POST', '/v1/events', { body: { events: [{ channel: 'trimmed', data: 3 }] }, headers });
    assert.equal(batch.status, 201, 'a batch key is its own');
    const batchReplay = await t.h.call('POST', '/v1/events', { body: { events: [{ channel: 'trimmed', data: 4 }] }, headers });
    assert.deepEqual([batchReplay.status, batchReplay.body.events[0].id], [200, batch.body.events[0].id]);
    assert.equal((await t.h.call('GET', '/v1/channels/trimmed/events?after=0')).body.head, 2, 'nothing appended by either replay');
  });
});

describe('an event id chosen again once retention removed its first event', () => {
  const t = harness(() => ({ retention: { maxAge: 1, trimInterval: 0.2 }, delivery: { allowPrivateNetworks: LOOPBACK_ONLY } }));

  it('is a new event, delivered to the endpoint that had the first, as every transport shows it', async () => {
    const r = await t.receiver();
    await t.endpoint({ url: r.url, channels: ['reused:*'] });
    for (const id of ['order-7', 'order-8']) assert.equal((await t.h.call('POST', '/v1/channels/reused:a/events', { body: { id, data: id } })).status, 201);
    await until(() => r.arrivals.length === 2, 10_000, 'the first two delivered');
    await eventually(async () => {
      assert.equal((await t.h.call('GET', '/v1/channels/reused:a/events?after=0')).body.events.length, 0, 'not trimmed yet');
    }, 10_000);
    // Chosen again: one on the same channel (a later seq), one on another (a seq it had on the first).
    const again = await t.h.call('POST', '/v1/channels/reused:a/events', { body: { id: 'order-7', data: 'again' } });
    const elsewhere = await t.h.call('POST', '/v1/channels/reused:b/events', { body: { id: 'order-8', data: 'elsewhere' } });
    assert.deepEqual([again.status, again.body.seq, elsewhere.status, elsewhere.body.seq], [201, 3, 201, 1]);
    await until(() => r.arrivals.length === 4, 10_000, 'both new events delivered');
    const delivered = r.arrivals.map((a) => JSON.parse(a.body) as { id: string; channel: string; seq: number; data: string });
    assert.deepEqual(delivered.map((e) => [e.id, e.channel, e.seq, e.data]).sort(), [
      ['order-7', 'reused:a', 1, 'order-7'],
      ['order-7', 'reused:a', 3, 'again'],
      ['order-8', 'reused:a', 2, 'order-8'],
      ['order-8', 'reused:b', 1, 'elsewhere'],
    ]);
  });
});

describe('backlogs past one page (500)', () => {
  const t = harness(() => ({ delivery: { allowPrivateNetworks: LOOPBACK_ONLY } }));
  const COUNT = 1234;
  before(async () => {
    await t.publish('long', COUNT);
  });

  it('an SSE stream from the start replays all of them, in order, each once, then goes live', async () => {
    const controller = new AbortController();
    const res = await fetch(`${t.h.url}/v1/channels/long/stream?after=0`, { headers: { authorization: `Bearer ${ADMIN_KEY}` }, signal: controller.signal });
    assert.equal(res.status, 200);
    const seqs: number[] = [];
    const reading = (async () => {
      let buffer = '';
      const decoder = new TextDecoder();
      try {
        for await (const chunk of res.body!) {
          buffer += decoder.decode(chunk as Uint8Array, { stream: true });
          let end: number;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const data = buffer.slice(0, end).split('\n').find((l) => l.startsWith('data:'));
            buffer = buffer.slice(end + 2);
            if (data) seqs.push((JSON.parse(data.slice(5)) as { seq: number }).seq);
          }
        }
      } catch {
        // Aborted at the end of the test.
      }
    })();
    try {
      await until(() => seqs.length >= COUNT, 10_000, 'the whole backlog');
      await t.publish('long', 1);
      await until(() => seqs.length >= COUNT + 1, 5000, 'the live event');
      assert.deepEqual(seqs.slice(0, COUNT + 1), range(1, COUNT + 1));
    } finally {
      controller.abort();
      await reading;
    }
  });

  it('a WebSocket subscription from the start gets all of them, in order, each once', async () => {
    const ws = new WsTestClient(`${t.h.url.replace(/^http/, 'ws')}/v1/ws?token=${ADMIN_KEY}`);
    await ws.opened;
    try {
      ws.send({ op: 'subscribe', channel: 'long', after: 0, ref: 's' });
      await until(() => ws.ops('event').length >= COUNT, 10_000, 'the whole backlog');
      const seqs = ws.ops('event').map((f: { seq: number }) => f.seq);
      assert.deepEqual(seqs.slice(0, COUNT), range(1, COUNT));
    } finally {
      ws.ws.terminate();
    }
  });

  it('outbound delivery reads a backlog past 500 from the log after a restart, and delivers each event once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-backlog-'));
    const r = await t.receiver();
    try {
      // An endpoint, then a stopped server: the events arrive while no dispatcher follows the bus.
      const first = await startTestServer({ delivery: { allowPrivateNetworks: LOOPBACK_ONLY } }, dir);
      const created = await first.call('POST', '/v1/endpoints', { body: { url: r.url, channels: ['offline'], maxConcurrency: 100 } });
      assert.equal(created.status, 201);
      await first.stop();
      const storage = await openSqliteStorage({ dataDir: dir });
      try {
        for (let done = 0; done < COUNT; done += 500) {
          const events = range(done + 1, Math.min(COUNT, done + 500)).map((i) => ({ channel: 'offline', id: `evt_offline_${i}`, type: 'test', data: { i }, time: Date.now() }));
          await storage.events.append({ events });
        }
      } finally {
        await storage.close();
      }
      const second = await startTestServer({ delivery: { allowPrivateNetworks: LOOPBACK_ONLY } }, dir);
      try {
        // The dispatcher reads the log 500 at a time from its cursor: three pages.
        await until(() => r.arrivals.length >= COUNT, 20_000, 'all deliveries').catch(async (error: unknown) => {
          const made = (await second.call('GET', `/v1/endpoints/${created.body.id}/deliveries?limit=1000`)).body.deliveries.length;
          throw new Error(`${String(error)}: ${r.arrivals.length} of ${COUNT} arrived, ${made} deliveries made`);
        });
        assert.deepEqual([...r.seqs()].sort((a, b) => a - b), range(1, COUNT), 'each event once');
      } finally {
        await second.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('endpoints that come and go', () => {
  const t = harness(() => ({ delivery: { allowPrivateNetworks: LOOPBACK_ONLY } }));

  it('the worker forgets a deleted endpoint once nothing of it is under way', async () => {
    const r = await t.receiver();
    const lanes = () => (t.h.delivery.worker as unknown as { lanes: Map<string, unknown> }).lanes;
    const endpoints = [];
    for (let i = 0; i < 5; i++) endpoints.push(await t.endpoint({ url: r.url, channels: ['come-go'] }));
    await t.publish('come-go', 1);
    await until(() => r.arrivals.length === 5, 5000, 'one delivery to each');
    const ids = new Set(endpoints.map((e) => e.id));
    assert.equal([...lanes().keys()].filter((id) => ids.has(id)).length, 5, 'a lane each while they exist');
    for (const endpoint of endpoints) {
      const res = await t.h.call('DELETE', `/v1/endpoints/${endpoint.id}`);
      assert.ok(res.status < 300, `deleted (${res.status})`);
    }
    await until(() => [...lanes().keys()].every((id) => !ids.has(id)), 5000, 'their lanes dropped');
  });
});

// The SDK against real servers that restart: graceful (SIGTERM, close()) and abrupt (SIGKILL), on every
// transport; the way back to WebSocket after an outage or a fallback; Node's default WebSocket; epoch changes.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Agent, fetch as undiciFetch } from 'undici';
import { WebSocket as NodeWebSocket } from 'ws';
import { type EpochChange, type HeraldOptions } from '../src/index.js';
import { suiteResources } from './fixtures.js';
import { ADMIN_KEY, CLI_ADMIN_KEY, sleep, spawnHerald, startTestServer, until, type Running, type TestServer } from '../../server/test/helpers.js';
import { freePort } from '../../server/test/support/ports.js';

const TRANSPORTS = ['websocket', 'sse', 'poll'] as const;
/** The watchdog is far beyond every wait below: a reconnect it caused would fail the test. */
const quick = { backoff: { baseMs: 50, maxMs: 300 }, heartbeatTimeoutMs: 60_000 } satisfies Partial<HeraldOptions>;
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Rejects after `ms`: no wait in this file is unbounded. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A `herald serve` child on a fixed port and data directory, restartable. */
class Spawned {
  private running: Running | undefined;
  private agent = new Agent();
  readonly dir = mkdtempSync(join(tmpdir(), 'herald-sdk-spawn-'));
  constructor(readonly port: number) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.running = await within(spawnHerald(['serve', '--host', '127.0.0.1', '--port', String(this.port), '--data', this.dir, '--log-level', 'warn']), 30_000, 'herald start');
    this.agent = new Agent();
  }

  async stop(signal: NodeJS.Signals): Promise<void> {
    const running = this.running;
    if (!running) return;
    this.running = undefined;
    running.child.kill(signal);
    await within(running.exited, 15_000, `herald exit on ${signal}`);
    await this.agent.close();
  }

  async publish(channel: string, from: number, to: number): Promise<void> {
    for (let i = from; i <= to; i++) {
      const res = await undiciFetch(`${this.url}/v1/channels/${channel}/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${CLI_ADMIN_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ data: i }),
        dispatcher: this.agent,
      });
      assert.equal(res.status, 201, await res.text());
    }
  }

  async dispose(): Promise<void> {
    await this.stop('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function publishRange(h: TestServer, channel: string, from: number, to: number, data: (i: number) => unknown = (i) => i): Promise<void> {
  for (let i = from; i <= to; i++) {
    const res = await h.call('POST', `/v1/channels/${channel}/events`, { body: { data: data(i) } });
    assert.equal(res.status, 201);
  }
}

describe('@herald/client across server restarts', () => {
  const { client, cleanups } = suiteResources();
  const spawned = async () => {
    const s = new Spawned(await freePort());
    cleanups.push(() => s.dispose());
    await s.start();
    return s;
  };

  for (const transport of TRANSPORTS) {
    for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
      it(`${transport}: a ${signal} restart ends the connection, and everything published after it arrives once, in order`, async () => {
        const s = await spawned();
        const states: string[] = [];
        // No WebSocket class passed: on Node 20 the SDK finds `ws` itself.
        const c = client({ url: s.url, token: CLI_ADMIN_KEY, transports: [transport], ...quick });
        c.on('state', (state) => states.push(state));
        const seen: number[] = [];
        c.subscribe('restart', { after: 0 }, (e) => seen.push(e.data as number));
        await until(() => c.state === 'connected', 5000, 'connected');
        await s.publish('restart', 1, 5);
        await until(() => seen.length === 5, 5000, 'events 1-5');
        states.length = 0;

        await s.stop(signal);
        // The client notices the restart by itself: no watchdog (60 s) and no request of its own needed.
        await until(() => states.includes('disconnected'), 5000, `${transport} disconnected after ${signal}`);
        await s.start();
        await s.publish('restart', 6, 10);
        await until(() => seen.length >= 10, 10_000, `${transport} events 6-10 after ${signal}`);
        await s.publish('restart', 11, 12);
        await until(() => seen.length >= 12, 5000, `${transport} live events after ${signal}`);
        // A marker after the rest: a duplicate of anything before it would have arrived before it.
        await s.publish('restart', 13, 13);
        await until(() => seen.includes(13), 5000, `${transport} marker after ${signal}`);
        assert.deepEqual(seen, range(1, 13));
        assert.equal(c.state, 'connected');
        assert.equal(states.at(-1), 'connected');
        assert.equal(c.transportName, transport);
        c.close();
      });
    }
  }

  it('sse: the end of the body, without `event: close`, also reconnects at once', async () => {
    const h = await startTestServer();
    cleanups.push(() => h.stop());
    const states: string[] = [];
    const c = client({ url: h.url, token: ADMIN_KEY, transports: ['sse'], ...quick });
    c.on('state', (state) => states.push(state));
    const seen: number[] = [];
    c.subscribe('ended', { after: 0 }, (e) => seen.push(e.data as number));
    await publishRange(h, 'ended', 1, 3);
    await until(() => seen.length === 3, 5000, 'events 1-3');
    for (const stream of (h.sse as unknown as { streams: Set<{ res: { end(): void } }> }).streams) stream.res.end();
    await until(() => states.filter((s) => s === 'connected').length === 2, 5000, 'reconnected after the body ended');
    assert.deepEqual(states, ['connecting', 'connected', 'disconnected', 'connecting', 'connected']);
    await publishRange(h, 'ended', 4, 6);
    await until(() => seen.length >= 6, 5000, 'events 4-6');
    assert.deepEqual(seen, range(1, 6));
  });

  it("comes back after a restart on Node's own WebSocket, which fires error without close for a refused connection", async () => {
    const s = await spawned();
    const script = fileURLToPath(new URL('./node-websocket-client.ts', import.meta.url));
    const child = spawn(process.execPath, ['--experimental-websocket', '--import', 'tsx', script, s.url, CLI_ADMIN_KEY, 'native'], { stdio: ['pipe', 'pipe', 'inherit'] });
    cleanups.push(async () => void child.kill('SIGKILL'));
    const lines: Array<{ state?: string; data?: number }> = [];
    createInterface({ input: child.stdout! }).on('line', (line) => lines.push(JSON.parse(line) as { state?: string; data?: number }));
    const states = () => lines.flatMap((l) => (l.state ? [l.state] : []));
    const seen = () => lines.flatMap((l) => (l.data === undefined ? [] : [l.data]));
    await until(() => states().includes('connected'), 15_000, 'connected');
    await s.publish('native', 1, 2);
    await until(() => seen().length === 2, 5000, 'events 1-2');
    await s.stop('SIGKILL');
    // While the server is down every attempt is refused: before the fix the first left the client in 'connecting'.
    await until(() => states().filter((st) => st === 'connecting').length >= 3, 5000, 'attempts while the server is down');
    await s.start();
    await s.publish('native', 3, 4);
    await until(() => seen().length >= 4, 10_000, 'events 3-4 after the restart');
    assert.deepEqual(seen(), [1, 2, 3, 4]);
    assert.equal(states().at(-1), 'connected');
    child.stdin!.end();
  });

  it('behind a proxy that answers 502 while the server is down, stays on WebSocket: the 502 is no answer from the server', async () => {
    // What nginx answers for a stopped upstream: 502 to every request, the WebSocket handshake and /healthz included.
    const proxy = createHttpServer((_req, res) => res.writeHead(502, { 'content-type': 'text/html' }).end('<h1>502 Bad Gateway</h1>'));
    proxy.on('upgrade', (_req, socket) => socket.end('HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n'));
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => proxy.close(() => resolve())));
    const { port } = proxy.address() as AddressInfo;
    // fallbackAfter 1: a client that took the proxy's 502 for the server's answer would leave WebSocket at the first failure.
    const c = client({ url: `http://127.0.0.1:${port}`, token: ADMIN_KEY, fallbackAfter: 1, ...quick });
    const tried: string[] = [];
    c.on('state', (state, detail) => state === 'connecting' && tried.push(detail.transport!));
    c.subscribe('behind-proxy', () => {});
    await until(() => tried.length >= 5, 10_000, 'five attempts');
    assert.deepEqual([...new Set(tried)], ['websocket']);
  });

  it('comes back on WebSocket after a 3 s outage, with default options on Node', async () => {
    const s = await spawned();
    const connected: string[] = [];
    // fallbackAfter 1: a client that counted outage failures against WebSocket would leave it at once.
    const c = client({ url: s.url, token: CLI_ADMIN_KEY, fallbackAfter: 1, ...quick });
    c.on('state', (state, detail) => state === 'connected' && connected.push(detail.transport!));
    const seen: number[] = [];
    c.subscribe('outage', { after: 0 }, (e) => seen.push(e.data as number));
    await s.publish('outage', 1, 3);
    await until(() => seen.length === 3, 5000, 'events 1-3');
    await s.stop('SIGTERM');
    await sleep(3000);
    await s.start();
    await s.publish('outage', 4, 6);
    await until(() => seen.length >= 6, 10_000, 'events 4-6');
    assert.deepEqual(seen, range(1, 6));
    assert.deepEqual(connected, ['websocket', 'websocket']);
    assert.equal(c.transportName, 'websocket');
  });

  it('falls back when WebSocket is refused while HTTP answers, and returns to it once it works again', async () => {
    const h = await startTestServer();
    cleanups.push(() => h.stop());
    let refuse = false;
    let refused = 0;
    // A proxy that refuses WebSockets for a while.
    class SometimesWebSocket extends NodeWebSocket {
      constructor(url: string) {
        if (refuse) refused += 1;
        super(refuse ? url.replace(/:\d+\//, ':1/') : url);
      }
    }
    const connected: string[] = [];
    const c = client({ url: h.url, token: ADMIN_KEY, WebSocket: SometimesWebSocket as unknown as typeof WebSocket, fallbackAfter: 1, upgradeAfterMs: 500, ...quick });
    c.on('state', (state, detail) => state === 'connected' && connected.push(detail.transport!));
    const seen: number[] = [];
    c.subscribe('upgrade', { after: 0 }, (e) => seen.push(e.data as number));
    await publishRange(h, 'upgrade', 1, 3);
    await until(() => seen.length === 3, 5000, 'events 1-3');

    refuse = true;
    for (const session of (h.ws as unknown as { sessions: Set<{ ws: { terminate(): void } }> }).sessions) session.ws.terminate();
    await until(() => c.state === 'connected' && c.transportName === 'sse', 5000, 'fell back to SSE');
    await publishRange(h, 'upgrade', 4, 6);
    await until(() => seen.length >= 6, 5000, 'events 4-6 over SSE');
    // While WebSocket is still refused, the tries to go back fail quietly and SSE stays.
    const triedBefore = refused;
    await until(() => refused >= triedBefore + 2, 5000, 'two more tries to go back to WebSocket');
    assert.equal(c.transportName, 'sse');
    assert.equal(c.state, 'connected');

    refuse = false;
    await until(() => c.state === 'connected' && c.transportName === 'websocket', 10_000, 'back on WebSocket');
    await publishRange(h, 'upgrade', 7, 9);
    await until(() => seen.length >= 9, 5000, 'events 7-9 over WebSocket');
    await publishRange(h, 'upgrade', 10, 10);
    await until(() => seen.includes(10), 5000, 'the marker after 7-9');
    assert.deepEqual(seen, range(1, 10));
    assert.equal(connected[0], 'websocket');
    assert.equal(connected[1], 'sse');
    assert.equal(connected.at(-1), 'websocket');
  });

  it('on long polling with WebSocket still refused, moves up to SSE once SSE works again', async () => {
    const h = await startTestServer();
    cleanups.push(() => h.stop());
    // A proxy that refuses WebSockets throughout, and SSE streams for a while.
    class RefusedWebSocket extends NodeWebSocket {
      constructor(url: string) {
        super(url.replace(/:\d+\//, ':1/'));
      }
    }
    let blockSse = true;
    const proxied: typeof fetch = (input, init) =>
      blockSse && String(input).includes('/v1/stream?') ? Promise.resolve(new Response('bad gateway', { status: 502 })) : fetch(input, init);
    const connected: string[] = [];
    const c = client({ url: h.url, token: ADMIN_KEY, WebSocket: RefusedWebSocket as unknown as typeof WebSocket, fetch: proxied, fallbackAfter: 1, upgradeAfterMs: 300, ...quick });
    c.on('state', (state, detail) => state === 'connected' && connected.push(detail.transport!));
    const seen: number[] = [];
    c.subscribe('stepwise', { after: 0 }, (e) => seen.push(e.data as number));
    await until(() => c.state === 'connected' && c.transportName === 'poll', 5000, 'fell back to long polling');
    await publishRange(h, 'stepwise', 1, 3);
    await until(() => seen.length === 3, 5000, 'events 1-3 over polls');
    blockSse = false;
    // Before, only WebSocket was tried again, and the client stayed on polls for good.
    await until(() => c.state === 'connected' && c.transportName === 'sse', 10_000, 'up to SSE');
    await publishRange(h, 'stepwise', 4, 6);
    await until(() => seen.length >= 6, 5000, 'events 4-6 over SSE');
    assert.deepEqual(seen, range(1, 6));
    assert.deepEqual(connected, ['poll', 'sse']);
  });

  it('after the server says it is going away (1001), an attempt refused while it still answers does not count against WebSocket', async () => {
    const h = await startTestServer();
    cleanups.push(() => h.stop());
    let refuseNext = 0;
    // The first moments of a restart: the next attempt is refused while HTTP still answers; the one after works.
    class OnceRefusedWebSocket extends NodeWebSocket {
      constructor(url: string) {
        const refuse = refuseNext > 0;
        if (refuse) refuseNext -= 1;
        super(refuse ? url.replace(/:\d+\//, ':1/') : url);
      }
    }
    const connected: string[] = [];
    const c = client({ url: h.url, token: ADMIN_KEY, WebSocket: OnceRefusedWebSocket as unknown as typeof WebSocket, fallbackAfter: 1, ...quick });
    c.on('state', (state, detail) => state === 'connected' && connected.push(detail.transport!));
    const seen: number[] = [];
    c.subscribe('away', { after: 0 }, (e) => seen.push(e.data as number));
    await publishRange(h, 'away', 1, 2);
    await until(() => seen.length === 2, 5000, 'events 1-2');
    refuseNext = 1;
    for (const session of (h.ws as unknown as { sessions: Set<{ close(code: number, reason: string): void }> }).sessions) session.close(1001, 'server shutting down');
    await until(() => connected.length === 2, 5000, 'connected again');
    assert.equal(refuseNext, 0, 'the refused attempt was made');
    assert.deepEqual(connected, ['websocket', 'websocket'], 'still on WebSocket');
    await publishRange(h, 'away', 3, 3);
    await until(() => seen.length >= 3, 5000, 'event 3');
    assert.deepEqual(seen, range(1, 3));
  });

  it('on Node without a global WebSocket, default options use `ws` from the first attempt', async () => {
    const h = await startTestServer();
    cleanups.push(() => h.stop());
    const states: string[] = [];
    const c = client({ url: h.url, token: ADMIN_KEY, ...quick });
    c.on('state', (state, detail) => states.push(`${state}:${detail.transport}`));
    c.subscribe('node', () => {});
    await until(() => c.state === 'connected', 5000, 'connected');
    assert.deepEqual(states, ['connecting:websocket', 'connected:websocket']);
  });

  for (const transport of TRANSPORTS) {
    it(`${transport}: an epoch change (the data was wiped) is its own event, then the new history arrives from its start`, async () => {
      // A server whose log already holds n1..n5 under another epoch, to swap in for the first one.
      const wipedDir = mkdtempSync(join(tmpdir(), 'herald-sdk-epoch-'));
      const firstDir = mkdtempSync(join(tmpdir(), 'herald-sdk-epoch-'));
      cleanups.push(async () => {
        rmSync(wipedDir, { recursive: true, force: true });
        rmSync(firstDir, { recursive: true, force: true });
      });
      const other = await startTestServer({}, wipedDir);
      await publishRange(other, 'epochs', 1, 5, (i) => `n${i}`);
      await other.stop();

      const port = await freePort();
      let h = await startTestServer({ port }, firstDir);
      cleanups.push(() => h.stop());
      const c = client({ url: h.url, token: ADMIN_KEY, transports: [transport], ...quick });
      const log: string[] = [];
      const changes: EpochChange[] = [];
      c.on('epoch', (change) => {
        changes.push(change);
        log.push('epoch');
      });
      const sub = c.subscribe('epochs', { after: 0, onEpoch: () => log.push('onEpoch') }, (e) => log.push(String(e.data)));
      await publishRange(h, 'epochs', 1, 3, (i) => `o${i}`);
      await until(() => log.length === 3, 5000, 'old events');
      const oldEpoch = sub.epoch;
      assert.ok(oldEpoch, 'the subscription knows its epoch');

      await h.stop();
      const states: string[] = [];
      c.on('state', (state) => states.push(state));
      h = await startTestServer({ port }, wipedDir);
      await until(() => log.length >= 10, 10_000, `${transport}: epoch event and new history`);
      await publishRange(h, 'epochs', 6, 6, (i) => `n${i}`);
      await until(() => log.length >= 11, 5000, 'live event in the new epoch');
      await publishRange(h, 'epochs', 7, 7, (i) => `n${i}`);
      await until(() => log.includes('n7'), 5000, 'the marker after n6');
      assert.deepEqual(log, ['o1', 'o2', 'o3', 'onEpoch', 'epoch', 'n1', 'n2', 'n3', 'n4', 'n5', 'n6', 'n7']);
      assert.equal(changes.length, 1);
      assert.equal(changes[0]!.channel, 'epochs');
      assert.equal(changes[0]!.previous, oldEpoch);
      assert.equal(changes[0]!.position, 3);
      assert.notEqual(changes[0]!.current, oldEpoch);
      assert.equal(sub.epoch, changes[0]!.current);
      assert.equal(sub.position, 7);
      // One connection to the new server: the new history is read on it, not after one more reconnect.
      assert.equal(states.filter((state) => state === 'connected').length, 1, states.join(' '));
      c.close();
    });
  }
});

describe("@herald/client reads its channels' state with one request per connection (SSE, poll)", () => {
  const { client, cleanups } = suiteResources();
  const CHANNELS = Array.from({ length: 30 }, (_, i) => `state-${i}`);

  /** A fetch that counts the requests of each kind and, with `dropHeads`, answers as a server from before `heads`. */
  function counting(dropHeads: boolean) {
    const counts = { stateReads: 0, channelPages: 0 };
    const watched: typeof fetch = async (input, init) => {
      const url = new URL(String(input));
      const stateRead = url.pathname === '/v1/events' && url.searchParams.get('limit') === '1' && !url.searchParams.has('wait');
      if (stateRead) counts.stateReads += 1;
      if (url.pathname.startsWith('/v1/channels/')) counts.channelPages += 1;
      const res = await fetch(input, init);
      if (!stateRead || !dropHeads || !res.ok) return res;
      const { heads: _heads, ...older } = (await res.json()) as Record<string, unknown>;
      return new Response(JSON.stringify(older), { status: res.status, headers: res.headers });
    };
    return { counts, watched };
  }

  for (const transport of ['sse', 'poll'] as const) {
    for (const dropHeads of [false, true]) {
      it(`${transport}${dropHeads ? ', against a server that names no heads (a request per channel then)' : ''}: events from now on and from a position, nothing lost or repeated`, async () => {
        const h = await startTestServer();
        cleanups.push(() => h.stop());
        // History before the client subscribes: channels subscribed "from now on" must skip it, the others replay it.
        for (const channel of CHANNELS) await publishRange(h, channel, 1, 2);
        const { counts, watched } = counting(dropHeads);
        const c = client({ url: h.url, token: ADMIN_KEY, transports: [transport], fetch: watched, ...quick });
        const seen = new Map<string, number[]>(CHANNELS.map((channel) => [channel, []]));
        CHANNELS.forEach((channel, i) => {
          const handler = (e: { channel: string; data: unknown }) => seen.get(e.channel)!.push(e.data as number);
          if (i % 2 === 0) c.subscribe(channel, handler);
          else c.subscribe(channel, { after: 0 }, handler);
        });
        await until(() => c.state === 'connected', 5000, 'connected');
        for (const channel of CHANNELS) await publishRange(h, channel, 3, 3);
        await until(() => [...seen.values()].every((got) => got.at(-1) === 3), 10_000, 'event 3 on every channel');
        for (const [i, channel] of CHANNELS.entries()) assert.deepEqual(seen.get(channel), i % 2 === 0 ? [3] : [1, 2, 3], channel);
        if (dropHeads) {
          assert.equal(counts.channelPages, CHANNELS.length, 'each channel read on its own, as before');
        } else {
          assert.equal(counts.stateReads, 1, 'one request read every channel');
          assert.equal(counts.channelPages, 0, 'and no channel was read on its own');
        }
      });
    }
  }
});

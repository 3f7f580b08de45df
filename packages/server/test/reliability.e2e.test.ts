import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Database } from 'better-sqlite3';
import { encodeCursor } from '@herald/protocol';
import { ADMIN_KEY, BIN, startTestServer, type TestServer, until } from './helpers.js';
import { WsTestClient } from './ws-client.js';
import { TEST_POSTGRES_URL } from './support/postgres.js';
import { readStream } from './sse-client.js';
import type { SqliteEventStore } from '../src/store/sqlite/event-store.js';

/** The server's own SQLite connection: `max_page_count` is per connection, so the cap must be set on it. */
const dbOf = (h: TestServer) => (h.storage.events as unknown as { db: Database }).db;

/** Sends raw bytes and returns the whole answer the server writes before it closes. */
function rawRequest(url: string, text: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.end(text));
    let answer = '';
    socket.on('data', (d) => (answer += d.toString()));
    socket.on('close', () => resolve(answer));
    socket.on('error', (e) => (answer ? resolve(answer) : reject(e)));
  });
}

function jsonBodyOf(answer: string): any {
  return JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));
}

/** Runs the built CLI to completion. */
function herald(args: string[], env: Record<string, string | undefined> = {}) {
  const childEnv: Record<string, string | undefined> = { ...process.env, HERALD_ADMIN_KEY: undefined, HERALD_KEY: undefined, ...env };
  for (const k of Object.keys(childEnv)) if (childEnv[k] === undefined) delete childEnv[k];
  return spawnSync(process.execPath, [BIN, ...args], { env: childEnv as NodeJS.ProcessEnv, encoding: 'utf8', timeout: 60_000 });
}

/**
 * Starts `herald serve` with no admin key in the environment (or `adminKey` as HERALD_ADMIN_KEY); resolves with its
 * banner once it listens. `log` holds its warnings.
 */
async function serveOnce(dataDir: string, adminKey?: string): Promise<{ url: string; banner: string; log: string; stop: () => Promise<void> }> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.HERALD_ADMIN_KEY;
  delete env.HERALD_KEY;
  if (adminKey !== undefined) env.HERALD_ADMIN_KEY = adminKey;
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--data', dataDir, '--log-level', 'warn'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (log += chunk));
  let banner = '';
  const exited = new Promise((r) => child.once('exit', r));
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stderr! }).on('line', (line) => {
      banner += `${line}\n`;
      const m = /^Herald is listening on (\S+)/.exec(line);
      if (m) resolve(m[1]!);
    });
    void exited.then(() => reject(new Error(`herald exited: ${banner}`)));
  });
  // The banner ends with the poll curl line: wait for it, so every line before it is in `banner`.
  await until(() => banner.includes('/v1/channels/demo/events?after=0&wait=30'), 5000, 'the whole banner');
  return {
    url,
    get banner() {
      return banner;
    },
    get log() {
      return log;
    },
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

describe('reliability', () => {
  const servers: TestServer[] = [];
  const dirs: string[] = [];
  after(async () => {
    for (const s of servers) await s.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const start = async (settings: Record<string, unknown> = {}, dir?: string) => {
    const s = await startTestServer(settings, dir);
    servers.push(s);
    return s;
  };
  const tempDir = () => {
    const d = mkdtempSync(join(tmpdir(), 'herald-rel-'));
    dirs.push(d);
    return d;
  };

  describe('WebSocket errors carry the ref (item 5)', () => {
    it('echoes the ref on an unknown op, an invalid frame and a refused op', async () => {
      const h = await start();
      const ws = new WsTestClient(`${h.url.replace('http', 'ws')}/v1/ws?token=${ADMIN_KEY}`);
      await ws.opened;
      ws.send({ op: 'frobnicate', ref: 'r-unknown' });
      ws.send({ op: 'subscribe', channel: 'bad name!', ref: 'r-channel' });
      ws.send({ op: 'publish', channel: 'ok', ref: 'r-nodata' });
      ws.send({ op: 'subscribe', ref: 42 });
      ws.ws.send('not json');
      const errors = await ws.next('error', 5);
      assert.deepEqual(errors.map((e) => [e.ref, e.code]), [
        ['r-unknown', 'bad_request'],
        ['r-channel', 'invalid_channel'],
        ['r-nodata', 'bad_request'],
        [undefined, 'bad_request'],
        [undefined, 'invalid_json'],
      ]);
      ws.ws.close();
    });
  });

  describe('start-up (items 6, 10)', () => {
    it('a corrupt herald.db stops `herald serve` with exit 1 and a message naming the file', async () => {
      const dir = tempDir();
      const h = await startTestServer({}, dir);
      for (let i = 0; i < 50; i++) await h.call('POST', '/v1/channels/c/events', { body: { data: { n: i, pad: 'x'.repeat(2000) } } });
      await h.stop();
      const file = join(dir, 'herald.db');
      const bytes = readFileSync(file);
      // Keep the header page, scramble the tables' pages.
      for (let i = 4096; i < bytes.length; i++) bytes[i] = (i * 31) & 0xff;
      writeFileSync(file, bytes);
      const run = herald(['serve', '--port', '0', '--data', dir]);
      assert.equal(run.status, 1, run.stderr);
      assert.match(run.stderr, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is damaged`));
      assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
      assert.doesNotMatch(run.stderr, /listening/);
    });

    it('a busy port is one clear line and exit 1', async () => {
      const blocker: Server = createServer();
      await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
      const port = (blocker.address() as { port: number }).port;
      try {
        const run = herald(['serve', '--port', String(port), '--data', tempDir()], { HERALD_ADMIN_KEY: ADMIN_KEY });
        assert.equal(run.status, 1);
        assert.equal(run.stderr.trim(), `herald serve: port ${port} is in use: pick another with --port or HERALD_PORT`);
      } finally {
        blocker.close();
      }
    });

    it("a busy metrics port is named as the metrics listener's, not the API port", async () => {
      const blocker: Server = createServer();
      await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
      const port = (blocker.address() as { port: number }).port;
      try {
        const run = herald(['serve', '--port', '0', '--data', tempDir()], { HERALD_ADMIN_KEY: ADMIN_KEY, HERALD_METRICS_PORT: String(port) });
        assert.equal(run.status, 1);
        // Before: "port <the API port> is in use: pick another with --port or HERALD_PORT".
        assert.equal(run.stderr.trim(), `herald serve: port ${port} is in use: pick another with metrics.port or HERALD_METRICS_PORT`);
      } finally {
        blocker.close();
      }
    });

    it('a HERALD_ variable that names no setting is logged, with the setting it is nearest to', async () => {
      const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--data', tempDir()], {
        env: { ...process.env, HERALD_ADMIN_KEY: ADMIN_KEY, HERALD_LIMITS_BODY_BYTEZ: '10' },
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      const exited = once(child, 'exit');
      let stdout = '';
      child.stdout!.on('data', (d) => (stdout += d));
      try {
        await until(() => stdout.includes('"msg":"herald listening"'), 10_000, 'the server up');
        const line = stdout.split('\n').find((l) => l.includes('ignored environment variable'));
        assert.ok(line, stdout);
        assert.match(line, /"level":40/);
        assert.match(line, /ignored environment variable HERALD_LIMITS_BODY_BYTEZ: no setting has that name \(did you mean HERALD_LIMITS_BODY_BYTES\?\)/);
      } finally {
        child.kill('SIGTERM');
        await exited;
      }
    });

    it('a host that names no address, or one this machine does not have, is one clear line and exit 1', () => {
      // Before, a name that does not resolve was Node's raw "getaddrinfo ENOTFOUND" line.
      const unknown = herald(['serve', '--port', '0', '--host', 'no-such-host.invalid', '--data', tempDir()], { HERALD_ADMIN_KEY: ADMIN_KEY });
      assert.equal(unknown.status, 1);
      assert.equal(unknown.stderr.trim(), 'herald serve: cannot bind no-such-host.invalid: the name does not resolve to an address (--host or HERALD_HOST)');
      const absent = herald(['serve', '--port', '0', '--host', '192.0.2.1', '--data', tempDir()], { HERALD_ADMIN_KEY: ADMIN_KEY });
      assert.equal(absent.status, 1);
      assert.equal(absent.stderr.trim(), 'herald serve: cannot bind 192.0.2.1: no such address on this machine (--host or HERALD_HOST)');
    });

    it('a PostgreSQL store that refuses the login is one line with what PostgreSQL said, the password left out', () => {
      // A database name with a typo: before, only "The store cannot be reached; nothing was written. Retry later."
      const url = new URL(TEST_POSTGRES_URL);
      url.password = 'hunter2';
      url.pathname = '/herald_no_such_database';
      const run = herald(['serve', '--port', '0', '--store', url.toString()], { HERALD_ADMIN_KEY: ADMIN_KEY });
      assert.equal(run.status, 1, run.stderr);
      url.password = '***';
      assert.equal(run.stderr.trim(), `herald serve: PostgreSQL at ${url.toString()} cannot be used: database "herald_no_such_database" does not exist`);
    });
  });

  describe('disk full (item 7)', () => {
    it('answers 503 store_unavailable with Retry-After, /readyz 503, and recovers when there is room', async () => {
      const h = await start();
      assert.equal((await h.call('POST', '/v1/channels/full/events', { body: { data: 1 } })).status, 201);
      const db = dbOf(h);
      const pages = db.pragma('page_count', { simple: true }) as number;
      db.pragma(`max_page_count = ${pages}`);
      let res;
      for (let i = 0; i < 200; i++) {
        res = await h.call('POST', '/v1/channels/full/events', { body: { data: { pad: 'y'.repeat(8000) } } });
        if (res.status !== 201) break;
      }
      assert.equal(res!.status, 503, JSON.stringify(res!.body));
      assert.equal(res!.body.error.code, 'store_unavailable');
      assert.equal(res!.body.error.details.reason, 'disk_full');
      assert.ok(Number(res!.headers.get('retry-after')) > 0);
      const ready = await h.call('GET', '/readyz');
      assert.equal(ready.status, 503);
      assert.equal(ready.body.error.details.store, 'full');
      // A WebSocket publish says the same.
      const ws = new WsTestClient(`${h.url.replace('http', 'ws')}/v1/ws?token=${ADMIN_KEY}`);
      await ws.opened;
      ws.send({ op: 'publish', channel: 'full', ref: 'p1', data: { pad: 'z'.repeat(8000) } });
      const [wsError] = await ws.next('error');
      assert.deepEqual([wsError.ref, wsError.code], ['p1', 'store_unavailable']);
      ws.ws.close();
      const headBefore = (await h.call('GET', '/v1/channels/full/events?after=0&limit=1000')).body.head;

      db.pragma('max_page_count = 1073741823');
      // /readyz probes with a write of its own, so it turns ready without waiting for traffic.
      assert.equal((await h.call('GET', '/readyz')).status, 200);
      const next = await h.call('POST', '/v1/channels/full/events', { body: { data: 'again' } });
      assert.equal(next.status, 201);
      assert.equal(next.body.seq, headBefore + 1, 'no seq was burnt by the failed appends');
    });
  });

  describe('multi-channel SSE ids and framework errors (item 8)', () => {
    it('ids are small, independent of channel-name length, and resume; the v1 cursor and ?after=0 still work', async () => {
      const h = await start();
      const channels = Array.from({ length: 100 }, (_, i) => `${String(i).padStart(3, '0')}-${'n'.repeat(60)}`);
      for (const c of channels) await h.call('POST', `/v1/channels/${c}/events`, { body: { data: c.slice(0, 3) } });
      const query = channels.map((c) => `channel=${c}`).join('&');
      const url = `${h.url}/v1/stream?${query}&token=${ADMIN_KEY}`;
      const all = await readStream(`${url}&after=0`, {}, (t) => (t.match(/^data: /gm) ?? []).length >= 100);
      assert.equal(all.res.status, 200);
      const ids = [...all.text.matchAll(/^id: (.*)$/gm)].map((m) => m[1]!);
      assert.equal(ids.length, 100);
      const last = ids.at(-1)!;
      assert.ok(last.length < 400, `id is ${last.length} characters`);
      // Resume from an id in the middle: exactly the rest.
      const mid = ids[49]!;
      const rest = await readStream(url, { headers: { 'last-event-id': mid } }, (t) => (t.match(/^data: /gm) ?? []).length >= 50, 3000);
      const got = [...rest.text.matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1]!).channel);
      assert.deepEqual(got, channels.slice(50));
      // The v1 cursor (channel names inside) is still accepted on resume.
      const few = channels.slice(0, 3);
      const v1 = encodeCursor(new Map(few.map((c, i) => [c, i < 1 ? 1 : 0])));
      const fewUrl = `${h.url}/v1/stream?${few.map((c) => `channel=${c}`).join('&')}&token=${ADMIN_KEY}`;
      const old = await readStream(`${fewUrl}&lastEventId=${v1}`, {}, (t) => (t.match(/^data: /gm) ?? []).length >= 2, 3000);
      assert.deepEqual([...old.text.matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1]!).channel), few.slice(1));
      // An id issued for another channel list is refused, not misapplied.
      const other = await h.call('GET', `/v1/stream?${channels.slice(1).map((c) => `channel=${c}`).join('&')}&lastEventId=${last}`);
      assert.equal(other.status, 400);
      assert.equal(other.body.error.code, 'invalid_cursor');
    });

    it('431, 414, a bad URL, Node’s own 400, a missing Host and a CONNECT are JSON errors in Herald’s shape', async () => {
      const h = await start();
      const big = await rawRequest(h.url, `GET /v1/stream?channel=a HTTP/1.1\r\nHost: x\r\nLast-Event-ID: ${'x'.repeat(20_000)}\r\n\r\n`);
      assert.match(big, /^HTTP\/1\.1 431 /);
      assert.equal(jsonBodyOf(big).error.code, 'headers_too_large');
      const garbage = await rawRequest(h.url, 'NOT HTTP AT ALL\r\n\r\n');
      assert.match(garbage, /^HTTP\/1\.1 400 /);
      assert.equal(jsonBodyOf(garbage).error.code, 'bad_request');
      // HTTP/1.1 without Host (RFC 9112 §3.2), and a CONNECT: Node answered the first with an empty 400 and closed the
      // second without a word.
      const noHost = await rawRequest(h.url, 'GET /healthz HTTP/1.1\r\n\r\n');
      assert.match(noHost, /^HTTP\/1\.1 400 /);
      assert.match(jsonBodyOf(noHost).error.message, /needs a Host header/);
      assert.match(await rawRequest(h.url, 'GET /healthz HTTP/1.0\r\n\r\n'), /^HTTP\/1\.1 200 /, 'HTTP/1.0 has no Host to require');
      const tunnel = await rawRequest(h.url, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
      assert.match(tunnel, /^HTTP\/1\.1 400 /);
      assert.match(jsonBodyOf(tunnel).error.message, /not a proxy/);
      const badUrl = await h.call('GET', '/v1/channels/%E0%A4%A/events');
      assert.equal(badUrl.status, 400);
      assert.equal(badUrl.body.error.code, 'bad_request');
      const longParam = await h.call('GET', `/v1/channels/${'a'.repeat(2000)}/events`);
      assert.equal(longParam.status, 414);
      assert.equal(longParam.body.error.code, 'uri_too_long');
      assert.ok(longParam.body.error.message.length < 200, `the answer does not echo the path: ${longParam.body.error.message.length} characters`);
    });
  });

  describe('many channels (item 9)', () => {
    it('channels evicted from memory keep their seqs and heads, through appends and trims', async () => {
      const h = await start({ store: { channelCache: 3 }, retention: { maxEvents: 5 } });
      const store = h.storage.events as SqliteEventStore;
      const names = Array.from({ length: 12 }, (_, i) => `ev${i}`);
      for (let round = 1; round <= 8; round++) {
        for (const c of names) {
          const res = await h.call('POST', `/v1/channels/${c}/events`, { body: { data: round } });
          assert.equal(res.body.seq, round, `${c} round ${round}`);
        }
      }
      assert.ok(store.cachedChannels <= 3, `${store.cachedChannels} entries cached`);
      await h.trimmer.runOnce();
      assert.ok(store.cachedChannels <= 3, `${store.cachedChannels} entries cached after a retention pass`);
      for (const c of names) {
        const page = await h.call('GET', `/v1/channels/${c}/events?after=0`);
        assert.equal(page.body.head, 8);
        assert.equal(page.body.truncated, true, 'trimmed history is reported, also for an evicted channel');
        assert.deepEqual(page.body.events.map((e: { seq: number }) => e.seq), [4, 5, 6, 7, 8]);
        const next = await h.call('POST', `/v1/channels/${c}/events`, { body: { data: 'after' } });
        assert.equal(next.body.seq, 9);
      }
    });

    it('a retention pass over many channels lets other work run', async () => {
      const h = await start({ store: { channelCache: 100 } });
      const batch = (from: number) => ({ events: Array.from({ length: 1000 }, (_, i) => ({ channel: `many${from + i}`, data: 1 })) });
      for (let i = 0; i < 20_000; i += 1000) assert.equal((await h.call('POST', '/v1/events', { body: batch(i) })).status, 201);
      let ticks = 0;
      let passing = true;
      const tick = () => {
        ticks++;
        if (passing) setImmediate(tick);
      };
      setImmediate(tick);
      await h.trimmer.runOnce();
      passing = false;
      // Without yielding, the whole pass runs in one turn and the tick above runs once at most.
      assert.ok(ticks > 3, `other work ran ${ticks} times during the pass`);
    });
  });

  describe('input checks (item 10)', () => {
    it('refuses non-finite waits, names a __proto__ key, and the secret message reads well', async () => {
      const h = await start();
      for (const wait of ['Infinity', '-Infinity', '1e400']) {
        const one = await h.call('GET', `/v1/channels/w/events?wait=${wait}`);
        assert.equal(one.status, 400, wait);
        assert.match(one.body.error.message, /wait/);
        const multi = await h.call('GET', `/v1/events?channel=w&wait=${wait}`);
        assert.equal(multi.status, 400, wait);
      }
      const poisoned = await h.call('POST', '/v1/channels/w/events', { raw: '{"data":{"a":{"__proto__":{"admin":true}}}}' });
      assert.equal(poisoned.status, 400);
      assert.match(poisoned.body.error.message, /"__proto__" at body\.data\.a\.__proto__/);
      // Nested far deeper than the call stack, with an escape that makes the poisoning walk run: the depth limit answers.
      const deep = await h.call('POST', '/v1/channels/w/events', { raw: `{"data":${'['.repeat(100_000)}"\\u0041"${']'.repeat(100_000)}}` });
      assert.equal(deep.status, 400, JSON.stringify(deep.body).slice(0, 300));
      assert.equal(deep.body.error.code, 'payload_too_deep');
      const syntax = await h.call('POST', '/v1/channels/w/events', { raw: '{"data":' });
      assert.equal(syntax.body.error.code, 'invalid_json');
      // A GitHub secret is not base64: switching the endpoint to Standard Webhooks is refused, in plain words.
      const endpoint = await h.call('POST', '/v1/endpoints', {
        body: { url: 'https://1.1.1.1/hook', channels: ['w'], scheme: 'github', secret: 'github-secret-with-dashes-0123456789' },
      });
      assert.equal(endpoint.status, 201, JSON.stringify(endpoint.body));
      const patched = await h.call('PATCH', `/v1/endpoints/${endpoint.body.id}`, { body: { scheme: 'standard' } });
      assert.equal(patched.status, 422, JSON.stringify(patched.body));
      assert.equal(patched.body.error.message, 'Unusable secret: The secret is not base64 (nor whsec_, whsk_ or whpk_ followed by base64).');
    });
  });

  describe('the admin key (item 11)', () => {
    it('later banners say how to get the key; admin-key reset prints a working new one; the CLI reads HERALD_ADMIN_KEY', async () => {
      const dir = tempDir();
      const first = await serveOnce(dir);
      const key = /Admin key \(shown once; only its hash is stored\): (\S+)/.exec(first.banner)?.[1];
      assert.ok(key, first.banner);
      await first.stop();

      const second = await serveOnce(dir);
      assert.doesNotMatch(second.banner, /shown once/);
      assert.match(second.banner, /herald admin-key reset/);
      await second.stop();

      const reset = herald(['admin-key', 'reset', '--data', dir]);
      assert.equal(reset.status, 0, reset.stderr);
      const fresh = reset.stdout.trim();
      assert.ok(fresh.length > 20 && fresh !== key);

      const third = await serveOnce(dir);
      try {
        const publish = (k: string) =>
          fetch(`${third.url}/v1/channels/demo/events`, { method: 'POST', headers: { authorization: `Bearer ${k}`, 'content-type': 'application/json' }, body: '{"data":1}' });
        assert.equal((await publish(fresh)).status, 201);
        assert.equal((await publish(key!)).status, 401);
        // The CLI falls back to HERALD_ADMIN_KEY when HERALD_KEY is unset.
        const cli = herald(['publish', 'demo', '{"n":2}', '--url', third.url], { HERALD_ADMIN_KEY: fresh });
        assert.equal(cli.status, 0, cli.stderr);
      } finally {
        await third.stop();
      }
    });

    it('admin-key reset beside the running server: it takes the new key within seconds and refuses the old', async () => {
      const dir = tempDir();
      const running = await serveOnce(dir);
      try {
        const key = /Admin key \(shown once; only its hash is stored\): (\S+)/.exec(running.banner)![1]!;
        const status = async (k: string) => (await fetch(`${running.url}/v1/keys`, { headers: { authorization: `Bearer ${k}` } })).status;
        assert.equal(await status(key), 200);
        const reset = herald(['admin-key', 'reset', '--data', dir]);
        assert.equal(reset.status, 0, reset.stderr);
        const fresh = reset.stdout.trim();
        await until(async () => (await status(fresh)) === 200, 10_000, 'the new key taken');
        assert.equal(await status(key), 401, 'the old key, remembered as the admin, refused');
      } finally {
        await running.stop();
      }
    });

    it('admin-key reset names a running server started with HERALD_ADMIN_KEY, which keeps that key and logs why', async () => {
      const dir = tempDir();
      const configured = 'configured-admin-key-0123456789';
      const running = await serveOnce(dir, configured);
      try {
        const status = async (k: string) => (await fetch(`${running.url}/v1/keys`, { headers: { authorization: `Bearer ${k}` } })).status;
        const nodes = await (await fetch(`${running.url}/v1/nodes`, { headers: { authorization: `Bearer ${configured}` } })).json();
        assert.deepEqual(nodes.nodes.map((n: { adminKey: string }) => n.adminKey), ['config']);
        const reset = herald(['admin-key', 'reset', '--data', dir]);
        assert.equal(reset.status, 0, reset.stderr);
        assert.match(reset.stderr, new RegExp(`WARNING: node ${nodes.self} takes its admin key from HERALD_ADMIN_KEY .* still accepts the old key`));
        const fresh = reset.stdout.trim();
        await until(() => running.log.includes('still accepts that one'), 10_000, 'the server to log that it keeps its configured key');
        assert.equal(await status(configured), 200);
        assert.equal(await status(fresh), 401);
      } finally {
        await running.stop();
      }
      // With the server stopped, nothing keeps the old key: no warning.
      const again = herald(['admin-key', 'reset', '--data', dir]);
      assert.equal(again.status, 0, again.stderr);
      assert.doesNotMatch(again.stderr, /WARNING/);
    });

    it('admin-key reset refuses a data directory that holds no Herald data, and creates nothing there', async () => {
      const dir = join(tempDir(), 'mistyped');
      const reset = herald(['admin-key', 'reset', '--data', dir]);
      assert.equal(reset.status, 1, reset.stderr);
      assert.equal(reset.stdout, '');
      assert.match(reset.stderr, /holds no Herald data/);
      assert.equal(existsSync(dir), false);
    });
  });

  describe('README items (item 12)', () => {
    it('?after=0 starts a multi-channel stream at the beginning of every channel', async () => {
      const h = await start();
      await h.call('POST', '/v1/channels/z1/events', { body: { data: 1 } });
      await h.call('POST', '/v1/channels/z2/events', { body: { data: 2 } });
      const { res, text } = await readStream(`${h.url}/v1/stream?channel=z1&channel=z2&after=0&token=${ADMIN_KEY}`, {}, (t) => (t.match(/^data: /gm) ?? []).length >= 2);
      assert.equal(res.status, 200);
      assert.deepEqual([...text.matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1]!).channel).sort(), ['z1', 'z2']);
      const bad = await h.call('GET', '/v1/stream?channel=z1&after=5');
      assert.equal(bad.status, 400);
    });
  });
});

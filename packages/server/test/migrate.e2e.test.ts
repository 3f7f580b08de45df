// `herald migrate`: a SQLite deployment built through the HTTP API is copied into a fresh PostgreSQL database
// by the built CLI, then served from PostgreSQL and checked through the API and row by row.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { sign, verify } from '@herald/webhooks';
import { BIN, eventually, startTestServer } from './helpers.js';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';
import { HookReceiver } from './support/receiver.js';
import { openSqliteStorage } from '../src/store/sqlite/open.js';

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

function runMigrate(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const child = spawn(process.execPath, [BIN, 'migrate', ...args], {
    env: { ...process.env, HERALD_STORE_URL: '', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal, stderr })));
}


type Rows = Array<Record<string, unknown>>;
interface Dump {
  settings: Rows;
  channels: Rows;
  events: Rows;
  idempotency: Rows;
  keys: Rows;
  sources: Rows;
  endpoints: Rows;
  cursors: Rows;
  deliveries: Rows;
  attempts: Rows;
}

const byKeys = (...keys: string[]) => (a: Record<string, unknown>, b: Record<string, unknown>) => {
  for (const k of keys) {
    const x = a[k] as string | number;
    const y = b[k] as string | number;
    if (x < y) return -1;
    if (x > y) return 1;
  }
  return 0;
};

/** Every row of a SQLite deployment that the migration must carry, in a backend-neutral shape. */
function dumpSqlite(dataDir: string): Dump {
  const db = new BetterSqlite3(join(dataDir, 'herald.db'), { readonly: true });
  try {
    const all = (sql: string) => db.prepare(sql).all() as Rows;
    return {
      settings: all('SELECT name, value FROM settings').sort(byKeys('name')),
      channels: all(
        `SELECT name, epoch, trimmed, MAX(trimmed, COALESCE((SELECT MAX(seq) FROM events e WHERE e.cid = c.cid), 0)) AS head FROM channels c`,
      ).sort(byKeys('name')),
      events: all('SELECT c.name AS channel, e.seq, e.id, e.type, e.time, e.data, e.meta FROM events e JOIN channels c USING (cid)').sort(byKeys('channel', 'seq')),
      idempotency: all('SELECT key, ids, created FROM idempotency').sort(byKeys('key')),
      keys: all('SELECT id, name, hash, prefix, scopes, channels, created, revoked FROM api_keys').sort(byKeys('id')),
      sources: all('SELECT name, provider, channel, tolerance, secrets, created FROM sources').sort(byKeys('name')),
      endpoints: all('SELECT id, record, tenant FROM endpoints').sort(byKeys('id')),
      cursors: all('SELECT channel, seq FROM delivery_cursors').sort(byKeys('channel')),
      deliveries: all('SELECT * FROM deliveries')
        .map((r) => ({ ...r, final_attempt: r.final_attempt === 1 }))
        .sort(byKeys('n')),
      attempts: all('SELECT rowid AS n, delivery, at, status_code, duration_ms, error, response_body FROM attempts').sort(byKeys('n')),
    };
  } finally {
    db.close();
  }
}

const INT8 = 20;
async function dumpPostgres(url: string): Promise<Dump> {
  const client = new pg.Client({
    connectionString: url,
    types: { getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === INT8 ? Number : pg.types.getTypeParser(oid, format))) as typeof pg.types.getTypeParser },
  });
  await client.connect();
  try {
    const all = async (sql: string) => (await client.query(sql)).rows as Rows;
    return {
      settings: (await all("SELECT name, value FROM settings WHERE name <> 'herald.migrate'")).sort(byKeys('name')),
      channels: (await all('SELECT name, epoch, trimmed, head FROM channels')).sort(byKeys('name')),
      events: (await all('SELECT c.name AS channel, e.seq, e.id, e.type, e.time, e.data, e.meta FROM events e JOIN channels c USING (cid)')).sort(
        byKeys('channel', 'seq'),
      ),
      idempotency: (await all('SELECT key, ids, created FROM idempotency')).sort(byKeys('key')),
      keys: (await all('SELECT id, name, hash, prefix, scopes, channels, created, revoked FROM api_keys')).sort(byKeys('id')),
      sources: (await all('SELECT name, provider, channel, tolerance, secrets, created FROM sources')).sort(byKeys('name')),
      endpoints: (await all('SELECT id, record, tenant FROM endpoints')).sort(byKeys('id')),
      cursors: (await all('SELECT channel, seq FROM delivery_cursors')).sort(byKeys('channel')),
      deliveries: (await all('SELECT * FROM deliveries')).sort(byKeys('n')),
      attempts: (await all('SELECT n, delivery, at, status_code, duration_ms, error, response_body FROM attempts')).sort(byKeys('n')),
    };
  } finally {
    await client.end();
  }
}

// Every assert.ok here has a message: without one, a failing assert.ok makes node:assert re-parse this file to
// describe the expression, which takes seconds under tsx, and inside an eventually() loop stalls the process.
const LOOPBACK = ['127.0.0.0/8'];
const SETTINGS = {
  // One retry 4 s (±20%) after the first attempt: A fails for good in the fixture, B and C are caught in between.
  delivery: { allowPrivateNetworks: LOOPBACK, retrySchedule: [4] },
  // The fixture's endpoint belongs to a tenant, whose deliveries follow the portal's network rules.
  portal: { allowPrivateNetworks: LOOPBACK },
  retention: { rules: [{ channels: ['trimmed'], maxEvents: 5 }] },
};
const STRIPE_SECRET = 'whsec_migrate_' + 'm'.repeat(24);
const CHANNELS = ['orders', 'users:1', 'trimmed', 'in:pay', 'hooks', 'never-used'];

describe('herald migrate (SQLite → PostgreSQL)', { timeout: 600_000 }, () => {
  const dirs: string[] = [];
  const databases: TestDatabase[] = [];
  const tempDir = () => {
    const d = mkdtempSync(join(tmpdir(), 'herald-migrate-'));
    dirs.push(d);
    return d;
  };
  const database = async () => {
    const db = await createTestDatabase('herald_migrate');
    databases.push(db);
    return db;
  };

  let dataDir: string;
  let receiver: HookReceiver;
  let keyA: string;
  let revokedKey: string;
  let token: string;
  let endpoint: { id: string; secret: string };
  const polls = new Map<string, unknown>();
  let deliveriesBefore: Array<{ id: string; eventId: string; status: string; attempts: number }>;
  let failedAttempts: unknown;
  const ids: Record<string, string> = {};

  before(async () => {
    // Fails until told to succeed.
    receiver = new HookReceiver();
    receiver.status = 503;
    await receiver.start();
    dataDir = tempDir();
    const h = await startTestServer(SETTINGS, dataDir);
    try {
      const publish = async (channel: string, body: unknown, headers?: Record<string, string>) => {
        const res = await h.call('POST', `/v1/channels/${encodeURIComponent(channel)}/events`, { body, headers });
        assert.equal(res.status, 201, JSON.stringify(res.body));
        return res.body;
      };
      const batch = (channel: string, n: number, type: string) =>
        h.call('POST', '/v1/events', { body: { events: Array.from({ length: n }, (_, i) => ({ channel, type, data: { i, text: `é ${i} ✓` } })) } });
      assert.equal((await batch('orders', 30, 'order.created')).status, 201);
      await publish('users:1', { type: 'user.seen', data: { at: 1 } });
      await publish('users:1', { type: 'user.keyed', data: { keyed: true } }, { 'idempotency-key': 'k-1' });
      ids.custom = (await publish('users:1', { id: 'evt_custom_1', type: 'user.custom', data: null })).id;
      assert.equal((await batch('trimmed', 20, 'tick')).status, 201);
      await h.trimmer.runOnce();

      assert.equal((await h.call('POST', '/v1/sources', { body: { name: 'pay', provider: 'stripe', secrets: [STRIPE_SECRET], channel: 'in:pay' } })).status, 201);
      const stripeBody = JSON.stringify({ id: 'evt_S1', type: 'charge.succeeded', data: { object: { amount: 5 } } });
      const ingest = await fetch(`${h.url}/v1/ingest/pay`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...sign('stripe', { secret: STRIPE_SECRET, body: stripeBody }) },
        body: stripeBody,
      });
      assert.equal(ingest.status, 200);

      keyA = await h.createKey(['publish', 'subscribe'], ['orders', 'users:*']);
      const revoked = await h.call('POST', '/v1/keys', { body: { name: 'old', scopes: ['subscribe'], channels: ['orders'] } });
      revokedKey = revoked.body.key;
      assert.ok((await h.call('DELETE', `/v1/keys/${revoked.body.id}`)).status < 300, 'revoked');
      const minted = await h.call('POST', '/v1/tokens', { body: { sub: 'u1', channels: ['users:1'], ttl: 3600 }, token: keyA });
      assert.equal(minted.status, 201, JSON.stringify(minted.body));
      token = minted.body.token;

      const created = await h.call('POST', '/v1/endpoints', { body: { url: receiver.url, channels: ['hooks'], tenant: 'acme' } });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      endpoint = created.body;
      ids.A = (await publish('hooks', { type: 'hook', data: 'A' })).id;
      // Two attempts ~4 s apart, then failed: in the delivery log with its attempts.
      await eventually(async () => {
        const failed = (await h.call('GET', `/v1/endpoints/${endpoint.id}/deliveries?status=failed`)).body.deliveries;
        assert.equal(failed.length, 1);
      }, 10_000);
      ids.B = (await publish('hooks', { type: 'hook', data: 'B' })).id;
      ids.C = (await publish('hooks', { type: 'hook', data: 'C' })).id;
      // One failed attempt each, the next due in ~4 s: pending when the server stops.
      await eventually(async () => {
        const pending = (await h.call('GET', `/v1/endpoints/${endpoint.id}/deliveries?status=pending`)).body.deliveries;
        assert.deepEqual(pending.map((d: { attempts: number }) => d.attempts), [1, 1]);
      }, 10_000);

      for (const channel of CHANNELS) polls.set(channel, (await h.call('GET', `/v1/channels/${encodeURIComponent(channel)}/events?after=0&limit=1000`)).body);
      deliveriesBefore = (await h.call('GET', `/v1/endpoints/${endpoint.id}/deliveries`)).body.deliveries;
      const failedOne = deliveriesBefore.find((d) => d.eventId === ids.A)!;
      failedAttempts = (await h.call('GET', `/v1/deliveries/${failedOne.id}/attempts`)).body;
    } finally {
      await h.stop();
    }
  });

  after(async () => {
    await receiver?.stop();
    for (const db of databases) await db.drop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('copies every row, and a server on PostgreSQL carries on where SQLite stopped', async () => {
    const sqlite = dumpSqlite(dataDir);
    assert.ok((sqlite.channels.find((c) => c.name === 'trimmed')?.trimmed as number) === 15, 'the fixture has trimmed history');
    assert.equal(sqlite.deliveries.length, 3);

    const db = await database();
    const run = await runMigrate(['--from', dataDir, '--to', db.url]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /migrate: done in/);
    assert.match(run.stderr, /events\s+\d+/);
    assert.deepEqual(await dumpPostgres(db.url), sqlite);
    // Every copied key replays by position (PostgreSQL schema 4): none is left without, each lists its events.
    const target = new pg.Client({ connectionString: db.url });
    await target.connect();
    try {
      const keys = (await target.query("SELECT key, positions, (SELECT cid FROM channels WHERE name = 'users:1') AS cid FROM idempotency")).rows;
      assert.ok(keys.length > 0);
      assert.deepEqual(keys.filter((k) => k.positions === null).map((k) => k.key), []);
      const k1 = keys.find((k) => (JSON.parse(k.key) as string[]).at(-1) === 'k-1')!;
      assert.deepEqual(JSON.parse(k1.positions), [[k1.cid, 2]]);
    } finally {
      await target.end();
    }

    receiver.status = 200;
    const h = await startTestServer({ ...SETTINGS, store: { url: db.url } });
    try {
      // Same events, seqs, epochs, trim marks; the epoch of a channel never used is the store's, also kept.
      for (const channel of CHANNELS) {
        const now = (await h.call('GET', `/v1/channels/${encodeURIComponent(channel)}/events?after=0&limit=1000`)).body;
        assert.deepEqual(now, polls.get(channel), channel);
      }
      const trimmed = polls.get('trimmed') as { truncated: boolean; events: Array<{ seq: number }> };
      assert.equal(trimmed.truncated, true);
      assert.equal(trimmed.events[0]!.seq, 16);

      // The old API key still works, and appends continue the seqs; the revoked one stays revoked.
      const next = await h.call('POST', '/v1/channels/orders/events', { body: { type: 'order.created', data: 31 }, token: keyA });
      assert.equal(next.status, 201);
      assert.equal(next.body.seq, 31);
      assert.equal((await h.call('GET', '/v1/channels/orders/events?after=29', { token: keyA })).body.events.length, 2);
      assert.equal((await h.call('GET', '/v1/channels/orders/events', { token: revokedKey })).status, 401);

      // The old token verifies (same token secret) and still grants only what it did.
      assert.equal((await h.call('GET', '/v1/channels/users:1/events', { token })).status, 200);
      assert.equal((await h.call('GET', '/v1/channels/orders/events', { token })).status, 403);

      // Idempotency keys and event ids still dedupe.
      const replay = await h.call('POST', '/v1/channels/users:1/events', { body: { type: 'user.keyed', data: { keyed: true } }, headers: { 'idempotency-key': 'k-1' } });
      assert.equal(replay.status, 200);
      assert.equal(replay.body.seq, 2);
      const sameId = await h.call('POST', '/v1/channels/users:1/events', { body: { id: ids.custom, type: 'user.custom', data: null } });
      assert.equal(sameId.status, 200);
      assert.equal(sameId.body.seq, 3);

      // The source verifies with its old secret; the provider's retry of an already ingested event is deduped.
      const ingest = async (body: string) =>
        (
          await fetch(`${h.url}/v1/ingest/pay`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', ...sign('stripe', { secret: STRIPE_SECRET, body }) },
            body,
          })
        ).json() as Promise<{ duplicate: boolean; event: { seq: number } }>;
      const again = await ingest(JSON.stringify({ id: 'evt_S1', type: 'charge.succeeded', data: { object: { amount: 5 } } }));
      assert.equal(again.duplicate, true);
      const fresh = await ingest(JSON.stringify({ id: 'evt_S2', type: 'charge.succeeded', data: { object: { amount: 6 } } }));
      assert.equal(fresh.duplicate, false);
      assert.equal(fresh.event.seq, 2);

      // The pending deliveries go out, signed with the endpoint's old secret; the failed one stays in the log as it was.
      await eventually(async () => {
        const done = (await h.call('GET', `/v1/endpoints/${endpoint.id}/deliveries?status=succeeded`)).body.deliveries;
        assert.equal(done.length, 2);
      }, 15_000);
      const succeeded = receiver.hooks.filter((r) => [ids.B, ids.C].includes(String(r.headers['webhook-id'])));
      assert.ok(succeeded.length >= 4, 'B and C: one failed attempt each on SQLite, then delivered from PostgreSQL');
      for (const r of succeeded) assert.equal(verify('standard', { secret: endpoint.secret, headers: r.headers, body: r.body }).ok, true);
      const after = (await h.call('GET', `/v1/endpoints/${endpoint.id}/deliveries`)).body.deliveries as typeof deliveriesBefore;
      assert.deepEqual(after.map((d) => d.id).sort(), deliveriesBefore.map((d) => d.id).sort(), 'delivery ids are kept');
      const failedOne = after.find((d) => d.eventId === ids.A)!;
      assert.equal(failedOne.status, 'failed');
      assert.deepEqual((await h.call('GET', `/v1/deliveries/${failedOne.id}/attempts`)).body, failedAttempts);
      // No delivery was created twice from the copied dispatcher cursors.
      assert.equal(after.length, 3);
      // The endpoint keeps its tenant: a portal list (by the tenant column in PostgreSQL) finds it.
      const tenantList = (await h.call('GET', '/v1/endpoints?tenant=acme')).body.endpoints as Array<{ id: string; tenant: string }>;
      assert.deepEqual(tenantList.map((e) => [e.id, e.tenant]), [[endpoint.id, 'acme']]);

      // New deliveries get new numbers past the copied ones.
      const d = await h.call('POST', '/v1/channels/hooks/events', { body: { type: 'hook', data: 'D' } });
      await eventually(async () => {
        const list = (await h.call('GET', `/v1/endpoints/${endpoint.id}/deliveries`)).body.deliveries as typeof deliveriesBefore;
        const created = list.find((x) => x.eventId === d.body.id);
        assert.ok(created, 'a delivery for D');
        assert.ok(!deliveriesBefore.some((x) => x.id === created.id), 'a new delivery id');
      });
    } finally {
      await h.stop();
      receiver.status = 503;
    }
  });

  it('keeps what a key replays when retention removed its event and the event id was chosen again', async () => {
    const dir = tempDir();
    const keyed = { body: { id: 'reused', type: 'once', data: 1 }, headers: { 'idempotency-key': 'k-trimmed' } };
    const h = await startTestServer(SETTINGS, dir);
    let before: { status: number; body: unknown };
    try {
      assert.equal((await h.call('POST', '/v1/channels/trimmed/events', keyed)).body.seq, 1);
      const more = Array.from({ length: 10 }, (_, i) => ({ channel: 'trimmed', data: i }));
      assert.equal((await h.call('POST', '/v1/events', { body: { events: more } })).status, 201);
      await h.trimmer.runOnce();
      // The id is free again once its event is gone: a new event takes it.
      const again = await h.call('POST', '/v1/channels/trimmed/events', { body: { id: 'reused', type: 'twice', data: 2 } });
      assert.equal(again.status, 201);
      assert.equal(again.body.seq, 12);
      before = await h.call('POST', '/v1/channels/trimmed/events', keyed);
      assert.equal(before.status, 409, JSON.stringify(before.body));
    } finally {
      await h.stop();
    }

    const db = await database();
    const run = await runMigrate(['--from', dir, '--to', db.url]);
    assert.equal(run.code, 0, run.stderr);
    const p = await startTestServer({ ...SETTINGS, store: { url: db.url } });
    try {
      // The key answers as it did on SQLite; found by its id, it replayed the event at seq 12 as its own.
      const after = await p.call('POST', '/v1/channels/trimmed/events', keyed);
      assert.deepEqual({ status: after.status, body: after.body }, { status: before.status, body: before.body });
    } finally {
      await p.stop();
    }
  });

  it('refuses a target holding other data (exit 1) unless --force, and knows a finished or foreign migration', async () => {
    const db = await database();
    const other = await startTestServer({ store: { url: db.url } });
    assert.equal((await other.call('POST', '/v1/channels/foreign/events', { body: { data: 1 } })).status, 201);
    await other.stop();

    const refused = await runMigrate(['--from', dataDir, '--to', db.url]);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /target is not empty/);
    assert.match(refused.stderr, /--force/);
    assert.ok((await dumpPostgres(db.url)).channels.some((c) => c.name === 'foreign'), 'nothing was touched');

    const forced = await runMigrate(['--from', dataDir, '--to', db.url, '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(forced.stderr, /erasing the target/);
    assert.deepEqual(await dumpPostgres(db.url), dumpSqlite(dataDir));

    const again = await runMigrate(['--from', dataDir, '--to', db.url]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /already holds a finished migration/);

    // Another deployment into the same target: refused, it would mix two logs.
    const otherDir = tempDir();
    const small = await startTestServer({}, otherDir);
    await small.call('POST', '/v1/channels/x/events', { body: { data: 1 } });
    await small.stop();
    const foreign = await runMigrate(['--from', otherDir, '--to', db.url]);
    assert.equal(foreign.code, 1, foreign.stderr);
    assert.match(foreign.stderr, /another deployment/);
  });

  it('resumes after kill -9 at any point, ending with exactly the source: nothing lost, nothing twice', async () => {
    const db = await database();
    let kills = 0;
    let last: Run | undefined;
    // Small chunks and a SIGKILL after every second commit: each run dies a few rows further into the copy.
    for (let i = 0; i < 200; i++) {
      last = await runMigrate(['--from', dataDir, '--to', db.url, '--batch', '4'], { HERALD_MIGRATE_CRASH_AFTER: '2' });
      if (last.signal === 'SIGKILL') {
        kills++;
        continue;
      }
      break;
    }
    assert.equal(last!.code, 0, last!.stderr);
    assert.ok(kills >= 10, `interrupted ${kills} times`);
    assert.match(last!.stderr, /resuming an interrupted migration/);
    assert.deepEqual(await dumpPostgres(db.url), dumpSqlite(dataDir));

    const h = await startTestServer({ ...SETTINGS, store: { url: db.url } });
    try {
      for (const channel of CHANNELS) {
        const now = (await h.call('GET', `/v1/channels/${encodeURIComponent(channel)}/events?after=0&limit=1000`)).body;
        assert.deepEqual(now, polls.get(channel), channel);
      }
    } finally {
      await h.stop();
    }
  });

  it('resumes after an outside kill -9 in the middle of a large copy', async () => {
    // A bigger log, written through the store directly (building it over HTTP would only be slower).
    const bigDir = tempDir();
    const storage = await openSqliteStorage({ dataDir: bigDir, synchronous: 'normal' });
    for (let b = 0; b < 20; b++) {
      const events = Array.from({ length: 1000 }, (_, i) => ({
        channel: `big:${i % 50}`,
        id: `evt_big_${b}_${i}`,
        type: 'big',
        data: { b, i, pad: 'p'.repeat(100) },
        time: Date.now(),
      }));
      await storage.events.append({ events, idempotencyKey: `big-${b}` });
    }
    await storage.close();

    const db = await database();
    const child = spawn(process.execPath, [BIN, 'migrate', '--from', bigDir, '--to', db.url, '--batch', '20'], {
      env: { ...process.env, HERALD_STORE_URL: '' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
    // Killed from outside as soon as some events are in: at whatever point of a chunk it happens to be.
    const watcher = new pg.Client({ connectionString: db.url });
    await watcher.connect();
    try {
      await eventually(async () => {
        const { rows } = await watcher.query("SELECT count(*)::int AS n FROM pg_tables WHERE tablename = 'events'");
        assert.equal(rows[0].n, 1, 'no schema yet');
        assert.equal((await watcher.query('SELECT 1 FROM events LIMIT 1')).rowCount, 1, 'no events copied yet');
      }, 120_000);
    } finally {
      await watcher.end();
    }
    child.kill('SIGKILL');
    assert.equal(await exited, 'SIGKILL', stderr);
    const partial = await dumpPostgres(db.url);
    assert.ok(partial.events.length > 0 && partial.events.length < 20_000, `killed mid-copy, after ${partial.events.length} events`);

    const rest = await runMigrate(['--from', bigDir, '--to', db.url]);
    assert.equal(rest.code, 0, rest.stderr);
    assert.match(rest.stderr, /continuing where the last run stopped/);
    assert.deepEqual(await dumpPostgres(db.url), dumpSqlite(bigDir));
  });

  it('exits 2 on bad usage and 1 on a missing source or a server still running on it', async () => {
    const db = await database();
    assert.equal((await runMigrate(['--from', dataDir])).code, 2);
    assert.equal((await runMigrate(['--from', dataDir, '--to', 'http://example.com/db'])).code, 2);
    assert.equal((await runMigrate(['--from', dataDir, '--to', db.url, '--bogus'])).code, 2);
    assert.equal((await runMigrate(['--from', dataDir, '--to', db.url, '--batch', '0'])).code, 2);
    const missing = await runMigrate(['--from', join(tempDir(), 'nothing'), '--to', db.url]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no Herald database/);

    const liveDir = tempDir();
    const live = await startTestServer({}, liveDir);
    try {
      const busy = await runMigrate(['--from', liveDir, '--to', db.url]);
      assert.equal(busy.code, 1, busy.stderr);
      assert.match(busy.stderr, /server is running/);
    } finally {
      await live.stop();
    }
  });
});

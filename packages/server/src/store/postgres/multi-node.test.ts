// Several nodes on one database: each Storage here has its own pool, as a separate process would.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HeraldError, type HeraldEvent } from '@herald/protocol';
import { until } from '../../../test/support/wait.js';
import { admin, createTestDatabase, type TestDatabase } from '../../../test/support/postgres.js';
import { faultyLinkTo } from '../../../test/support/faulty-link.js';
import { openPostgresStorage } from './open.js';
import type { AppendResult, NewEvent, Storage } from '../types.js';

let database: TestDatabase;
let nodes: Storage[];
before(async () => {
  database = await createTestDatabase();
  // Started together: the migration lock makes one of them migrate and the others wait.
  nodes = await Promise.all([1, 2, 3].map(() => openPostgresStorage({ url: database.url })));
});
after(async () => {
  await Promise.all(nodes.map((n) => n.close()));
  await database.drop();
});

let counter = 0;
function ev(channel: string, extra: Partial<NewEvent> = {}): NewEvent {
  counter += 1;
  return { channel, id: `evt_node_${counter}`, type: 'test', data: { counter }, time: Date.now(), ...extra };
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
const isCode = (code: string) => (error: unknown) => error instanceof HeraldError && error.code === code;

/** Every event of the channel is there once, seqs 1..head without a hole. */
async function assertContiguous(channel: string, expectedHead: number): Promise<void> {
  const page = await nodes[0]!.events.read(channel, 0, 100_000);
  assert.equal(page.head, expectedHead, `${channel}: head`);
  assert.deepEqual(page.events.map((e) => e.seq), range(expectedHead), `${channel}: seqs`);
  assert.equal(new Set(page.events.map((e) => e.id)).size, expectedHead, `${channel}: ids`);
}

describe('PostgreSQL store shared by several nodes', () => {
  it('migrated once, with one epoch for every node', async () => {
    const epochs = await Promise.all(nodes.map(async (n) => (await n.events.head('any')).epoch));
    assert.equal(new Set(epochs).size, 1);
  });

  it('gives concurrent appenders on every node one gapless log per channel', async () => {
    const requests = nodes.flatMap((node, n) =>
      range(150).map((i) => {
        // Singles, batches, and requests that span two channels, named in either order.
        const events = i % 3 === 0 ? [ev('shared'), ev('shared'), ev('shared')] : i % 3 === 1 ? [ev('shared')] : n % 2 ? [ev('shared'), ev('side')] : [ev('side'), ev('shared')];
        return node.events.append({ events });
      }),
    );
    const results = await Promise.all(requests);
    const seqs = (channel: string) => results.flatMap((r) => r.events.filter((e) => e.channel === channel).map((e) => e.seq)).sort((a, b) => a - b);
    assert.deepEqual(seqs('shared'), range(seqs('shared').length));
    assert.deepEqual(seqs('side'), range(seqs('side').length));
    await assertContiguous('shared', 3 * (50 * 3 + 50 + 50));
    await assertContiguous('side', 3 * 50);
  });

  it('appends an event id raced from every node exactly once, without burning seqs', async () => {
    for (let round = 1; round <= 20; round++) {
      const id = `evt_raced_${round}`;
      const results = await Promise.all(nodes.map((node) => node.events.append({ events: [ev('dedupe', { id })] })));
      assert.equal(results.filter((r) => r.created[0]).length, 1, `round ${round}: one creator`);
      assert.deepEqual(new Set(results.map((r) => r.events[0]!.seq)), new Set([round]), `round ${round}: one seq`);
    }
    await assertContiguous('dedupe', 20);
  });

  it('honours an idempotency key raced from every node once, without burning seqs', async () => {
    for (let round = 1; round <= 20; round++) {
      const idempotencyKey = `key-${round}`;
      // Different event ids per node: only the key can make them one request.
      const results = await Promise.all(nodes.map((node) => node.events.append({ events: [ev('keyed'), ev('keyed')], idempotencyKey })));
      const original = results.filter((r) => !r.replayed);
      assert.equal(original.length, 1, `round ${round}: one original`);
      for (const r of results) assert.deepEqual(r.events, original[0]!.events);
    }
    await assertContiguous('keyed', 40);
  });

  it('refuses an id raced onto different channels everywhere but once, leaving no hole', async () => {
    for (let round = 1; round <= 15; round++) {
      const id = `evt_crossed_${round}`;
      const outcomes = await Promise.allSettled(nodes.map((node, n) => node.events.append({ events: [ev(`cross-${n}`), ev(`cross-${n}`, { id })] })));
      assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 1, `round ${round}: one winner`);
      for (const o of outcomes) if (o.status === 'rejected') assert.ok(isCode('event_id_conflict')(o.reason), String(o.reason));
    }
    const heads = await Promise.all([0, 1, 2].map(async (n) => (await nodes[n]!.events.head(`cross-${n}`)).head));
    assert.equal(heads.reduce((a, b) => a + b, 0), 15 * 2);
    for (const [n, head] of heads.entries()) {
      await assertContiguous(`cross-${n}`, head);
      const next: AppendResult = await nodes[(n + 1) % 3]!.events.append({ events: [ev(`cross-${n}`)] });
      assert.equal(next.events[0]!.seq, head + 1);
    }
  });

  it('shares leases across nodes', async () => {
    const won = await Promise.all(nodes.map((node, n) => node.cluster.acquireLease('dispatcher', `node-${n}`, 60_000, Date.now())));
    assert.equal(won.filter(Boolean).length, 1);
  });
});

describe('PostgreSQL store while the server is unreachable', () => {
  it('refuses to open with store_unavailable instead of hanging', async () => {
    const started = Date.now();
    await assert.rejects(openPostgresStorage({ url: 'postgres://postgres@127.0.0.1:1/none', connectTimeoutMs: 500 }), isCode('store_unavailable'));
    assert.ok(Date.now() - started < 5000);
  });

  it('fails calls with store_unavailable while the link is down, and recovers by itself', async () => {
    const link = await faultyLinkTo(database.url);
    const storage = await openPostgresStorage({ url: link.url, connectTimeoutMs: 500, queryTimeoutMs: 1500 });
    try {
      assert.equal((await storage.events.append({ events: [ev('flaky')] })).events[0]!.seq, 1);

      link.cut();
      await assert.rejects(storage.events.ping(), isCode('store_unavailable'));
      await assert.rejects(storage.events.append({ events: [ev('flaky')] }), isCode('store_unavailable'));
      await assert.rejects(storage.keys.list(), isCode('store_unavailable'));
      link.restore();
      await storage.events.ping();
      assert.equal((await storage.events.append({ events: [ev('flaky')] })).events[0]!.seq, 2, 'the failed append left no hole');

      // A server that stops answering, rather than refusing: the timeouts end the calls.
      link.blackhole();
      const started = Date.now();
      await assert.rejects(storage.events.ping(), isCode('store_unavailable'));
      await assert.rejects(storage.events.append({ events: [ev('flaky')] }), isCode('store_unavailable'));
      assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms`);
      link.cut(); // the stalled connections are now known dead
      link.restore();
      await storage.events.ping();
      const head = (await storage.events.head('flaky')).head;
      // The append that timed out may or may not have committed (its COMMIT was in flight); either way no hole.
      await assertContiguous('flaky', head);
    } finally {
      await storage.close();
      await link.close();
    }
  });

  it('answers a COMMIT whose answer was lost as an unknown outcome, never "nothing was written"; finds it committed, and so does the key', async () => {
    const link = await faultyLinkTo(database.url);
    const storage = await openPostgresStorage({ url: link.url, connectTimeoutMs: 500, queryTimeoutMs: 1500 });
    const late: HeraldEvent[] = [];
    storage.events.onLateCommit!((events) => late.push(...events));
    try {
      assert.equal((await storage.events.append({ events: [ev('lost-answer')] })).events[0]!.seq, 1);
      link.muteAfter('COMMIT');
      const failure = await storage.events.append({ idempotencyKey: 'k-lost', events: [ev('lost-answer')] }).then(
        () => assert.fail('the append answered though its COMMIT answer never came'),
        (error: unknown) => error,
      );
      assert.ok(isCode('store_unavailable')(failure), String(failure));
      assert.deepEqual((failure as HeraldError).details, { outcome: 'unknown' });
      assert.match((failure as HeraldError).message, /may have been made, or not\. Retry with the same Idempotency-Key/);
      assert.doesNotMatch((failure as HeraldError).message, /nothing was written/);
      // Read back once the store answers: committed, so handed on to be announced.
      await until(() => late.length > 0, 5000, 'the late commit found');
      assert.deepEqual(late.map((e) => [e.channel, e.seq]), [['lost-answer', 2]]);
      // It was committed: the same key answers with it, and nothing is written twice.
      const retried = await storage.events.append({ idempotencyKey: 'k-lost', events: [ev('lost-answer')] });
      assert.equal(retried.replayed, true);
      assert.equal(retried.events[0]!.seq, 2);
      assert.equal((await storage.events.head('lost-answer')).head, 2);
    } finally {
      await storage.close();
      await link.close();
    }
  });

  it('fails calls with store_unavailable while the server refuses logins, and recovers by itself', async () => {
    // A server that answers but lets no one in (ALLOW_CONNECTIONS false, as a DBA does for maintenance; a password
    // or pg_hba.conf change): before, the login's error passed for a statement's, and a publish answered 500.
    const own = await createTestDatabase();
    const name = new URL(own.url).pathname.slice(1);
    const storage = await openPostgresStorage({ url: own.url, connectTimeoutMs: 500 });
    try {
      assert.equal((await storage.events.append({ events: [ev('refused')] })).events[0]!.seq, 1);
      await admin(`ALTER DATABASE ${name} WITH ALLOW_CONNECTIONS false`);
      await admin(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${name}'`);
      await assert.rejects(storage.events.ping(), isCode('store_unavailable'));
      await assert.rejects(storage.events.append({ events: [ev('refused')] }), isCode('store_unavailable'));
      await assert.rejects(storage.keys.list(), isCode('store_unavailable'));
      await admin(`ALTER DATABASE ${name} WITH ALLOW_CONNECTIONS true`);
      await storage.events.ping();
      assert.equal((await storage.events.append({ events: [ev('refused')] })).events[0]!.seq, 2, 'the failed append left no hole');
    } finally {
      await storage.close();
      await own.drop();
    }
  });
});


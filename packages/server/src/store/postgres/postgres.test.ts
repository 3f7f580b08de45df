import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { describeEventStoreConformance } from '../event-store.conformance.js';
import { describeKeyStoreConformance } from '../key-store.conformance.js';
import { describeSourceStoreConformance } from '../source-store.conformance.js';
import { describeDeliveryStoreConformance } from '../delivery-store.conformance.js';
import { describeClusterStoreConformance } from '../cluster-store.conformance.js';
import type { OpenStorage } from '../storage-harness.js';
import { createTestDatabase, type TestDatabase } from '../../../test/support/postgres.js';
import { openPostgresStorage } from './open.js';
import { Database } from './database.js';
import { HeraldError } from '@herald/protocol';
import type { Storage } from '../types.js';

let database: TestDatabase;
before(async () => {
  database = await createTestDatabase();
});
after(async () => {
  await database.drop();
});

/**
 * A store on an empty log: every test starts from nothing, as with a new
 * SQLite directory, but the database (migrated once) and its epoch stay.
 */
async function openEmpty(): Promise<Storage> {
  const storage = await openPostgresStorage({ url: database.url });
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  try {
    const { rows } = await client.query<{ tablename: string }>(
      "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename NOT IN ('schema_versions', 'settings')",
    );
    await client.query(`TRUNCATE ${rows.map((r) => r.tablename).join(', ')} RESTART IDENTITY`);
  } finally {
    await client.end();
  }
  return storage;
}

describeEventStoreConformance('postgres', async () => {
  let storage = await openEmpty();
  return {
    store: storage.events,
    async reopen() {
      await storage.close();
      storage = await openPostgresStorage({ url: database.url });
      return storage.events;
    },
    async cleanup() {
      await storage.close();
    },
  };
});

const openStorage: OpenStorage = async () => {
  const storage = await openEmpty();
  return { storage, cleanup: () => storage.close() };
};

describeKeyStoreConformance('postgres', openStorage);
describeSourceStoreConformance('postgres', openStorage);
describeDeliveryStoreConformance('postgres', openStorage);
describeClusterStoreConformance('postgres', openStorage);

test('the event store keeps at most 10,000 channel ids in memory, and appends stay right past it', async () => {
  const storage = await openEmpty();
  try {
    const cached = () => (storage.events as unknown as { cids: Map<string, number> }).cids.size;
    for (let round = 0; round < 11; round++) {
      const events = Array.from({ length: 1000 }, (_, i) => ({ channel: `n${round * 1000 + i}`, id: `evt_n_${round}_${i}`, type: 't', data: i, time: 1 }));
      await storage.events.append({ events });
      assert.ok(cached() <= 10_000, `${cached()} channel ids in memory`);
    }
    // Channels whose ids left memory: their next events still go to their own rows, in order.
    const again = await storage.events.append({ events: [0, 5000, 10_999].map((n) => ({ channel: `n${n}`, id: `evt_n_again_${n}`, type: 't', data: n, time: 2 })) });
    assert.deepEqual(again.events.map((e) => [e.channel, e.seq]), [['n0', 2], ['n5000', 2], ['n10999', 2]]);
    assert.deepEqual((await storage.events.read('n5000', 0, 10)).events.map((e) => e.data), [0, 5000]);
  } finally {
    await storage.close();
  }
});

test('a connection the server closes between two statements of a transaction fails that transaction, not the process', async () => {
  const db = new Database({ url: database.url });
  const admin = new pg.Client({ connectionString: database.url });
  await admin.connect();
  try {
    await assert.rejects(
      db.transaction(async (tx) => {
        const { rows } = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
        // As a restart, a failover or an administrator does: the server ends the connection while no statement runs
        // on it, and the client hears it as an 'error' event. Before, nothing listened, and Node ended the process.
        await admin.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
        await new Promise((resolve) => setTimeout(resolve, 300));
        await tx.query('SELECT 1');
      }),
      (error: unknown) => error instanceof HeraldError && error.code === 'store_unavailable',
    );
    assert.deepEqual(await db.rows('SELECT 1 AS one'), [{ one: 1 }], 'the pool serves on another connection');
  } finally {
    await admin.end();
    await db.end();
  }
});

/** An endpoint of the lock tests below, on channel orders. */
const lockedEndpoint = (id: string) => ({
  id, url: 'https://example.com/h', channels: ['orders'], types: [], scheme: 'standard' as const, secrets: [{ secret: 'whsec_1' }], headers: {}, maxConcurrency: 1, enabled: true, createdAt: 1,
});
const newDelivery = (endpointId: string) => ({ endpointId, eventId: 'evt_1', channel: 'orders', seq: 1, payload: '{}', createdAt: 1 });

/** An empty store, and a connection of another node's, which the test holds a transaction open on. */
async function withOtherNode(body: (store: Storage['deliveries'], other: pg.Client) => Promise<void>): Promise<void> {
  const storage = await openEmpty();
  const other = new pg.Client({ connectionString: database.url });
  await other.connect();
  try {
    await body(storage.deliveries, other);
  } finally {
    await other.end();
    await storage.close();
  }
}

/** Fails unless `work` is still waiting (on the other node's locks) a while after it started. */
async function assertWaits(work: Promise<unknown>, what: string): Promise<void> {
  let settled = false;
  void work.then(() => (settled = true), () => (settled = true));
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(settled, false, what);
}

test("an attempt recorded while its endpoint's delete waits on the delivery's lock is deleted with it, not left behind", () =>
  withOtherNode(async (store, other) => {
    await store.insertEndpoint(lockedEndpoint('ep_locked'));
    await store.createDeliveries('orders', 1, [newDelivery('ep_locked')]);
    const [delivery] = await store.listDeliveries('ep_locked', undefined, 10);
    const n = Number(delivery!.id.slice(4));
    // What attempt-batch.ts does, held open: the delivery's row locked by its UPDATE, the attempt written.
    await other.query('BEGIN');
    await other.query('UPDATE deliveries SET attempts = 1 WHERE n = $1', [n]);
    await other.query('INSERT INTO attempts (delivery, at, status_code, duration_ms) VALUES ($1, 2, 500, 1)', [n]);
    const deleting = store.deleteEndpoint('ep_locked');
    await assertWaits(deleting, 'the delete waits for the lock');
    await other.query('COMMIT');
    assert.equal(await deleting, true);
    assert.deepEqual(await store.listAttempts(delivery!.id), [], 'the attempt committed while the delete waited went with it');
  }));

test("deliveries created while their endpoint's delete is uncommitted wait for it, then write nothing", () =>
  withOtherNode(async (store, other) => {
    await store.insertEndpoint(lockedEndpoint('ep_going'));
    // Another node's delete, held open once it has deleted the endpoint's row (as deleteEndpoint does after its bulk).
    await other.query('BEGIN');
    await other.query("DELETE FROM endpoints WHERE id = 'ep_going'");
    const creating = store.createDeliveries('orders', 1, [newDelivery('ep_going')]);
    await assertWaits(creating, 'the create waits for the delete');
    await other.query('COMMIT');
    await creating;
    assert.deepEqual(await store.listDeliveries('ep_going', undefined, 10), [], 'no delivery owed to the deleted endpoint');
    assert.equal(await store.cursor('orders'), 1, 'the cursor moved all the same');
  }));

test("an endpoint's delete waits for deliveries being created for it, and deletes them", () =>
  withOtherNode(async (store, other) => {
    await store.insertEndpoint(lockedEndpoint('ep_busy'));
    // What createDeliveries does, held open: the endpoint's row held FOR KEY SHARE, the delivery written.
    await other.query('BEGIN');
    await other.query("SELECT 1 FROM endpoints WHERE id = 'ep_busy' FOR KEY SHARE");
    await other.query(
      "INSERT INTO deliveries (endpoint_id, event_id, channel, seq, payload, status, next_attempt_at, created) VALUES ('ep_busy', 'evt_1', 'orders', 1, '{}', 'pending', 1, 1)",
    );
    const deleting = store.deleteEndpoint('ep_busy');
    await assertWaits(deleting, 'the delete waits for the create');
    await other.query('COMMIT');
    assert.equal(await deleting, true);
    assert.deepEqual(await store.listDeliveries('ep_busy', undefined, 10), [], 'the delivery committed while the delete waited went with it');
  }));

test("an endpoint's delete holds the endpoint's row only at its end: creates go on while its bulk waits, and what they wrote goes too", () =>
  withOtherNode(async (store, other) => {
    await store.insertEndpoint(lockedEndpoint('ep_bulk'));
    await store.createDeliveries('orders', 1, [newDelivery('ep_bulk')]);
    const [first] = await store.listDeliveries('ep_bulk', undefined, 10);
    // An attempt being recorded holds the first delivery's row: the delete's bulk waits on it.
    await other.query('BEGIN');
    await other.query('UPDATE deliveries SET attempts = 1 WHERE n = $1', [Number(first!.id.slice(4))]);
    const deleting = store.deleteEndpoint('ep_bulk');
    await assertWaits(deleting, 'the delete waits for the attempt');
    // Meanwhile the dispatcher writes the endpoint's next delivery: it must not wait behind the whole delete.
    const created = await Promise.race([
      store.createDeliveries('orders', 2, [{ ...newDelivery('ep_bulk'), eventId: 'evt_2', seq: 2 }]).then(() => true),
      new Promise<false>((resolve) => setTimeout(() => resolve(false), 2000)),
    ]);
    assert.equal(created, true, 'the create did not wait for the delete');
    await other.query('COMMIT');
    assert.equal(await deleting, true);
    assert.deepEqual(await store.listDeliveries('ep_bulk', undefined, 10), [], 'the delivery written while the delete waited went with it');
  }));

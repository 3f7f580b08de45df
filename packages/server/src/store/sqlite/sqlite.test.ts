import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeEventStoreConformance } from '../event-store.conformance.js';
import { describeKeyStoreConformance } from '../key-store.conformance.js';
import { describeSourceStoreConformance } from '../source-store.conformance.js';
import { describeDeliveryStoreConformance } from '../delivery-store.conformance.js';
import { describeClusterStoreConformance } from '../cluster-store.conformance.js';
import type { OpenStorage } from '../storage-harness.js';
import BetterSqlite3 from 'better-sqlite3';
import { openSqliteStorage } from './open.js';
import { migrate } from './schema.js';
import { SqliteClusterStore } from './cluster-store.js';
import type { Storage } from '../types.js';

for (const appendThread of [false, true]) {
  describeEventStoreConformance(appendThread ? 'sqlite, the event store on its own thread' : 'sqlite', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-store-'));
    let storage: Storage = await openSqliteStorage({ dataDir: dir, appendThread });
    return {
      store: storage.events,
      async reopen() {
        await storage.close();
        storage = await openSqliteStorage({ dataDir: dir, appendThread });
        return storage.events;
      },
      async cleanup() {
        await storage.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  });
}

// On disk rather than in memory: the delivery store then uses its second connection, as in production.
const openOnDisk: OpenStorage = async () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-store-'));
  const storage = await openSqliteStorage({ dataDir: dir });
  return {
    storage,
    async cleanup() {
      await storage.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
};

describeKeyStoreConformance('sqlite', openOnDisk);
describeSourceStoreConformance('sqlite', openOnDisk);
describeDeliveryStoreConformance('sqlite', openOnDisk);
describeClusterStoreConformance('sqlite', openOnDisk);

test('a database too big for a full check at start-up still opens, WITHOUT ROWID tables and all', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-store-'));
  try {
    const first = await openSqliteStorage({ dataDir: dir });
    await first.events.append({ events: [{ channel: 'c', id: 'evt_big_file', type: 't', data: { n: 1 }, time: 1 }] });
    await first.settings.set('kept', 'yes');
    await first.close();
    // Past the full-check size, sparsely: start-up then reads the first and last row of every table instead.
    truncateSync(join(dir, 'herald.db'), 600 * 1024 * 1024);
    const again = await openSqliteStorage({ dataDir: dir });
    assert.deepEqual((await again.events.read('c', 0, 10)).events.map((e) => e.id), ['evt_big_file']);
    assert.equal(await again.settings.get('kept'), 'yes');
    await again.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("recover over many channels is one UPDATE, not one per channel", async () => {
  // One channel per user: an UPDATE per channel walked every failed delivery of the endpoint for each (10,000
  // channels took 7.5 s with the event loop blocked, and a portal session can ask for it). Counted, not timed.
  const dir = mkdtempSync(join(tmpdir(), 'herald-store-'));
  try {
    await (await openSqliteStorage({ dataDir: dir })).close();
    const db = new BetterSqlite3(join(dir, 'herald.db'));
    const insert = db.prepare(
      "INSERT INTO deliveries (endpoint_id, event_id, channel, seq, payload, status, attempts, next_attempt_at, created) VALUES ('ep_1', ?, ?, 1, '{}', 'failed', 5, 0, 1000)",
    );
    db.transaction(() => {
      for (let i = 0; i < 200; i++) insert.run(`evt_${i}`, `user:${i}`);
    })();
    db.close();
    const storage = await openSqliteStorage({ dataDir: dir });
    try {
      const statement = (storage.deliveries as unknown as { s: Record<string, { run: (...args: unknown[]) => unknown }> }).s.recover!;
      const run = statement.run.bind(statement);
      let updates = 0;
      statement.run = (...args) => (updates++, run(...args));
      assert.equal(await storage.deliveries.recover('ep_1', 0, 10_000, 5000, (channel) => channel !== 'user:7'), 199);
      assert.equal(updates, 1);
      assert.equal((await storage.deliveries.statusCounts!()).failed, 1);
      assert.equal(await storage.deliveries.recover('ep_1', 0, 10_000, 6000, () => false), 0);
      assert.equal(updates, 1, 'no channel wanted: no UPDATE at all');
    } finally {
      await storage.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("schemas 9 and 11: a node's heartbeat from before them keeps its row, and reads as bus 'up' with its admin key from the store", async () => {
  const db = new BetterSqlite3(':memory:');
  try {
    migrate(db, 8);
    db.prepare("INSERT INTO nodes (id, started_at, last_seen, connections, version) VALUES ('old', 1, 2, '{}', '0.1.0')").run();
    migrate(db);
    assert.deepEqual(await new SqliteClusterStore(db).nodes(0), [{ id: 'old', startedAt: 1, lastSeen: 2, connections: {}, version: '0.1.0', bus: 'up', adminKey: 'store' }]);
  } finally {
    db.close();
  }
});

test('schema 10: delivery ids start past every id the data shows, and attempts of an id given twice go', () => {
  const db = new BetterSqlite3(':memory:');
  try {
    migrate(db, 9);
    const delivery = db.prepare(
      "INSERT INTO deliveries (n, endpoint_id, event_id, channel, seq, status, next_attempt_at, created) VALUES (?, ?, ?, 'c', 1, 'pending', 0, ?)",
    );
    const attempt = db.prepare('INSERT INTO attempts (delivery, at, duration_ms) VALUES (?, ?, 1)');
    // 3 was an endpoint's, deleted with it (its attempt left); 2 was given again, at 500, after a deleted one's attempt at 100.
    delivery.run(1, 'ep_a', 'evt_1', 50);
    delivery.run(2, 'ep_b', 'evt_2', 500);
    for (const [n, at] of [[1, 60], [2, 100], [2, 600], [3, 200]]) attempt.run(n, at);
    migrate(db);
    assert.deepEqual(db.prepare('SELECT delivery, at FROM attempts ORDER BY delivery, at').all(), [{ delivery: 1, at: 60 }, { delivery: 2, at: 600 }]);
    const { n } = db.prepare("INSERT INTO deliveries (endpoint_id, event_id, channel, seq, status, next_attempt_at, created) VALUES ('ep_c', 'evt_3', 'c', 1, 'pending', 0, 700) RETURNING n").get() as { n: number };
    assert.equal(n, 4, 'past the 3 an attempt still showed');
    db.prepare('DELETE FROM deliveries WHERE n = 4').run();
    const again = db.prepare("INSERT INTO deliveries (endpoint_id, event_id, channel, seq, status, next_attempt_at, created) VALUES ('ep_c', 'evt_4', 'c', 1, 'pending', 0, 800) RETURNING n").get() as { n: number };
    assert.equal(again.n, 5, 'the highest id deleted is not given again');
  } finally {
    db.close();
  }
});

test("the data directory and the database are the server user's alone, whatever the umask", async () => {
  const parent = mkdtempSync(join(tmpdir(), 'herald-store-'));
  const dir = join(parent, 'data');
  const mode = (path: string) => statSync(path).mode & 0o777;
  const umask = process.umask(0o022);
  try {
    const storage = await openSqliteStorage({ dataDir: dir });
    await storage.events.append({ events: [{ channel: 'c', id: 'evt_private', type: 't', data: { n: 1 }, time: 1 }] });
    assert.equal(mode(dir), 0o700);
    for (const file of ['herald.db', 'herald.db-wal', 'herald.db-shm']) assert.equal(mode(join(dir, file)), 0o600, file);
    await storage.close();
    // A database made before (or by hand) that others could read: its secrets are taken back at the next start.
    chmodSync(join(dir, 'herald.db'), 0o644);
    chmodSync(dir, 0o755);
    const again = await openSqliteStorage({ dataDir: dir });
    assert.equal(mode(join(dir, 'herald.db')), 0o600);
    assert.equal(mode(dir), 0o755, 'a directory that exists is left as it is');
    await again.close();
  } finally {
    process.umask(umask);
    rmSync(parent, { recursive: true, force: true });
  }
});

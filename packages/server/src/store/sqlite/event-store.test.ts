import { it } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { MIGRATIONS, migrate } from './schema.js';
import { SqliteEventStore } from './event-store.js';

const event = (type: string) => ({ channel: 'c', id: `id-${type}-${Math.random()}`, generated: false, type, data: {}, time: Date.now() });

it('a one-event request whose INSERT fails after writing (here, in a trigger) leaves nothing behind, and its neighbours commit', async () => {
  // Such a request has no savepoint of its own: SQLite must undo the failed statement, row and trigger writes alike.
  const db = new Database(':memory:');
  migrate(db);
  db.exec(`
    CREATE TABLE trigger_writes (v TEXT);
    CREATE TRIGGER refuse_poison AFTER INSERT ON events WHEN NEW.type = 'poison' BEGIN
      INSERT INTO trigger_writes VALUES ('written before the abort');
      SELECT RAISE(ABORT, 'poisoned');
    END;
  `);
  const store = new SqliteEventStore(db, 'epoch');
  // The channel's entry is in memory from here on, so the three below take the one-statement path.
  await store.append({ events: [event('first')] });
  const outcomes = await Promise.allSettled([
    store.append({ events: [event('ok')] }),
    store.append({ events: [event('poison')] }),
    store.append({ events: [event('ok')] }),
  ]);
  assert.deepEqual(
    outcomes.map((o) => o.status),
    ['fulfilled', 'rejected', 'fulfilled'],
  );
  assert.match(String((outcomes[1] as PromiseRejectedResult).reason), /poisoned/);
  const page = await store.read('c', 0, 10);
  assert.deepEqual(page.events.map((e) => [e.seq, e.type]), [[1, 'first'], [2, 'ok'], [3, 'ok']]);
  assert.equal((await store.head('c')).head, 3);
  assert.equal(db.prepare('SELECT COUNT(*) FROM trigger_writes').pluck().get(), 0);
  await store.close();
  db.close();
});

it('a database written with the clustered events table (schema 6) keeps every event, id and head once migrated to the rowid table', async () => {
  const db = new Database(':memory:');
  for (let v = 1; v <= 6; v++) db.exec(MIGRATIONS[v]!);
  db.pragma('user_version = 6');
  db.prepare("INSERT INTO channels (cid, name, epoch, trimmed) VALUES (1, 'a', 'old-epoch', 0), (2, 'b', 'old-epoch', 1)").run();
  const insert = db.prepare('INSERT INTO events (cid, seq, id, type, time, data, meta) VALUES (?, ?, ?, ?, ?, ?, ?)');
  // Written interleaved, as a clustered table would have kept them anyway: by channel, then seq.
  insert.run(2, 3, 'b3', 't', 1000, '{"n":3}', '{"m":1}');
  insert.run(1, 1, 'a1', 't', 1000, '{"n":1}', null);
  insert.run(2, 2, 'b2', 't', 1000, '{"n":2}', null);
  insert.run(1, 2, 'a2', 't', 1000, '{"n":2}', null);

  migrate(db);
  assert.equal(db.pragma('user_version', { simple: true }), 7);
  // A rowid table: `rowid` exists only on those, and the channel's events were copied in (cid, seq) order.
  assert.deepEqual(db.prepare('SELECT id FROM events ORDER BY rowid').pluck().all(), ['a1', 'a2', 'b2', 'b3']);

  const store = new SqliteEventStore(db, 'new-epoch');
  const b = await store.read('b', 1, 10);
  assert.deepEqual([b.head, b.trimmed, b.epoch], [3, 1, 'old-epoch']);
  assert.deepEqual(b.events.map((e) => [e.seq, e.id, e.data, e.meta]), [[2, 'b2', { n: 2 }, undefined], [3, 'b3', { n: 3 }, { m: 1 }]]);
  // Appends go on from the migrated heads, and the id and (cid, seq) indexes still refuse what they refused.
  const appended = await store.append({ events: [{ ...event('next'), channel: 'a' }] });
  assert.equal(appended.events[0]!.seq, 3);
  const again = await store.append({ events: [{ channel: 'b', id: 'b2', generated: false, type: 't', data: {}, time: 1 }] });
  assert.deepEqual([again.created, again.events[0]!.seq], [[false], 2]);
  await assert.rejects(store.append({ events: [{ channel: 'a', id: 'b3', generated: false, type: 't', data: {}, time: 1 }] }), { code: 'event_id_conflict' });
  assert.throws(() => insert.run(1, 3, 'other', 't', 1, '{}', null), /UNIQUE constraint failed: events.cid, events.seq/);
  await store.close();
  db.close();
});

/** A store on a fresh in-memory database keeping at most `maxCachedChannels` channels' entries in memory. */
function boundedStore(maxCachedChannels: number) {
  const db = new Database(':memory:');
  migrate(db);
  const store = new SqliteEventStore(db, 'epoch', maxCachedChannels);
  return {
    store,
    close: async () => {
      await store.close();
      db.close();
    },
  };
}

it('keeps a channel used since the last eviction pass, evicting one that was not (second chance)', async () => {
  const { store, close } = boundedStore(3);
  const cached = () => [...(store as unknown as { channelsByName: Map<string, unknown> }).channelsByName.keys()].sort();
  for (const channel of ['a', 'b', 'c']) await store.append({ events: [{ ...event('x'), channel }] });
  await store.append({ events: [{ ...event('x'), channel: 'a' }] });
  await store.append({ events: [{ ...event('x'), channel: 'd' }] });
  assert.deepEqual(cached(), ['a', 'c', 'd']);
  // Everything still reads back, evicted or not.
  assert.deepEqual((await store.read('b', 0, 10)).events.map((e) => e.seq), [1]);
  assert.deepEqual((await store.read('a', 0, 10)).events.map((e) => e.seq), [1, 2]);
  await close();
});

it('a trim of a channel not in memory keeps the entry it loads, while every cached channel had been used: readers see its trim point', async () => {
  const { store, close } = boundedStore(3);
  await store.append({ events: Array.from({ length: 12_000 }, () => ({ ...event('x'), channel: 'x' })) });
  // a, b and c push x out of memory, then are used again: each has its second chance to come.
  for (let round = 0; round < 2; round++) for (const channel of ['a', 'b', 'c']) await store.append({ events: [{ ...event('x'), channel }] });
  const trimming = store.trim('x', { maxEvents: 1000 });
  // Between the trim's chunks, a reader loads the channel too.
  await new Promise((resolve) => setImmediate(resolve));
  await store.read('x', 0, 1);
  assert.equal(await trimming, 11_000);
  const page = await store.read('x', 10_500, 10);
  assert.deepEqual([page.trimmed, page.truncated, page.events[0]!.seq], [11_000, true, 11_001]);
  await close();
});

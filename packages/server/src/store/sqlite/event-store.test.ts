import { it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { migrate, SCHEMA_VERSION } from './schema.js';
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
  migrate(db, 6);
  db.prepare("INSERT INTO channels (cid, name, epoch, trimmed) VALUES (1, 'a', 'old-epoch', 0), (2, 'b', 'old-epoch', 1)").run();
  const insert = db.prepare('INSERT INTO events (cid, seq, id, type, time, data, meta) VALUES (?, ?, ?, ?, ?, ?, ?)');
  // Written interleaved, as a clustered table would have kept them anyway: by channel, then seq.
  insert.run(2, 3, 'b3', 't', 1000, '{"n":3}', '{"m":1}');
  insert.run(1, 1, 'a1', 't', 1000, '{"n":1}', null);
  insert.run(2, 2, 'b2', 't', 1000, '{"n":2}', null);
  insert.run(1, 2, 'a2', 't', 1000, '{"n":2}', null);

  migrate(db);
  assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
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

const GENERATED = (n: number) => `evt_01JF${String(n).padStart(22, '0')}`;

it('indexes only chosen ids: a generated id is written without an index entry, a chosen one is still refused on another channel and deduplicated on its own', async () => {
  const db = new Database(':memory:');
  migrate(db);
  const store = new SqliteEventStore(db, 'epoch');
  await store.append({ events: [{ channel: 'c', id: GENERATED(1), generated: true, type: 't', data: { n: 1 }, time: 1 }, { ...event('x'), id: 'mine' }] });
  assert.deepEqual(db.prepare('SELECT id, chosen FROM events ORDER BY seq').raw().all(), [[GENERATED(1), 0], ['mine', 1]]);
  // The partial index holds the chosen id and nothing else.
  assert.deepEqual(db.prepare('SELECT id FROM events INDEXED BY events_by_chosen_id WHERE chosen = 1').pluck().all(), ['mine']);
  // A row written without the column is indexed: a copy of an indexed id is refused.
  assert.throws(
    () => db.prepare("INSERT INTO events (cid, seq, id, type, time, data) VALUES (1, 99, 'mine', 't', 1, '{}')").run(),
    /UNIQUE constraint failed: events\.id/,
  );
  const plan = db.prepare("EXPLAIN QUERY PLAN SELECT cid, seq FROM events WHERE id = 'mine' AND chosen = 1").all() as Array<{ detail: string }>;
  assert.match(plan.map((p) => p.detail).join(' '), /USING INDEX events_by_chosen_id/);

  const again = await store.append({ events: [{ ...event('x'), id: 'mine' }] });
  assert.deepEqual([again.created, again.events[0]!.seq, again.events[0]!.type], [[false], 2, 'x']);
  await assert.rejects(store.append({ events: [{ ...event('x'), channel: 'other', id: 'mine' }] }), { code: 'event_id_conflict' });
  // A caller that does not say its id was generated gets it indexed, and deduplicated.
  await store.append({ events: [{ channel: 'c', id: 'unsaid', type: 't', data: {}, time: 1 }] });
  assert.deepEqual((await store.append({ events: [{ channel: 'c', id: 'unsaid', type: 't', data: {}, time: 1 }] })).created, [false]);
  assert.equal((await store.head('c')).head, 3);
  await store.close();
  db.close();
});

it('an idempotent request replays its events, generated ids and duplicates alike, in order, by position', async () => {
  const db = new Database(':memory:');
  migrate(db);
  const store = new SqliteEventStore(db, 'epoch');
  await store.append({ events: [{ ...event('x'), channel: 'b', id: 'dup' }] });
  const request = {
    idempotencyKey: 'k1',
    events: [
      { channel: 'a', id: GENERATED(2), generated: true, type: 't', data: { n: 2 }, time: 1 },
      { ...event('x'), channel: 'b', id: 'dup' },
      { channel: 'b', id: GENERATED(3), generated: true, type: 't', data: { n: 3 }, time: 1 },
    ],
  };
  const first = await store.append(request);
  assert.deepEqual(first.created, [true, false, true]);
  const replay = await store.append({ ...request, events: [{ channel: 'a', id: GENERATED(9), generated: true, type: 't', data: {}, time: 1 }] });
  assert.equal(replay.replayed, true);
  assert.deepEqual(
    replay.events.map((e) => [e.channel, e.seq, e.id]),
    first.events.map((e) => [e.channel, e.seq, e.id]),
  );
  assert.deepEqual(replay.events.map((e) => e.data), [{ n: 2 }, {}, { n: 3 }]);
  assert.equal((await store.head('a')).head, 1);
  await store.close();
  db.close();
});

it('a schema 7 database keeps its ids unique and its idempotency keys replaying once migrated to schema 8, where new generated ids are not indexed', async () => {
  const db = new Database(':memory:');
  migrate(db, 7);
  db.prepare("INSERT INTO channels (cid, name, epoch, trimmed) VALUES (1, 'a', 'e', 0), (2, 'b', 'e', 0)").run();
  const insert = db.prepare('INSERT INTO events (cid, seq, id, type, time, data, meta) VALUES (?, ?, ?, ?, ?, ?, ?)');
  insert.run(1, 1, GENERATED(1), 't', 1, '{"n":1}', null);
  insert.run(1, 2, 'chosen-a', 't', 1, '{"n":2}', null);
  insert.run(2, 1, GENERATED(2), 't', 1, '{"n":3}', null);
  // Chosen before the generated form was reserved: it keeps its row, and its index entry, as every older row does.
  insert.run(2, 2, 'evt_01JF0000000000000000000099', 't', 1, '{"n":4}', null);
  const key = db.prepare('INSERT INTO idempotency (key, ids, created) VALUES (?, ?, ?)');
  key.run('k-gen', JSON.stringify([GENERATED(2), 'chosen-a', GENERATED(1)]), Date.now());
  key.run('k-trimmed', JSON.stringify(['gone', GENERATED(1)]), Date.now());

  migrate(db);
  assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  // The migration rewrote no row: the older ones read the column's default, and all stay in the index.
  assert.deepEqual(db.prepare('SELECT id FROM events INDEXED BY events_by_chosen_id WHERE chosen = 1 ORDER BY id').pluck().all(), [
    'chosen-a',
    GENERATED(1),
    GENERATED(2),
    'evt_01JF0000000000000000000099',
  ]);
  assert.deepEqual(db.prepare("SELECT positions FROM idempotency WHERE key = 'k-gen'").pluck().get(), '[[2,1],[1,2],[1,1]]');
  assert.equal(db.prepare("SELECT ids FROM idempotency WHERE key = 'k-gen'").pluck().get(), JSON.stringify([GENERATED(2), 'chosen-a', GENERATED(1)]));

  const store = new SqliteEventStore(db, 'new-epoch');
  const replay = await store.append({ idempotencyKey: 'k-gen', events: [{ ...event('x'), channel: 'a' }] });
  assert.deepEqual(replay.events.map((e) => [e.channel, e.seq, e.id]), [['b', 1, GENERATED(2)], ['a', 2, 'chosen-a'], ['a', 1, GENERATED(1)]]);
  const partly = await store.append({ idempotencyKey: 'k-trimmed', events: [{ ...event('x'), channel: 'a' }] });
  assert.deepEqual(partly.events.map((e) => e.id), [GENERATED(1)]);
  assert.deepEqual((await store.append({ events: [{ ...event('x'), channel: 'a', id: 'chosen-a' }] })).created, [false]);
  await assert.rejects(store.append({ events: [{ ...event('x'), channel: 'b', id: 'chosen-a' }] }), { code: 'event_id_conflict' });
  assert.deepEqual((await store.append({ events: [{ ...event('x'), channel: 'b', id: 'evt_01JF0000000000000000000099' }] })).created, [false]);
  // Appended after the migration: a generated id is written outside the index.
  await store.append({ events: [{ channel: 'a', id: GENERATED(3), generated: true, type: 't', data: {}, time: 1 }] });
  assert.equal(db.prepare('SELECT chosen FROM events WHERE cid = 1 AND seq = 3').pluck().get(), 0);
  assert.equal((await store.head('a')).head, 3);
  await store.close();
  db.close();
});

/** A store on a fresh in-memory database keeping at most `maxCachedChannels` channels' entries in memory. */
function boundedStore(maxCachedChannels: number) {
  const db = new Database(':memory:');
  migrate(db);
  const store = new SqliteEventStore(db, 'epoch', { maxCachedChannels });
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

it('keeps what a savepoint must undo in memory, and a failing request over a thousand channels undoes every page it changed while its neighbours commit', async () => {
  // On a file: an in-memory database keeps its sub-journals in memory whatever temp_store says.
  const dir = mkdtempSync(join(tmpdir(), 'herald-savepoints-'));
  const db = new Database(join(dir, 'herald.db'));
  db.pragma('journal_mode = WAL');
  migrate(db);
  const store = new SqliteEventStore(db, 'epoch');
  try {
    // 2 is MEMORY: without it a savepoint past 64 KiB of pages writes each further page to a temporary file.
    assert.equal(db.pragma('temp_store', { simple: true }), 2);
    await store.append({ events: [{ ...event('x'), channel: 'elsewhere', id: 'taken' }] });
    await store.append({ events: [{ ...event('x'), channel: 'wide-1' }] });
    const payload = { text: 'x'.repeat(200) };
    // A thousand new channels and their events change far more than 64 KiB of pages before the last event fails.
    const failing = [
      ...Array.from({ length: 1000 }, (_, i) => ({ ...event('wide'), channel: `wide-${i}`, data: payload })),
      { ...event('wide'), channel: 'wide-0', id: 'taken' },
    ];
    const outcomes = await Promise.allSettled([
      store.append({ events: [{ ...event('before'), channel: 'wide-1' }, { ...event('before'), channel: 'n' }] }),
      store.append({ events: failing }),
      store.append({ events: [{ ...event('after'), channel: 'wide-1' }, { ...event('after'), channel: 'n' }] }),
    ]);
    assert.deepEqual(
      outcomes.map((o) => o.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    assert.equal(((outcomes[1] as PromiseRejectedResult).reason as { code?: string }).code, 'event_id_conflict');
    assert.deepEqual((await store.read('wide-1', 0, 10)).events.map((e) => [e.seq, e.type]), [[1, 'x'], [2, 'before'], [3, 'after']]);
    assert.deepEqual((await store.read('n', 0, 10)).events.map((e) => [e.seq, e.type]), [[1, 'before'], [2, 'after']]);
    assert.equal((await store.head('wide-2')).head, 0);
    assert.equal(db.prepare("SELECT COUNT(*) FROM events WHERE type = 'wide'").pluck().get(), 0);
    assert.deepEqual(db.prepare('SELECT name FROM channels ORDER BY name').pluck().all(), ['elsewhere', 'n', 'wide-1']);
    // The next request over the same channels writes from where its neighbours left them.
    const next = await store.append({ events: failing.slice(0, 1000) });
    assert.deepEqual([next.events[0]!.seq, next.events[1]!.seq], [1, 4]);
  } finally {
    await store.close();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

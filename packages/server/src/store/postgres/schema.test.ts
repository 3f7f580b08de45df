import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../../../test/support/postgres.js';
import { buildSchema, SCHEMA_VERSION } from './schema.js';
import { openPostgresStorage } from './open.js';
import { SQL } from './append-writer.js';

const GENERATED = (n: number) => `evt_01JF${String(n).padStart(22, '0')}`;
// Each event without a chosen id gets the next one: ids drawn at random collided now and then, and an id already
// on another channel is a 409 no test asked for.
let nextId = 900;
const event = (channel: string, extra: { id?: string; generated?: boolean } = {}) => ({
  channel,
  id: extra.id ?? GENERATED(nextId++),
  type: 't',
  data: {},
  time: 1,
  ...extra,
});

let database: TestDatabase;
let client: pg.Client;
before(async () => {
  database = await createTestDatabase();
  client = new pg.Client({ connectionString: database.url });
  await client.connect();
});
after(async () => {
  await client.end();
  await database.drop();
});

test('a schema 3 database keeps its ids unique and its idempotency keys replaying once migrated to schema 4, where new generated ids are not indexed', async () => {
  // The database as Herald left it before schema 4: the older migrations only.
  await buildSchema(client, 3);
  await client.query("INSERT INTO channels (cid, name, epoch, head) VALUES (1, 'a', 'e', 2), (2, 'b', 'e', 2)");
  await client.query("SELECT setval('channels_cid_seq', 2)");
  const insert = "INSERT INTO events (cid, seq, id, type, time, data, meta) VALUES ($1, $2, $3, 't', 1, $4, NULL)";
  await client.query(insert, [1, 1, GENERATED(1), '{"n":1}']);
  await client.query(insert, [1, 2, 'chosen-a', '{"n":2}']);
  await client.query(insert, [2, 1, GENERATED(2), '{"n":3}']);
  // Chosen before the generated form was reserved: it keeps its row, and its index entry, as every older row does.
  await client.query(insert, [2, 2, 'evt_01JF0000000000000000000099', '{"n":4}']);
  const key = 'INSERT INTO idempotency (key, ids, created) VALUES ($1, $2, $3)';
  await client.query(key, ['k-gen', JSON.stringify([GENERATED(2), 'chosen-a', GENERATED(1)]), Date.now()]);
  await client.query(key, ['k-trimmed', JSON.stringify(['gone', GENERATED(1)]), Date.now()]);

  const storage = await openPostgresStorage({ url: database.url });
  const store = storage.events;
  try {
    assert.equal((await client.query('SELECT max(version) AS v FROM schema_versions')).rows[0].v, SCHEMA_VERSION);
    const indexes = (await client.query("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'events' ORDER BY indexname")).rows;
    assert.deepEqual(indexes.map((r) => r.indexname), ['events_by_chosen_id', 'events_pkey']);
    assert.match(indexes[0].indexdef, /UNIQUE INDEX .* \(id\) WHERE chosen$/);
    // The migration rewrote no row: the older ones read the column's default, and all stay in the index.
    assert.deepEqual((await client.query('SELECT id FROM events WHERE chosen ORDER BY id')).rows.map((r) => r.id), [
      'chosen-a',
      GENERATED(1),
      GENERATED(2),
      'evt_01JF0000000000000000000099',
    ]);
    const positions = async (k: string) => JSON.parse((await client.query('SELECT positions FROM idempotency WHERE key = $1', [k])).rows[0].positions);
    assert.deepEqual(await positions('k-gen'), [[2, 1], [1, 2], [1, 1]]);
    assert.deepEqual(await positions('k-trimmed'), [[1, 1]]);

    const replay = await store.append({ idempotencyKey: 'k-gen', events: [event('a')] });
    assert.equal(replay.replayed, true);
    assert.deepEqual(replay.events.map((e) => [e.channel, e.seq, e.id, e.data]), [
      ['b', 1, GENERATED(2), { n: 3 }],
      ['a', 2, 'chosen-a', { n: 2 }],
      ['a', 1, GENERATED(1), { n: 1 }],
    ]);
    const partly = await store.append({ idempotencyKey: 'k-trimmed', events: [event('a')] });
    assert.deepEqual(partly.events.map((e) => e.id), [GENERATED(1)]);
    assert.deepEqual((await store.append({ events: [event('a', { id: 'chosen-a' })] })).created, [false]);
    await assert.rejects(store.append({ events: [event('b', { id: 'chosen-a' })] }), { code: 'event_id_conflict' });
    assert.deepEqual((await store.append({ events: [event('b', { id: 'evt_01JF0000000000000000000099' })] })).created, [false]);

    // Appended after the migration: a generated id is written outside the index, any other id inside it.
    await store.append({ events: [event('a', { id: GENERATED(3), generated: true }), event('a', { id: 'chosen-c' })] });
    const chosen = (await client.query('SELECT seq, chosen FROM events WHERE cid = 1 AND seq > 2 ORDER BY seq')).rows;
    assert.deepEqual(chosen, [{ seq: '3', chosen: false }, { seq: '4', chosen: true }]);
    assert.equal((await store.head('a')).head, 4);

    // A key claimed since, and its replay, found by position: every event it answered, a duplicate's original too.
    const first = await store.append({ idempotencyKey: 'k-new', events: [event('b', { id: GENERATED(4), generated: true }), event('a', { id: 'chosen-a' })] });
    assert.deepEqual(await positions('k-new'), [[2, 3], [1, 2]]);
    const again = await store.append({ idempotencyKey: 'k-new', events: [event('b')] });
    assert.deepEqual(again.events, first.events);

    // A key a node of the older version claimed while this one ran has no positions: it is found by its ids, through
    // the index, as that node wrote its events (and found its duplicates' originals) with \`chosen\` at its default.
    await client.query(insert, [1, 5, GENERATED(5), '{"n":5}']);
    await client.query('UPDATE channels SET head = 5 WHERE cid = 1');
    await client.query('INSERT INTO idempotency (key, ids, created) VALUES ($1, $2, $3)', ['k-old-node', JSON.stringify([GENERATED(5), 'chosen-c']), Date.now()]);
    const old = await store.append({ idempotencyKey: 'k-old-node', events: [event('a')] });
    assert.deepEqual(old.events.map((e) => [e.channel, e.seq, e.id]), [['a', 5, GENERATED(5)], ['a', 4, 'chosen-c']]);
  } finally {
    await storage.close();
  }
});

test('every way a flush writes stores its keys\' positions: together, isolated, one key twice, a key whose events are all duplicates', async () => {
  const storage = await openPostgresStorage({ url: database.url });
  const store = storage.events;
  const positions = async (k: string) => JSON.parse((await client.query('SELECT positions FROM idempotency WHERE key = $1', [k])).rows[0].positions);
  const cid = async (name: string): Promise<number> => (await client.query('SELECT cid FROM channels WHERE name = $1', [name])).rows[0].cid;
  try {
    // Appends made in one tick share a flush, written together while every request succeeds.
    const [t1, t2] = await Promise.all([
      store.append({ idempotencyKey: 'p-t1', events: [event('p1'), event('p2')] }),
      store.append({ idempotencyKey: 'p-t2', events: [event('p1', { id: 'p-chosen' })] }),
    ]);
    const [p1, p2] = [await cid('p1'), await cid('p2')];
    assert.deepEqual(await positions('p-t1'), [[p1, t1.events[0]!.seq], [p2, t1.events[1]!.seq]]);
    assert.deepEqual(await positions('p-t2'), [[p1, t2.events[0]!.seq]]);

    // One request fails (its id is on another channel): the flush runs again, each request in a savepoint.
    const [refused, isolated] = await Promise.allSettled([
      store.append({ events: [event('p2', { id: 'p-chosen' })] }),
      store.append({ idempotencyKey: 'p-iso', events: [event('p2')] }),
    ]);
    assert.equal(refused.status === 'rejected' && (refused.reason as { code?: string }).code, 'event_id_conflict');
    assert.ok(isolated.status === 'fulfilled');
    assert.deepEqual(await positions('p-iso'), [[p2, isolated.value.events[0]!.seq]]);

    // One key twice in a flush: the second replays the first, from the positions the first wrote.
    const [first, second] = await Promise.all([
      store.append({ idempotencyKey: 'p-twice', events: [event('p1')] }),
      store.append({ idempotencyKey: 'p-twice', events: [event('p1')] }),
    ]);
    assert.equal(second.replayed, true);
    assert.deepEqual(second.events, first.events);
    assert.deepEqual(await positions('p-twice'), [[p1, first.events[0]!.seq]]);

    // Nothing new to write, and the key is still kept with its events' positions: those of the originals.
    const dup = await store.append({ idempotencyKey: 'p-dup', events: [event('p1', { id: 'p-chosen' })] });
    assert.deepEqual(dup.created, [false]);
    assert.deepEqual(await positions('p-dup'), [[p1, t2.events[0]!.seq]]);
  } finally {
    await storage.close();
  }
});

test('a chosen id is looked up through the partial index, and a replay reads events by primary key', async () => {
  // Any plan will do for a table this small: forbid the sequential scan, so the plan shows whether an index can serve.
  await client.query('BEGIN');
  try {
    await client.query('SET LOCAL enable_seqscan = off');
    const plan = async (sql: string, params: unknown[]) => (await client.query(`EXPLAIN ${sql}`, params)).rows.map((r) => r['QUERY PLAN']).join('\n');
    assert.match(await plan(SQL.chosenEventsById, [['p-chosen']]), /events_by_chosen_id/);
    assert.match(await plan(SQL.eventsAt, [[1], [1]]), /events_pkey/);
  } finally {
    await client.query('ROLLBACK');
  }
});

test('a migration that deadlocks with a node still writing runs again and completes', async () => {
  const fresh = await createTestDatabase();
  const writer = new pg.Client({ connectionString: fresh.url });
  await writer.connect();
  try {
    await buildSchema(writer, 3);
    await writer.query("INSERT INTO channels (cid, name, epoch, head) VALUES (1, 'a', 'e', 0)");
    // A node of the older version mid-flush: its key claimed (idempotency locked), its INSERT of events to come.
    await writer.query('BEGIN');
    await writer.query("INSERT INTO idempotency (key, ids, created) VALUES ('k', $1, 0)", [JSON.stringify([GENERATED(7)])]);
    const opening = openPostgresStorage({ url: fresh.url });
    // Migration 4 takes events, then waits for idempotency; the INSERT then waits for events: a deadlock, which
    // the server breaks after its deadlock_timeout (1 s) by aborting the one that waited first, the migration.
    const migrationWaits = async () =>
      (await writer.query("SELECT count(*)::int AS n FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'idempotency' AND NOT l.granted")).rows[0].n > 0;
    for (let waited = 0; !(await migrationWaits()); waited += 20) {
      assert.ok(waited < 10_000, 'the migration never came to wait for the key this node holds');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await writer.query("INSERT INTO events (cid, seq, id, type, time, data) VALUES (1, 1, $1, 't', 1, '{}')", [GENERATED(7)]);
    await writer.query('UPDATE channels SET head = 1 WHERE cid = 1');
    await writer.query('COMMIT');
    const storage = await opening;
    try {
      assert.equal((await writer.query('SELECT max(version) AS v FROM schema_versions')).rows[0].v, SCHEMA_VERSION);
      assert.equal((await writer.query("SELECT positions FROM idempotency WHERE key = 'k'")).rows[0].positions, '[[1, 1]]');
      const replay = await storage.events.append({ idempotencyKey: 'k', events: [event('a')] });
      assert.deepEqual(replay.events.map((e) => [e.channel, e.seq, e.id]), [['a', 1, GENERATED(7)]]);
    } finally {
      await storage.close();
    }
  } finally {
    await writer.end();
    await fresh.drop();
  }
});

test('a statement a schema change made stale is prepared again on a new connection, and the append goes through', async () => {
  const storage = await openPostgresStorage({ url: database.url });
  try {
    // Appends one after another reuse one connection, which has prepared the flush's statements by now.
    for (let i = 0; i < 3; i++) await storage.events.append({ events: [event('stale', { id: `stale-${i}` })] });
    // The lock's result type changes under it: that connection's prepared statement can no longer run.
    await client.query('ALTER TABLE channels ALTER COLUMN head TYPE integer');
    const after = await storage.events.append({ events: [event('stale', { id: 'stale-3' })] });
    assert.deepEqual([after.created, after.events[0]!.seq], [[true], 4]);
  } finally {
    await storage.close();
    await client.query('ALTER TABLE channels ALTER COLUMN head TYPE bigint');
  }
});

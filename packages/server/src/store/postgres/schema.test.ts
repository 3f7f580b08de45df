import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../../../test/support/postgres.js';
import { MIGRATIONS } from './schema.js';
import { openPostgresStorage } from './open.js';

const GENERATED = (n: number) => `evt_01JF${String(n).padStart(22, '0')}`;
const event = (channel: string, extra: { id?: string; generated?: boolean } = {}) => ({
  channel,
  id: extra.id ?? GENERATED(900 + Math.floor(Math.random() * 99)),
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
  await client.query('CREATE TABLE schema_versions (version integer PRIMARY KEY, applied bigint NOT NULL)');
  for (const v of [1, 2, 3]) {
    await client.query(MIGRATIONS[v]!);
    await client.query('INSERT INTO schema_versions (version, applied) VALUES ($1, 0)', [v]);
  }
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
    assert.equal((await client.query('SELECT max(version) AS v FROM schema_versions')).rows[0].v, 4);
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

    // A key a node of the older version claimed while this one ran has no positions: it is found by its ids.
    await client.query('INSERT INTO idempotency (key, ids, created) VALUES ($1, $2, $3)', ['k-old-node', JSON.stringify([GENERATED(3), 'chosen-c']), Date.now()]);
    const old = await store.append({ idempotencyKey: 'k-old-node', events: [event('a')] });
    assert.deepEqual(old.events.map((e) => [e.channel, e.seq, e.id]), [['a', 3, GENERATED(3)], ['a', 4, 'chosen-c']]);
  } finally {
    await storage.close();
  }
});

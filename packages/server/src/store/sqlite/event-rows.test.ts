import { it } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { migrate } from './schema.js';
import { SqliteEventStore } from './event-store.js';
import { EventRowWriter, ROWS_PER_INSERT } from './event-rows.js';
import { newEventId } from '../../log/ids.js';
import type { NewEvent } from '../types.js';

const generated = (n: number): NewEvent => ({ channel: 'c', id: newEventId(), generated: true, type: 't', data: { n }, time: Date.now() });
const chosen = (id: string, n: number): NewEvent => ({ channel: 'c', id, type: 't', data: { n }, time: Date.now() });

function open(): { db: Database.Database; store: SqliteEventStore } {
  const db = new Database(':memory:');
  migrate(db);
  return { db, store: new SqliteEventStore(db, 'epoch') };
}

it('a batch longer than one statement takes is written whole and in order, chosen ids and a duplicate among its generated ones', async () => {
  const { db, store } = open();
  const run = (from: number, count: number) => Array.from({ length: count }, (_, i) => generated(from + i));
  // More than a statement's worth before the chosen id, a part-filled statement's worth between, a remainder after.
  const events = [...run(0, ROWS_PER_INSERT + 4), chosen('mine', 100), ...run(20, ROWS_PER_INSERT + 4), chosen('mine', 101), ...run(40, 5)];
  const result = await store.append({ events });
  assert.equal(result.created.filter((c) => !c).length, 1);
  assert.equal(result.created.indexOf(false), ROWS_PER_INSERT * 2 + 9, 'the second "mine" is the duplicate');
  assert.equal(result.events[ROWS_PER_INSERT * 2 + 9]!.seq, ROWS_PER_INSERT + 5, 'answered with the original');
  const written = events.filter((_, i) => i !== ROWS_PER_INSERT * 2 + 9);
  const page = await store.read('c', 0, 1000);
  assert.equal(page.head, written.length);
  assert.deepEqual(
    page.events.map((e) => [e.seq, e.id, e.data]),
    written.map((e, i) => [i + 1, e.id, e.data]),
  );
  assert.equal(db.prepare('SELECT COUNT(*) FROM events').pluck().get(), written.length);
  await store.close();
  db.close();
});

it('a request that fails part way leaves none of its rows, written or queued, and the next one appends right after the last good one', async () => {
  const { db, store } = open();
  await store.append({ events: [generated(1), generated(2), generated(3)] });
  // A statement's worth is written, a few more are queued, then an event whose data JSON cannot hold fails the request.
  const failing = [...Array.from({ length: ROWS_PER_INSERT + 4 }, (_, i) => generated(10 + i)), { ...generated(0), data: 1n }, generated(99)];
  await assert.rejects(store.append({ events: failing }), TypeError);
  assert.equal((await store.head('c')).head, 3);
  const next = [generated(4), generated(5)];
  const result = await store.append({ events: next });
  assert.deepEqual(result.events.map((e) => e.seq), [4, 5]);
  assert.deepEqual(db.prepare('SELECT seq, id FROM events ORDER BY rowid').raw().all().slice(3), next.map((e, i) => [i + 4, e.id]), 'nothing of the failed request');
  assert.equal(db.prepare('SELECT COUNT(*) FROM events').pluck().get(), 5);
  await store.close();
  db.close();
});

it('a one-event request with a generated id that fails, aborted or skipped, leaves the head where it was', async () => {
  // Such a request runs with no savepoint: its head must move only once its row is written.
  const { db, store } = open();
  db.exec("CREATE TRIGGER refuse_poison AFTER INSERT ON events WHEN NEW.type = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned'); END;");
  await store.append({ events: [generated(1)] });
  const outcomes = await Promise.allSettled([
    store.append({ events: [generated(2)] }),
    store.append({ events: [{ ...generated(0), type: 'poison' }] }),
    // A NOT NULL column: OR IGNORE skips the row instead of failing the statement, and the count of rows finds it.
    store.append({ events: [{ ...generated(0), type: null as unknown as string }] }),
    store.append({ events: [generated(3)] }),
  ]);
  assert.deepEqual(
    outcomes.map((o) => o.status),
    ['fulfilled', 'rejected', 'rejected', 'fulfilled'],
  );
  assert.match(String((outcomes[1] as PromiseRejectedResult).reason), /poisoned/);
  assert.match(String((outcomes[2] as PromiseRejectedResult).reason), /Only 0 of 1 event rows were written/);
  const page = await store.read('c', 0, 10);
  assert.deepEqual(page.events.map((e) => [e.seq, e.data]), [[1, { n: 1 }], [2, { n: 2 }], [3, { n: 3 }]]);
  assert.equal(db.prepare('SELECT COUNT(*) FROM events').pluck().get(), 3);
  await store.close();
  db.close();
});

it('a row the statement skips fails it (a seq taken twice), rather than going missing unnoticed', () => {
  const db = new Database(':memory:');
  migrate(db);
  db.prepare("INSERT INTO channels (cid, name, epoch) VALUES (1, 'c', 'e')").run();
  const rows = new EventRowWriter(db);
  rows.queueGenerated(1, 1, newEventId(), 't', 0, '{}', null);
  rows.queueGenerated(1, 1, newEventId(), 't', 0, '{}', null);
  assert.throws(() => rows.flush(), /Only 1 of 2 event rows were written \(from channel 1 seq 1\)/);
  // Emptied even so: the next flush writes only what is queued after.
  rows.queueGenerated(1, 2, 'evt_next', 't', 0, '{}', null);
  rows.flush();
  assert.deepEqual(db.prepare('SELECT seq FROM events ORDER BY seq').pluck().all(), [1, 2]);
  assert.equal(db.prepare('SELECT id FROM events WHERE seq = 2').pluck().get(), 'evt_next');
  db.close();
});

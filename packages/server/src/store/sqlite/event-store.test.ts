import { it } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { migrate } from './schema.js';
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

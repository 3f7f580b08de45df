import { it } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { GroupCommit } from './group-commit.js';

it('a write that fails inside a batch fails alone: its partial writes are rolled back, the others commit', async () => {
  const db = new Database(':memory:');
  db.exec('CREATE TABLE t (v TEXT NOT NULL)');
  const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
  const group = new GroupCommit(db);
  // All three are queued in one turn, so they share one transaction.
  const results = await Promise.allSettled([
    group.run(() => insert.run('before')),
    group.run(() => {
      insert.run('half-done');
      throw new Error('the second half fails');
    }),
    group.run(() => insert.run('after')),
  ]);
  assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
  assert.equal((results[1] as PromiseRejectedResult).reason.message, 'the second half fails');
  assert.deepEqual(db.prepare('SELECT v FROM t ORDER BY rowid').pluck().all(), ['before', 'after']);
  db.close();
});

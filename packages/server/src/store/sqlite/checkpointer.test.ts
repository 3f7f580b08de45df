import { it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { migrate } from './schema.js';
import { SqliteEventStore } from './event-store.js';
import { countedCheckpointFailures, openSqliteStorage } from './open.js';
import { Checkpointer, MAX_FAILED_CHECKPOINTS, WIDE_COMMIT_CHANNELS } from './checkpointer.js';
import { newEventId } from '../../log/ids.js';
import type { AppendRequest } from '../types.js';
import { families } from '../../metrics/registry.js';

/** `herald_store_checkpoint_failures_total` as a scrape of a SQLite node would read it. */
async function checkpointFailures(): Promise<number> {
  const metric = await families.checkpointFailures.get();
  return metric.values[0]?.value ?? 0;
}

/** One event on each of `channels` channels, named from `prefix`. */
function spread(channels: number, prefix = 'user-'): AppendRequest {
  return {
    events: Array.from({ length: channels }, (_, i) => ({ channel: `${prefix}${i}`, id: newEventId(), generated: true, type: 't', data: { i, pad: 'x'.repeat(64) }, time: Date.now() })),
  };
}

/** A new database file in WAL mode, in a directory of its own. */
function walDatabase(): { dir: string; file: string; db: Database.Database } {
  const dir = mkdtempSync(join(tmpdir(), 'herald-checkpoint-'));
  const file = join(dir, 'herald.db');
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  return { dir, file, db };
}

/** A Checkpointer that runs nothing: says when it was asked, and is "running" until the test lets it end. */
class HeldCheckpoints {
  requests = 0;
  running = false;
  available = true;
  private release: (() => void) | undefined;
  private ended: Promise<void> = Promise.resolve();
  request(): void {
    this.requests += 1;
  }
  hold(): void {
    this.running = true;
    this.ended = new Promise((resolve) => (this.release = resolve));
  }
  end(): void {
    this.running = false;
    this.release?.();
  }
  idle(): Promise<void> {
    return this.ended;
  }
}

it('a wide commit leaves its checkpoint to the checkpoint thread, a narrow one to SQLite, and commits wait while one runs', async () => {
  const { dir, file, db } = walDatabase();
  migrate(db);
  // A threshold this test's commits pass by themselves: past SQLite's 1,000 pages takes channels whose index entries
  // already fill pages of their own, many thousands of events.
  db.pragma('wal_autocheckpoint = 5');
  const checkpoints = new HeldCheckpoints();
  const store = new SqliteEventStore(db, 'epoch', { checkpoints });
  try {
    const before = statSync(file).size;
    await store.append(spread(WIDE_COMMIT_CHANNELS));
    assert.equal(checkpoints.requests, 1);
    assert.equal(statSync(file).size, before, 'nothing was copied into the database inside the COMMIT');
    assert.equal(db.pragma('wal_autocheckpoint', { simple: true }), 5, "SQLite's own checkpoint is back for the next commit");

    await store.append(spread(WIDE_COMMIT_CHANNELS - 1, 'narrow-'));
    assert.equal(checkpoints.requests, 1, 'a narrow commit asks for none');
    assert.ok(statSync(file).size > before, "and SQLite's own checkpoint ran in its COMMIT");

    checkpoints.hold();
    let committed = false;
    const held = store.append(spread(1)).then(() => (committed = true));
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(committed, false, 'held while the checkpoint runs');
    checkpoints.end();
    await held;
    assert.equal((await store.head('user-0')).head, 2);

    // With no thread left to run them, a wide commit keeps SQLite's own checkpoint, or the WAL would only grow.
    checkpoints.available = false;
    const size = statSync(file).size;
    await store.append(spread(WIDE_COMMIT_CHANNELS, 'late-'));
    assert.equal(checkpoints.requests, 1);
    assert.ok(statSync(file).size > size, "SQLite's own checkpoint ran in its COMMIT");
  } finally {
    await store.close();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

it('the checkpoint thread copies every wide commit into the database, and the WAL file starts over instead of growing', async () => {
  const { dir, file, db } = walDatabase();
  db.pragma('synchronous = NORMAL');
  migrate(db);
  const checkpointer = new Checkpointer(file);
  const store = new SqliteEventStore(db, 'epoch', { checkpoints: checkpointer });
  const wal = () => statSync(`${file}-wal`).size;
  try {
    await store.append(spread(300));
    await checkpointer.idle();
    const afterOne = wal();
    for (let round = 1; round < 12; round++) {
      await store.append(spread(300));
      await checkpointer.idle();
    }
    assert.equal(checkpointer.runs, 12);
    assert.equal(checkpointer.lastError, undefined);
    assert.ok(checkpointer.lastResult && checkpointer.lastResult.log > 0);
    assert.equal(checkpointer.lastResult.checkpointed, checkpointer.lastResult.log, 'every frame is in the database');
    // Each commit after a checkpoint starts the file over: twelve commits' frames would be about twelve times this.
    assert.ok(wal() <= afterOne * 2, `the WAL file went from ${afterOne} to ${wal()} bytes`);
    for (const channel of ['user-0', 'user-150', 'user-299']) {
      const page = await store.read(channel, 0, 100);
      assert.deepEqual(page.events.map((e) => e.seq), Array.from({ length: 12 }, (_, i) => i + 1));
    }
  } finally {
    await store.close();
    await checkpointer.close();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

it('a store opened on disk runs wide commits through its checkpoint thread, and its close ends that thread', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-checkpoint-'));
  const storage = await openSqliteStorage({ dataDir: dir });
  try {
    await storage.events.append(spread(WIDE_COMMIT_CHANNELS));
    await storage.events.append(spread(WIDE_COMMIT_CHANNELS));
    assert.equal((await storage.events.read('user-0', 0, 10)).events.length, 2);
  } finally {
    await storage.close();
  }
  // The last connection to close removes the WAL file: the thread's connection was closed before the store's.
  assert.equal(existsSync(join(dir, 'herald.db-wal')), false);
  rmSync(dir, { recursive: true, force: true });
});

it('a checkpoint thread that cannot start is given up, and wide commits checkpoint themselves again', async () => {
  const checkpointer = new Checkpointer(join(tmpdir(), 'herald-no-such-directory', 'herald.db'));
  assert.equal(checkpointer.available, true);
  checkpointer.request();
  assert.equal(checkpointer.running, true);
  await checkpointer.idle();
  assert.equal(checkpointer.running, false);
  assert.equal(checkpointer.available, false);
  assert.match(String(checkpointer.lastError), /directory does not exist|unable to open/i);
  checkpointer.request();
  assert.equal(checkpointer.running, false, 'nothing more is started');
  await checkpointer.close();
});

it('tells of each failed checkpoint, and of the one that gives the thread up, and counts them', async () => {
  const failures = checkpointFailures;
  const told: Array<[string, boolean]> = [];
  const before = await failures();
  // Counted as openSqliteStorage counts them.
  const broken = new Checkpointer(
    join(tmpdir(), 'herald-no-such-directory', 'herald.db'),
    countedCheckpointFailures((error, givenUp) => told.push([error.message, givenUp])),
  );
  broken.request();
  await broken.idle();
  assert.equal(told.length, 1);
  assert.match(told[0]![0], /directory does not exist|unable to open/i);
  assert.equal(told[0]![1], true, 'a thread that cannot open the database is given up');
  assert.equal(await failures(), before + 1);
  await broken.close();
  // A listener that throws changes nothing: the checkpoint still settles, so commits held behind it go on.
  const throwing = new Checkpointer(
    join(tmpdir(), 'herald-no-such-directory', 'herald.db'),
    countedCheckpointFailures(() => {
      throw new Error('a broken listener');
    }),
  );
  throwing.request();
  await throwing.idle();
  assert.equal(throwing.running, false);
  assert.equal(await failures(), before + 2);
  await throwing.close();

  // A busy checkpoint is no failure, however many in a row: another connection's checkpoint (a RESTART here, which
  // holds SQLite's checkpoint lock while it waits for a reader to finish) is copying the same frames.
  const { dir, file, db } = walDatabase();
  db.exec('CREATE TABLE t (x); INSERT INTO t VALUES (1)');
  const reader = new Database(file);
  const told2: boolean[] = [];
  const checkpointer = new Checkpointer(file, countedCheckpointFailures((_error, givenUp) => told2.push(givenUp)));
  let restarting: Worker | undefined;
  try {
    reader.exec('BEGIN');
    reader.prepare('SELECT * FROM t').all();
    db.exec('INSERT INTO t VALUES (2)');
    restarting = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       const db = new (require(workerData.driver))(workerData.file);
       db.pragma('busy_timeout = 5000');
       parentPort.postMessage('started');
       db.pragma('wal_checkpoint(RESTART)');
       db.close();`,
      { eval: true, workerData: { file, driver: createRequire(import.meta.url).resolve('better-sqlite3') } },
    );
    await once(restarting, 'message');
    // The RESTART copies the frames, then waits for the reader, holding the lock; give it time to get there.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const count = await failures();
    for (let i = 0; i < MAX_FAILED_CHECKPOINTS + 1; i++) {
      checkpointer.request();
      await checkpointer.idle();
      assert.match(String(checkpointer.lastError), /another checkpoint was running/);
    }
    assert.deepEqual(told2, []);
    assert.equal(checkpointer.available, true);
    assert.equal(await failures(), count);
  } finally {
    reader.exec('COMMIT');
    if (restarting) await once(restarting, 'exit');
    reader.close();
    await checkpointer.close();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
  assert.deepEqual(told2, [], 'closing is no failure');
});

it('a checkpoint thread that ends while idle is given up and told of', async () => {
  const { dir, file, db } = walDatabase();
  db.exec('CREATE TABLE t (x); INSERT INTO t VALUES (1)');
  const told: Array<[string, boolean]> = [];
  const checkpointer = new Checkpointer(file, (error, givenUp) => told.push([error.message, givenUp]));
  try {
    checkpointer.request();
    await checkpointer.idle();
    assert.equal(checkpointer.lastError, undefined);
    const worker = (checkpointer as unknown as { worker: Worker }).worker;
    const exited = once(worker, 'exit');
    await worker.terminate();
    await exited;
    assert.deepEqual(told, [['the checkpoint thread ended', true]]);
    assert.equal(checkpointer.available, false);
  } finally {
    await checkpointer.close();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

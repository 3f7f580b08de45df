import { describe, it, afterEach, mock } from 'node:test';
import assert from 'node:assert/strict';
import fs, { fstatSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openSqliteStorage } from './open.js';
import type { HeraldError } from '@herald/protocol';
import type { Storage } from '../types.js';

type SyncCallback = (error: NodeJS.ErrnoException | null) => void;

/**
 * Holds every asynchronous fdatasync() (the one WalSync runs off the event loop) until the test releases it,
 * and records the file it was asked to sync.
 */
let holding: Array<{ fd: number; done: SyncCallback }> = [];

function holdSyncs() {
  const held: Array<{ fd: number; done: SyncCallback }> = [];
  holding = held;
  let notify: (() => void) | undefined;
  mock.method(fs, 'fdatasync', (fd: number, done: SyncCallback) => {
    let called = false;
    // Released once only, by the test or else by afterEach, so a failed test cannot leave close() waiting.
    held.push({ fd, done: (error) => (called ? undefined : ((called = true), done(error))) });
    notify?.();
  });
  syncBuiltinESMExports();
  return {
    held,
    /** Resolves once `n` syncs have been asked for in all. */
    async asked(n: number): Promise<void> {
      while (held.length < n) await new Promise<void>((r) => (notify = r));
    },
  };
}

/** Whether `promise` has settled by the time the event loop has gone round a few times. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  promise.then(
    () => (done = true),
    () => (done = true),
  );
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  return done;
}

const event = (channel: string, n: number) => ({ channel, id: `evt_sync_${channel}_${n}`, type: 'test', data: { n }, time: Date.now() });

describe('SQLite appends are answered after their WAL is synced', () => {
  let dir: string;
  let storage: Storage | undefined;
  afterEach(async () => {
    mock.restoreAll();
    syncBuiltinESMExports();
    for (const sync of holding) sync.done(null);
    await storage?.close().catch(() => {});
    storage = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  /** A store on a fresh directory, with its syncs held. */
  async function open(synchronous?: 'normal', syncsInFlight?: number) {
    dir = mkdtempSync(join(tmpdir(), 'herald-walsync-'));
    const syncs = holdSyncs();
    const opened = await openSqliteStorage({ dataDir: dir, synchronous, syncsInFlight });
    storage = opened;
    return { syncs, events: opened.events };
  }

  it('resolves an append, and shows it to readers, only once the -wal file is fdatasync()ed', async () => {
    const { syncs, events } = await open();
    const appending = events.append({ events: [event('c', 1)] });
    await syncs.asked(1);
    assert.equal(fstatSync(syncs.held[0]!.fd).ino, statSync(join(dir, 'herald.db-wal')).ino, 'the WAL is the file synced');
    assert.equal(await settled(appending), false, 'not answered before the sync completes');
    const before = await events.read('c', 0, 10);
    assert.deepEqual([before.head, before.events.length], [0, 0], 'readers do not see an event that is not durable yet');
    assert.equal((await events.head('c')).head, 0);

    syncs.held[0]!.done(null);
    const result = await appending;
    assert.deepEqual(result.events.map((e) => e.seq), [1]);
    const after = await events.read('c', 0, 10);
    assert.deepEqual([after.head, after.events.map((e) => e.data)], [1, [{ n: 1 }]]);
  });

  it('by default runs one sync at a time: appends made while it runs commit together after it, and share the next', async () => {
    const { syncs, events } = await open();
    const onDisk = new Database(join(dir, 'herald.db'), { readonly: true });
    const committed = () => onDisk.prepare('SELECT count(*) FROM events').pluck().get();
    const first = events.append({ events: [event('c', 1)] });
    await syncs.asked(1);
    const waiting = [events.append({ events: [event('c', 2)] })];
    await new Promise((r) => setImmediate(r));
    waiting.push(events.append({ events: [event('d', 1)] }));
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    assert.equal(syncs.held.length, 1, 'no second sync while one runs');
    assert.equal(committed(), 1, 'appends wait for the running sync before they commit');

    syncs.held[0]!.done(null);
    assert.deepEqual((await first).events.map((e) => e.seq), [1]);
    await syncs.asked(2);
    assert.equal(committed(), 3, 'the two waiting appends committed as one, then synced');
    assert.equal(await settled(Promise.all(waiting)), false, 'answered only after their own sync');
    syncs.held[1]!.done(null);
    assert.deepEqual((await Promise.all(waiting)).map((r) => r.events[0]!.seq), [2, 1]);
    assert.equal(syncs.held.length, 2, 'both waited for the same sync');
    onDisk.close();
  });

  it('with syncsInFlight 3, runs up to 3 syncs at once; a later one answers the earlier ones; appends beyond wait and commit together', async () => {
    const { syncs, events } = await open(undefined, 3);
    const nextTurn = () => new Promise((r) => setImmediate(r));
    // One append per turn of the event loop: each commits on its own and starts its own sync, while a slot is free.
    const early = [events.append({ events: [event('c', 1)] })];
    await syncs.asked(1);
    early.push(events.append({ events: [event('c', 2)] }));
    await syncs.asked(2);
    early.push(events.append({ events: [event('c', 3)] }));
    await syncs.asked(3);
    const late = [events.append({ events: [event('c', 4)] })];
    await nextTurn();
    late.push(events.append({ events: [event('d', 1)] }));
    await nextTurn();
    assert.equal(syncs.held.length, 3, 'no fourth sync while three run');
    // A writeback error is reported once per open file description: concurrent syncs on one descriptor could let one
    // succeed over lost pages. Each runs on a descriptor of its own.
    assert.equal(new Set(syncs.held.map((h) => h.fd)).size, 3, 'three syncs at once, on three descriptors');
    const onDisk = new Database(join(dir, 'herald.db'), { readonly: true });
    const committed = () => onDisk.prepare('SELECT count(*) FROM events').pluck().get();
    assert.equal(committed(), 3, 'appends made while every slot is taken wait for one to free before they commit');

    // The newest sync finishes first: it began after all three commits, so it answers all three.
    syncs.held[2]!.done(null);
    assert.deepEqual((await Promise.all(early)).map((r) => r.events[0]!.seq), [1, 2, 3]);
    assert.equal((await events.head('c')).head, 3, 'readers see what is durable');
    // The two waiting appends become one transaction and one sync.
    await syncs.asked(4);
    assert.equal(committed(), 5);
    assert.equal(await settled(Promise.all(late)), false, 'answered only after their own sync');
    syncs.held[3]!.done(null);
    await Promise.all(late);
    assert.equal(syncs.held.length, 4, 'both waited for the same sync');
    onDisk.close();
    assert.equal((await events.head('c')).head, 4);
  });

  it('a failed sync fails its appends and every append after it, and readers never see them', async () => {
    const { syncs, events } = await open();
    const appending = events.append({ events: [event('c', 1)] });
    await syncs.asked(1);
    syncs.held[0]!.done(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
    await assert.rejects(appending, (error: HeraldError) => {
      assert.equal(error.code, 'store_unavailable');
      assert.deepEqual(error.details, { reason: 'sync_failed' });
      assert.match(error.message, /Syncing .*herald\.db-wal to disk failed .*until Herald restarts/);
      return true;
    });
    await assert.rejects(events.append({ events: [event('c', 2)] }), /until Herald restarts/);
    assert.equal(syncs.held.length, 1, 'nothing more is written or synced');
    await assert.rejects(events.ping(), /until Herald restarts/, '/readyz pings the store: not ready');
    assert.equal((await events.read('c', 0, 10)).events.length, 0);
  });

  it('with synchronous "normal" there is no sync of its own: the commit answers', async () => {
    const { syncs, events } = await open('normal');
    const result = await events.append({ events: [event('c', 1)] });
    assert.deepEqual(result.events.map((e) => e.seq), [1]);
    assert.equal(syncs.held.length, 0);
  });
});

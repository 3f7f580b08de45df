import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { HeraldError } from '@herald/protocol';
import BetterSqlite3 from 'better-sqlite3';
import { migrate } from '../schema.js';
import { SerializedJson } from '../../rows.js';
import type { NewEvent } from '../../types.js';
import { ThreadedEventStore } from './threaded-event-store.js';
import { fromWire, packEvents, toWire, unpackEvents } from './protocol.js';

describe('the event store thread’s wire format', () => {
  it('packs events, their data and meta serialized, into one string and one number array, and unpacks each field as it was', () => {
    const events: NewEvent[] = [
      { channel: 'café:ünïcode', id: 'evt_chosen_😀', type: '', data: { a: 'x' }, time: 1_700_000_000_123, meta: { trace: 'é' } },
      { channel: 'c', id: 'evt_01ARZ3NDEKTSV4RRFFQ69G5FAV', type: 'order.created', data: null, time: 1, generated: true },
      { channel: 'c', id: '', type: 't', data: '', time: 0 },
    ];
    const packed = packEvents(events);
    assert.equal(typeof packed.text, 'string');
    assert.ok(packed.numbers instanceof Float64Array);
    const back = unpackEvents(structuredClone(packed));
    assert.deepEqual(
      back.map((e) => ({ ...e, data: (e.data as SerializedJson).text, meta: e.meta && (e.meta as unknown as SerializedJson).text })),
      [
        { channel: 'café:ünïcode', id: 'evt_chosen_😀', type: '', data: '{"a":"x"}', time: 1_700_000_000_123, meta: '{"trace":"é"}', generated: false },
        { channel: 'c', id: 'evt_01ARZ3NDEKTSV4RRFFQ69G5FAV', type: 'order.created', data: 'null', time: 1, meta: undefined, generated: true },
        { channel: 'c', id: '', type: 't', data: '""', time: 0, meta: undefined, generated: false },
      ],
    );
    assert.ok(back.every((e) => e.data instanceof SerializedJson));
  });

  it('carries errors across with their class, code, details and cause', () => {
    const disk = Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    const herald = new HeraldError('store_unavailable', 'full', { reason: 'disk_full' });
    herald.cause = disk;
    const back = fromWire(structuredClone(toWire(herald)));
    assert.ok(back instanceof HeraldError);
    assert.equal(back.code, 'store_unavailable');
    assert.equal(back.status, 503);
    assert.deepEqual(back.details, { reason: 'disk_full' });
    assert.equal((back.cause as { code?: string }).code, 'SQLITE_FULL');
    assert.equal((back.cause as Error).message, 'database or disk is full');
    const plain = fromWire(toWire(new TypeError('Do not know how to serialize a BigInt')));
    assert.equal(plain.name, 'TypeError');
    assert.equal(fromWire(toWire('a string thrown')).message, 'a string thrown');
  });
});

describe('ThreadedEventStore', () => {
  const opened: Array<{ store: ThreadedEventStore; dir: string }> = [];
  afterEach(async () => {
    for (const { store, dir } of opened.splice(0)) {
      await store.close().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    }
  });

  async function open(walSync = true, onCommit?: (writes: number, seconds: number) => void, onThreadFailure?: (error: Error) => void) {
    const dir = mkdtempSync(join(tmpdir(), 'herald-thread-'));
    const file = join(dir, 'herald.db');
    const db = new BetterSqlite3(file);
    db.pragma('journal_mode = WAL');
    migrate(db);
    db.close();
    const store = await ThreadedEventStore.start({ file, epoch: 'epoch', channelCache: undefined, syncsInFlight: undefined, walSync, onCommit, onThreadFailure });
    opened.push({ store, dir });
    return store;
  }

  it('answers an append with the caller’s own data objects, after a sync of the WAL on its thread', async () => {
    const commits: number[] = [];
    const store = await open(true, (writes) => commits.push(writes));
    const data = { order: 1, items: ['a'] };
    const meta = { source: 'test' };
    const result = await store.append({ events: [{ channel: 'c', id: 'evt_t_1', type: 't', data, time: Date.UTC(2026, 0, 1), meta }] });
    assert.equal(result.events[0]!.data, data, 'the same object, not a copy');
    assert.equal(result.events[0]!.meta, meta);
    assert.deepEqual(result.events[0], { id: 'evt_t_1', channel: 'c', seq: 1, type: 't', data, time: '2026-01-01T00:00:00.000Z', meta });
    assert.deepEqual(result.created, [true]);
    assert.ok((await store.diagnostics()).walSyncs! >= 1, 'the append waited for a sync');
    assert.deepEqual(commits, [1], 'its commit is reported to this thread');
    const read = await store.read('c', 0, 10);
    assert.deepEqual(read.events, [{ id: 'evt_t_1', channel: 'c', seq: 1, type: 't', data, time: '2026-01-01T00:00:00.000Z', meta }]);
  });

  it('with synchronous normal, nothing syncs the WAL', async () => {
    const store = await open(false);
    await store.append({ events: [{ channel: 'c', id: 'evt_t_2', type: 't', data: 1, time: 1 }] });
    assert.equal((await store.diagnostics()).walSyncs, undefined);
  });

  it('answers duplicates and replays with the stored events, and refusals with their HeraldError', async () => {
    const store = await open();
    await store.append({ events: [{ channel: 'c', id: 'evt_dup', type: 't', data: { first: true }, time: 1 }], idempotencyKey: 'k' });
    const again = await store.append({
      events: [
        { channel: 'c', id: 'evt_new', type: 't', data: { n: 2 }, time: 2 },
        { channel: 'c', id: 'evt_dup', type: 't', data: { first: false }, time: 3 },
      ],
    });
    assert.deepEqual(again.created, [true, false]);
    assert.deepEqual(again.events.map((e) => [e.seq, e.data]), [
      [2, { n: 2 }],
      [1, { first: true }],
    ]);
    const replay = await store.append({ events: [{ channel: 'c', id: 'evt_other', type: 't', data: 0, time: 4 }], idempotencyKey: 'k' });
    assert.equal(replay.replayed, true);
    assert.deepEqual(replay.events.map((e) => [e.id, e.data]), [['evt_dup', { first: true }]]);
    await assert.rejects(store.append({ events: [{ channel: 'other', id: 'evt_dup', type: 't', data: 0, time: 5 }] }), (error: HeraldError) => {
      assert.ok(error instanceof HeraldError);
      assert.equal(error.code, 'event_id_conflict');
      return true;
    });
    await assert.rejects(store.append({ events: [{ channel: 'c', id: 'evt_big', type: 't', data: 1n, time: 6 }] }), /BigInt/);
    assert.equal((await store.head('c')).head, 2, 'nothing of the refused appends was written');
  });

  it('refuses every call once its thread has ended, and /readyz’s ping with it; an append it had may have been written', async () => {
    const told: Error[] = [];
    const store = await open(true, undefined, (error) => told.push(error));
    await store.append({ events: [{ channel: 'c', id: 'evt_t_3', type: 't', data: 1, time: 1 }] });
    const worker = (store as unknown as { worker: Worker }).worker;
    // Asked once the thread is stopping: never answered, and neither may wait for ever.
    const terminating = worker.terminate();
    const pending = store.read('c', 0, 10);
    const appending = store.append({ events: [{ channel: 'c', id: 'evt_t_5', type: 't', data: 1, time: 1 }] });
    await terminating;
    await assert.rejects(pending, (error: HeraldError) => error.code === 'unavailable' && /thread stopped/.test(error.message));
    // Not "nothing was written": the thread may have committed it and stopped before it answered.
    await assert.rejects(appending, (error: HeraldError) => {
      assert.equal(error.code, 'store_unavailable');
      assert.deepEqual(error.details, { outcome: 'unknown' });
      assert.match(error.message, /may have been written, or not\. Retry with the same Idempotency-Key/);
      return true;
    });
    assert.equal(told.length, 1, 'the failure is told once');
    assert.match(told[0]!.message, /thread stopped/);
    await assert.rejects(store.ping(), (error: HeraldError) => error.code === 'unavailable');
    await assert.rejects(store.append({ events: [{ channel: 'c', id: 'evt_t_4', type: 't', data: 1, time: 1 }] }), /thread stopped/);
  });

  it('closing is no failure: nothing is told, and calls after it are refused as closed', async () => {
    const told: Error[] = [];
    const store = await open(true, undefined, (error) => told.push(error));
    await store.append({ events: [{ channel: 'c', id: 'evt_t_6', type: 't', data: 1, time: 1 }] });
    await store.close();
    await assert.rejects(store.head('c'), /The store is closed/);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(told, []);
  });

  it('fails to start with the reason the database cannot be opened', async () => {
    await assert.rejects(
      ThreadedEventStore.start({ file: join(tmpdir(), 'herald-no-such-dir', 'x', 'herald.db'), epoch: 'e', channelCache: undefined, syncsInFlight: undefined, walSync: true }),
      /unable to open database|directory does not exist/i,
    );
  });
});

import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { HeraldError } from '@herald/protocol';
import { channelPages, type EventStore, type NewEvent } from './types.js';

export interface StoreHarness {
  store: EventStore;
  /** Closes the store and opens the same data again, as a restart would. */
  reopen(): Promise<EventStore>;
  cleanup(): Promise<void>;
}

let counter = 0;
function ev(channel: string, data: unknown = {}, extra: Partial<NewEvent> = {}): NewEvent {
  counter += 1;
  return { channel, id: `evt_test_${process.pid}_${counter}`, type: 'test', data, time: Date.now(), ...extra };
}

/**
 * The contract every EventStore must keep, whatever its backend. A new
 * backend calls this with a factory and passes the same tests as SQLite.
 */
export function describeEventStoreConformance(name: string, open: () => Promise<StoreHarness>): void {
  describe(`EventStore conformance: ${name}`, () => {
    let h: StoreHarness;
    let store: EventStore;
    beforeEach(async () => {
      h = await open();
      store = h.store;
    });
    afterEach(async () => {
      await h.cleanup();
    });

    it('assigns per-channel seqs from 1 and reads them back in order', async () => {
      const a1 = await store.append({ events: [ev('a', { n: 1 })] });
      const b1 = await store.append({ events: [ev('b', { n: 1 })] });
      const a2 = await store.append({ events: [ev('a', { n: 2 }), ev('a', { n: 3 })] });
      assert.deepEqual(a1.events.map((e) => e.seq), [1]);
      assert.deepEqual(b1.events.map((e) => e.seq), [1]);
      assert.deepEqual(a2.events.map((e) => e.seq), [2, 3]);
      assert.deepEqual(a2.created, [true, true]);
      const page = await store.read('a', 0, 100);
      assert.deepEqual(page.events.map((e) => e.data), [{ n: 1 }, { n: 2 }, { n: 3 }]);
      assert.equal(page.head, 3);
      assert.equal(page.truncated, false);
      assert.deepEqual((await store.read('a', 1, 1)).events.map((e) => e.seq), [2]);
      assert.deepEqual((await store.read('a', 3, 10)).events, []);
    });

    it('stops a read once its events hold maxBytes of data and meta, always returning at least one', async () => {
      // Each event's data is 100 bytes as JSON (a 98-character ASCII string and its quotes); the fourth has 20 of meta.
      const text = (n: number) => String(n).padEnd(98, 'x');
      await store.append({ events: [1, 2, 3].map((n) => ev('big', text(n))) });
      await store.append({ events: [ev('big', text(4), { meta: { k: 'x'.repeat(12) } }), ev('big', text(5))] });
      const seqs = async (after: number, maxBytes: number, limit = 100) => (await store.read('big', after, limit, maxBytes)).events.map((e) => e.seq);
      // Bytes before an event under the bound: it is read.
      assert.deepEqual(await seqs(0, 250), [1, 2, 3]);
      assert.deepEqual(await seqs(0, 300), [1, 2, 3]);
      assert.deepEqual(await seqs(0, 301), [1, 2, 3, 4]);
      assert.deepEqual(await seqs(3, 120), [4]);
      assert.deepEqual(await seqs(3, 121), [4, 5]);
      // One event bigger than the bound still comes back, so a reader always makes progress.
      assert.deepEqual(await seqs(1, 1), [2]);
      assert.deepEqual(await seqs(0, 10_000, 2), [1, 2], 'the count limit still holds');
      const page = await store.read('big', 0, 100, 150);
      assert.deepEqual([page.head, page.truncated, page.events[1]!.data], [5, false, text(2)]);
    });

    it('keeps the event fields exactly', async () => {
      const input = ev('fields', { nested: { x: [1, 'two', null] }, s: 'é ✓' }, { meta: { source: 'x' }, type: 'order.created' });
      const [appended] = (await store.append({ events: [input] })).events;
      const [read] = (await store.read('fields', 0, 1)).events;
      assert.deepEqual(read, appended);
      assert.equal(read!.id, input.id);
      assert.equal(read!.type, 'order.created');
      assert.equal(read!.time, new Date(input.time).toISOString());
      assert.deepEqual(read!.meta, { source: 'x' });
    });

    it('gives 50 concurrent appenders gapless, unique seqs', async () => {
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => store.append({ events: [ev('busy', { i })] })));
      const seqs = results.map((r) => r.events[0]!.seq).sort((x, y) => x - y);
      assert.deepEqual(seqs, Array.from({ length: 50 }, (_, i) => i + 1));
      const page = await store.read('busy', 0, 100);
      assert.deepEqual(page.events.map((e) => e.seq), seqs);
    });

    it('treats a repeated id as the original event and appends nothing', async () => {
      const first = await store.append({ events: [ev('dup', { v: 1 }, { id: 'same-id' })] });
      const again = await store.append({ events: [ev('dup', { v: 2 }, { id: 'same-id' })] });
      assert.deepEqual(again.created, [false]);
      assert.deepEqual(again.events[0], first.events[0]);
      assert.equal((await store.head('dup')).head, 1);
    });

    it('never keeps a second copy of an id, even one marked generated', async () => {
      // `generated` lets a store skip looking the id up and leave it out of its unique index, but only for an id of
      // the generated form, which no publisher may choose: a chosen id marked generated is still refused.
      await store.append({ events: [ev('gen', { v: 1 }, { id: 'gen-id' })] });
      const again = await store.append({ events: [ev('gen', { v: 2 }, { id: 'gen-id', generated: true })] }).then(
        (result) => result.created,
        (error: unknown) => (error instanceof HeraldError ? error.code : error),
      );
      assert.ok(again === 'event_id_conflict' || (Array.isArray(again) && again[0] === false), `second copy: ${String(again)}`);
      await assert.rejects(
        store.append({ events: [ev('gen-other', {}, { id: 'gen-id', generated: true })] }),
        (err: unknown) => err instanceof HeraldError && err.code === 'event_id_conflict',
      );
      const batch = await store.append({ events: [ev('gen', { v: 3 }, { generated: true }), ev('gen', { v: 4 }, { id: 'gen-id' })] });
      assert.deepEqual(batch.created, [true, false], 'a chosen id beside generated ones is still found');
      assert.deepEqual((await store.read('gen', 0, 10)).events.map((e) => e.data), [{ v: 1 }, { v: 3 }]);
      assert.equal((await store.head('gen-other')).head, 0);
    });

    it('refuses an id already used on another channel, atomically for the batch', async () => {
      await store.append({ events: [ev('one', {}, { id: 'shared' })] });
      await assert.rejects(
        store.append({ events: [ev('two'), ev('two', {}, { id: 'shared' })] }),
        (err: unknown) => err instanceof HeraldError && err.code === 'event_id_conflict',
      );
      assert.equal((await store.head('two')).head, 0);
      // The failed request left no hole: the next append is seq 1.
      const next = await store.append({ events: [ev('two')] });
      assert.equal(next.events[0]!.seq, 1);
    });

    it('isolates a failing request from the others committed alongside it', async () => {
      await store.append({ events: [ev('iso-x', {}, { id: 'taken' })] });
      const outcomes = await Promise.allSettled([
        store.append({ events: [ev('iso')] }),
        store.append({ events: [ev('iso'), ev('iso', {}, { id: 'taken' })] }),
        store.append({ events: [ev('iso')] }),
      ]);
      assert.equal(outcomes[0].status, 'fulfilled');
      assert.equal(outcomes[1].status, 'rejected');
      assert.equal(outcomes[2].status, 'fulfilled');
      const page = await store.read('iso', 0, 10);
      assert.deepEqual(page.events.map((e) => e.seq), [1, 2]);
    });

    it('isolates a failing one-event request on a known channel, and leaves no hole', async () => {
      // The SQLite store writes such a request without a savepoint of its own: its failure must still touch nothing.
      await store.append({ events: [ev('iso1-x', {}, { id: 'taken-1' })] });
      await store.append({ events: [ev('iso1')] });
      const outcomes = await Promise.allSettled([
        store.append({ events: [ev('iso1')] }),
        store.append({ events: [ev('iso1', {}, { id: 'taken-1' })] }),
        store.append({ events: [ev('iso1')] }),
      ]);
      assert.deepEqual(
        outcomes.map((o) => o.status),
        ['fulfilled', 'rejected', 'fulfilled'],
      );
      assert.equal(((outcomes[1] as PromiseRejectedResult).reason as HeraldError).code, 'event_id_conflict');
      assert.deepEqual((await store.read('iso1', 0, 10)).events.map((e) => e.seq), [1, 2, 3]);
      assert.equal((await store.head('iso1')).head, 3);
    });

    it('replays an idempotency key without appending', async () => {
      const first = await store.append({ events: [ev('idem', { v: 1 }), ev('idem2', { v: 2 })], idempotencyKey: 'k1' });
      const again = await store.append({ events: [ev('idem', { v: 9 })], idempotencyKey: 'k1' });
      assert.equal(again.replayed, true);
      assert.deepEqual(again.events, first.events);
      assert.equal((await store.head('idem')).head, 1);
      // Concurrent requests with one key append once.
      const racing = await Promise.all(
        Array.from({ length: 10 }, () => store.append({ events: [ev('idem-race')], idempotencyKey: 'k2' })),
      );
      assert.equal(racing.filter((r) => !r.replayed).length, 1);
      assert.equal((await store.head('idem-race')).head, 1);
      assert.equal(await store.expireIdempotencyKeys(Date.now() + 1000), 2);
      const after = await store.append({ events: [ev('idem-race')], idempotencyKey: 'k2' });
      assert.equal(after.replayed, false);
    });

    it('trims by count and by age, and reports truncation', async () => {
      const t0 = Date.now() - 60_000;
      for (let i = 0; i < 10; i++) await store.append({ events: [ev('trim', { i }, { time: t0 + i * 1000 })] });
      assert.equal(await store.trim('trim', { maxEvents: 7 }), 3);
      let page = await store.read('trim', 0, 100);
      assert.equal(page.truncated, true);
      assert.equal(page.trimmed, 3);
      assert.deepEqual(page.events.map((e) => e.seq), [4, 5, 6, 7, 8, 9, 10]);
      page = await store.read('trim', 3, 100);
      assert.equal(page.truncated, false);
      assert.equal(await store.trim('trim', { olderThan: t0 + 5500 }), 3);
      page = await store.read('trim', 4, 100);
      assert.equal(page.truncated, true);
      assert.deepEqual(page.events.map((e) => e.seq), [7, 8, 9, 10]);
      // Trimming everything keeps the head, so seqs never restart.
      await store.trim('trim', { maxEvents: 0 });
      assert.equal((await store.head('trim')).head, 10);
      const next = await store.append({ events: [ev('trim')] });
      assert.equal(next.events[0]!.seq, 11);
    });

    it('reports a cursor beyond the head as truncated', async () => {
      await store.append({ events: [ev('ahead')] });
      const page = await store.read('ahead', 5, 10);
      assert.equal(page.truncated, true);
      assert.deepEqual(page.events.map((e) => e.seq), [1]);
    });

    it('reads stubs as read reads events: seq, time and stored size, with the same state', async () => {
      const t0 = Date.now() - 10_000;
      await store.append({ events: [ev('stubs', 'x'.repeat(98), { time: t0 }), ev('stubs', 'é ✓', { time: t0 + 1, meta: { k: 'v' } })] });
      await store.append({ events: [3, 4, 5].map((n) => ev('stubs', { n }, { time: t0 + n })) });
      const same = async (after: number, limit: number) => {
        const [page, stubs] = await Promise.all([store.read('stubs', after, limit), store.stubs('stubs', after, limit)]);
        const { events, ...state } = page;
        assert.deepEqual({ ...stubs, stubs: undefined }, { ...state, stubs: undefined }, `state after ${after}`);
        assert.deepEqual(
          stubs.stubs.map((s) => [s.seq, s.time]),
          events.map((e) => [e.seq, Date.parse(e.time)]),
          `stubs after ${after}, limit ${limit}`,
        );
        return stubs.stubs;
      };
      // Bytes as stored: 100 of JSON text for the first; "é ✓" is 6 bytes of UTF-8 (8 with its quotes) and {"k":"v"} 9.
      assert.deepEqual((await same(0, 2)).map((s) => s.bytes), [100, 17]);
      assert.deepEqual((await same(1, 100)).map((s) => s.seq), [2, 3, 4, 5]);
      assert.deepEqual(await same(5, 10), []);
      assert.equal((await store.stubs('never-written', 3, 10)).truncated, true);
      assert.deepEqual(await store.stubs('never-written', 0, 10), { ...(await store.head('never-written')), stubs: [], truncated: false });
      await store.trim('stubs', { maxEvents: 2 });
      assert.deepEqual((await same(1, 10)).map((s) => s.seq), [4, 5], 'trimmed: from the trim point');
      await same(9, 10);
    });

    it('keeps events, seqs and the epoch across a restart', async () => {
      await store.append({ events: [ev('durable', { n: 1 }), ev('durable', { n: 2 })] });
      const { epoch } = await store.head('durable');
      assert.equal((await store.head('never-written')).epoch, epoch, 'an empty channel already has its epoch');
      store = await h.reopen();
      const page = await store.read('durable', 0, 10);
      assert.deepEqual(page.events.map((e) => e.data), [{ n: 1 }, { n: 2 }]);
      assert.equal(page.epoch, epoch);
      assert.equal((await store.append({ events: [ev('durable')] })).events[0]!.seq, 3);
      assert.deepEqual(await store.channels({ limit: 10 }), ['durable']);
    });

    it('lists the channels that have had an event a page at a time, in byte order, by prefix', async () => {
      for (const name of ['b', 'a:2', 'a_x', 'c', 'a:1']) await store.append({ events: [ev(name)] });
      await store.head('only-looked-at');
      assert.deepEqual(await store.channels({ limit: 10 }), ['a:1', 'a:2', 'a_x', 'b', 'c'], 'a channel only looked at is not listed');
      assert.deepEqual(await store.channels({ prefix: 'a:', limit: 10 }), ['a:1', 'a:2']);
      assert.deepEqual(await store.channels({ after: 'a:1', limit: 2 }), ['a:2', 'a_x']);
      assert.deepEqual(await store.channels({ after: 'a:2', prefix: 'a', limit: 10 }), ['a_x']);
      assert.deepEqual(await store.channels({ after: 'c', limit: 10 }), []);
      assert.deepEqual(await store.channels({ after: 'a_x', prefix: 'b', limit: 10 }), ['b'], 'after below the prefix: from the prefix');
      const pages: string[][] = [];
      for await (const page of channelPages(store, 2)) pages.push(page);
      assert.deepEqual(pages, [['a:1', 'a:2'], ['a_x', 'b'], ['c']]);
    });

    it('commits what is queued when closed', async () => {
      const pending = store.append({ events: [ev('closing')] });
      store = await h.reopen();
      await pending;
      assert.equal((await store.head('closing')).head, 1);
    });
  });
}

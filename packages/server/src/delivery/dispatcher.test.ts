import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { openSqliteStorage } from '../store/sqlite/open.js';
import { LocalBus } from '../bus/local-bus.js';
import { EventLog } from '../log/event-log.js';
import type { HeraldEvent } from '@herald/protocol';
import type { EndpointRecord, Storage } from '../store/types.js';
import { Dispatcher, SEEN_ENDPOINTS_SETTING } from './dispatcher.js';

const logger = pino({ level: 'silent' });

async function setUp(maxCachedCursors?: number): Promise<{ storage: Storage; log: EventLog; dispatcher: Dispatcher; close: () => Promise<void> }> {
  const storage = await openSqliteStorage({ dataDir: ':memory:' });
  const bus = new LocalBus();
  const log = new EventLog(storage.events, bus);
  const dispatcher = new Dispatcher(log, storage.deliveries, logger, () => {}, storage.settings, maxCachedCursors);
  await dispatcher.start();
  return {
    storage,
    log,
    dispatcher,
    close: async () => {
      await bus.close();
      await storage.close();
    },
  };
}

function endpoint(id: string, extra: Partial<EndpointRecord> = {}): EndpointRecord {
  return { id, url: `https://example.com/${id}`, channels: ['orders'], types: [], scheme: 'standard', secrets: [{ secret: 'whsec_1' }], headers: {}, maxConcurrency: 1, enabled: true, createdAt: 0, ...extra };
}

const publish = (log: EventLog, channel: string, n: number) => Promise.all(Array.from({ length: n }, (_, i) => log.publish([{ channel, data: i }])));
/**
 * Waits until the dispatcher has no work queued. A channel's first events go through the queue (its cursor is read
 * from the store), and `stop` drops queued work that has not begun, which the next dispatcher redoes from the log.
 */
async function idle(dispatcher: Dispatcher): Promise<void> {
  const chains = (dispatcher as unknown as { chains: Map<string, Promise<void>> }).chains;
  while (chains.size > 0) await Promise.all(chains.values());
}

test('stop saves the cursors of channels no endpoint wanted, even with no save since', async () => {
  const { storage, log, dispatcher, close } = await setUp();
  await publish(log, 'quiet', 3);
  await publish(log, 'other', 2);
  await idle(dispatcher);
  assert.deepEqual(await storage.deliveries.cursors(), new Map(), 'nothing written per event');
  await dispatcher.stop();
  assert.deepEqual(await storage.deliveries.cursors(), new Map([['quiet', 3], ['other', 2]]));
  await close();
});

test('a channel with a backfill still owed keeps its saved cursor until the backfill is written', async () => {
  const { storage, log, dispatcher, close } = await setUp();
  await publish(log, 'orders', 3);
  await publish(log, 'quiet', 1);
  // An endpoint created through another node: this one learns of it on its next reload, and backfills.
  await storage.deliveries.insertEndpoint(endpoint('ep_late', { ordering: 'channel' }));
  await dispatcher.reloadEndpoints();
  const internals = dispatcher as unknown as { saveCursors(): Promise<void>; owedBackfills: Map<string, string>; unsaved: Set<string> };
  // The backfill writes through the store's group commit, a turn of the event loop later: it is still owed here.
  const owed = internals.owedBackfills;
  assert.deepEqual([...owed.values()], ['orders']);
  const saving = internals.saveCursors();
  assert.deepEqual([...internals.unsaved], ['orders'], 'orders is kept for a later save: its cursor is past events the backfill has yet to write');
  await saving;
  assert.equal((await storage.deliveries.cursors()).get('quiet'), 1);
  await dispatcher.stop();
  assert.equal(owed.size, 0, 'the backfill ran');
  assert.deepEqual(
    (await storage.deliveries.listDeliveries('ep_late', undefined, 10)).map((d) => d.seq).sort(),
    [1, 2, 3],
  );
  assert.equal((await storage.deliveries.cursors()).get('orders'), 3, 'saved once the backfill was written');
  await close();
});

/**
 * `count` events on `orders` handled by a dispatcher that then stopped, and `record` created afterwards, as if
 * through another node while no dispatcher ran.
 */
async function afterADispatcher(count: number, record: EndpointRecord): Promise<{ storage: Storage; log: EventLog; close: () => Promise<void> }> {
  const { storage, log, dispatcher, close } = await setUp();
  await publish(log, 'orders', count);
  await idle(dispatcher);
  await dispatcher.stop();
  await storage.deliveries.insertEndpoint(record);
  return { storage, log, close };
}

test('an endpoint created while no dispatcher could backfill it is backfilled by the next one to start', async () => {
  // Created through another node; the dispatcher died before its next reload would have backfilled it.
  const { storage, log, close } = await afterADispatcher(3, endpoint('ep_missed'));
  assert.equal((await storage.deliveries.cursors()).get('orders'), 3);
  assert.equal(await storage.settings.get(SEEN_ENDPOINTS_SETTING), '[]');
  const next = another(storage, log);
  await next.start();
  await backfilled(next);
  await next.stop();
  assert.deepEqual((await storage.deliveries.listDeliveries('ep_missed', undefined, 10)).map((d) => d.seq).sort(), [1, 2, 3]);
  assert.equal(await storage.settings.get(SEEN_ENDPOINTS_SETTING), '["ep_missed"]', 'recorded once its backfill was written');
  // The one after that owes it nothing more.
  await storage.deliveries.insertEndpoint(endpoint('ep_known_late', { channels: ['elsewhere'] }));
  const third = another(storage, log);
  await third.start();
  await third.stop();
  assert.equal((await storage.deliveries.listDeliveries('ep_missed', undefined, 10)).length, 3);
  assert.deepEqual((JSON.parse((await storage.settings.get(SEEN_ENDPOINTS_SETTING))!) as string[]).sort(), ['ep_known_late', 'ep_missed']);
  await close();
});

/** A dispatcher on the same storage, as the next lease holder's or a restart's would be. */
const another = (storage: Storage, log: EventLog) => new Dispatcher(log, storage.deliveries, logger, () => {}, storage.settings);
const seenIds = async (storage: Storage) => (JSON.parse((await storage.settings.get(SEEN_ENDPOINTS_SETTING)) ?? 'null') as string[] | null)?.sort();
/** Waits until the dispatcher owes no backfill, and has no sweep left to owe one (each is a few reads and one write). */
async function backfilled(dispatcher: Dispatcher): Promise<void> {
  const { owedBackfills: owed, sweeps } = dispatcher as unknown as { owedBackfills: Map<string, string>; sweeps: Set<unknown> };
  const deadline = Date.now() + 5000;
  while (owed.size > 0 || sweeps.size > 0) {
    assert.ok(Date.now() < deadline, `backfills still owed: ${[...owed.keys()].join(', ')}; sweeps: ${sweeps.size}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
const seqsOf = async (storage: Storage, id: string) => (await storage.deliveries.listDeliveries(id, undefined, 5000)).map((d) => d.seq).sort((a, b) => a - b);

test('a backfill cut short by stop writes nothing and is not recorded; the next dispatcher runs it whole', async () => {
  const { storage, log, close } = await afterADispatcher(1200, endpoint('ep_ordered', { ordering: 'channel' })); // three pages
  const cut = another(storage, log);
  await cut.start();
  await cut.stop();
  const after = await seqsOf(storage, 'ep_ordered');
  const recorded = (await seenIds(storage))!.includes('ep_ordered');
  // Either it finished before stop (all of it, recorded) or stop cut it short (none of it, not recorded): never the newest pages alone.
  assert.ok((after.length === 1200 && recorded) || (after.length === 0 && !recorded), `${after.length} deliveries, recorded ${recorded}`);
  const next = another(storage, log);
  await next.start();
  await backfilled(next);
  await next.stop();
  assert.deepEqual(await seqsOf(storage, 'ep_ordered'), Array.from({ length: 1200 }, (_, i) => i + 1));
  assert.deepEqual(await seenIds(storage), ['ep_ordered']);
  await close();
});

test('a reload asked for while the dispatcher starts waits for the start, and records nothing early', async () => {
  const { storage, log, close } = await afterADispatcher(3, endpoint('ep_missed'));
  const next = another(storage, log);
  const starting = next.start();
  await next.reloadEndpoints(); // an admin change through this node, mid-start
  // Whenever the record names the endpoint, its deliveries exist: a kill -9 at any moment loses nothing.
  for (let i = 0; i < 5; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    const [seen, seqs] = await Promise.all([seenIds(storage), seqsOf(storage, 'ep_missed')]);
    if (seen?.includes('ep_missed')) assert.deepEqual(seqs, [1, 2, 3], `recorded as seen with deliveries ${seqs.join(',')}`);
  }
  await starting;
  await next.stop();
  assert.deepEqual(await seqsOf(storage, 'ep_missed'), [1, 2, 3]);
  assert.deepEqual(await seenIds(storage), ['ep_missed']);
  await close();
});

test('an unreadable record is taken as nothing owed, and written again', async () => {
  const { storage, log, close } = await afterADispatcher(3, endpoint('ep_old'));
  for (const bad of ['not json', '{}', '"ep_old"', 'null', '[1]']) {
    await storage.settings.set(SEEN_ENDPOINTS_SETTING, bad);
    const next = another(storage, log);
    await next.start();
    await next.stop();
    assert.deepEqual(await seqsOf(storage, 'ep_old'), [], `${bad}: no backfill of every endpoint's history`);
    assert.deepEqual(await seenIds(storage), ['ep_old'], `${bad}: rewritten`);
  }
  await close();
});

test('keeps at most its bound of cursors in memory, reads evicted ones back, and backfills their channels too', async () => {
  const { storage, log, dispatcher, close } = await setUp(3);
  const internals = dispatcher as unknown as { saveCursors(): Promise<void>; evictCursors(): void };
  /** What the save timer does twice: save what moved, then evict (only saved cursors can leave). */
  const tick = async () => {
    await idle(dispatcher);
    await internals.saveCursors();
    internals.evictCursors();
  };
  const channels = Array.from({ length: 40 }, (_, i) => `c:${i}`);
  const round = () => Promise.all(channels.map((channel) => log.publish([{ channel, data: 0 }])));

  await round();
  await idle(dispatcher);
  assert.equal(dispatcher.cachedCursors, 40);
  await tick();
  assert.equal(dispatcher.cachedCursors, 3);
  assert.deepEqual([...(await storage.deliveries.cursors()).values()], channels.map(() => 1));

  // Written again: each evicted cursor is read back (at 1) and moves on to 2; none restarts from 0.
  await round();
  await tick();
  assert.equal(dispatcher.cachedCursors, 3);
  assert.deepEqual([...(await storage.deliveries.cursors()).values()], channels.map(() => 2));

  // An endpoint created through another node is owed backfills on every channel, in memory or not.
  await storage.deliveries.insertEndpoint(endpoint('ep_all', { channels: ['c:*'] }));
  await dispatcher.reloadEndpoints();
  await backfilled(dispatcher);
  await round();
  await tick();
  await dispatcher.stop();
  const deliveries = await storage.deliveries.listDeliveries('ep_all', undefined, 1000);
  const keys = deliveries.map((d) => `${d.channel}/${d.seq}`).sort();
  assert.deepEqual(keys, channels.flatMap((c) => [1, 2, 3].map((seq) => `${c}/${seq}`)).sort());
  await close();
});

test('evicts cursors whose save is done while another save is still under way, and a late first event never lowers an evicted cursor', async () => {
  const { storage, log, dispatcher, close } = await setUp(3);
  const internals = dispatcher as unknown as { saveCursors(): Promise<void>; evictCursors(): void; onLive(events: readonly HeraldEvent[]): void; cursors: Map<string, number> };
  const round = (names: string[]) => Promise.all(names.map((channel) => log.publish([{ channel, data: 0 }])));
  const first = Array.from({ length: 40 }, (_, i) => `c:${i}`);
  const second = Array.from({ length: 20 }, (_, i) => `d:${i}`);

  await round(first);
  await idle(dispatcher);
  await internals.saveCursors();
  // The next save hangs, as on a slow database: its channels stay, the others may go.
  let release: (() => void) | undefined;
  const saveCursors = storage.deliveries.saveCursors.bind(storage.deliveries);
  storage.deliveries.saveCursors = async (cursors) => {
    await new Promise<void>((resolve) => (release = resolve));
    return saveCursors(cursors);
  };
  await round(second);
  await idle(dispatcher);
  const saving = internals.saveCursors();
  internals.evictCursors();
  assert.deepEqual([...internals.cursors.keys()].sort(), [...second].sort());
  while (!release) await new Promise((resolve) => setImmediate(resolve));
  storage.deliveries.saveCursors = saveCursors;
  release();
  await saving;
  internals.evictCursors();
  assert.equal(dispatcher.cachedCursors, 3);

  // A channel with five events, then evicted; a late copy of its first event arrives (as a cluster bus may resend).
  const [one] = (await log.publish([{ channel: 'late', data: 1 }])).events;
  for (let i = 0; i < 4; i++) await log.publish([{ channel: 'late', data: 1 }]);
  await idle(dispatcher);
  await internals.saveCursors();
  await round(['x:1', 'x:2', 'x:3']);
  await idle(dispatcher);
  await internals.saveCursors();
  internals.evictCursors();
  assert.equal(internals.cursors.has('late'), false);
  internals.onLive([one!]);
  await idle(dispatcher);
  assert.equal(internals.cursors.get('late'), 5);
  await dispatcher.stop();
  assert.equal((await storage.deliveries.cursors()).get('late'), 5);
  await close();
});

test('catches up every channel at start, with the work of at most one page of channels queued at once', async () => {
  const storage = await openSqliteStorage({ dataDir: ':memory:' });
  const bus = new LocalBus();
  const log = new EventLog(storage.events, bus);
  // Written while no dispatcher ran: each channel's cursor is behind its head.
  await storage.deliveries.insertEndpoint(endpoint('ep_all', { channels: ['c:*'] }));
  await storage.settings.set(SEEN_ENDPOINTS_SETTING, JSON.stringify(['ep_all']));
  for (let i = 0; i < 1200; i++) await log.publish([{ channel: `c:${i}`, data: i }]);
  // Two channels' cursors were saved by an earlier dispatcher: the catch-up starts from them.
  await storage.deliveries.saveCursors(new Map([['c:7', 1], ['c:700', 1]]));
  const reads = { all: 0, pages: [] as number[] };
  const cursors = storage.deliveries.cursors.bind(storage.deliveries);
  const cursorsOf = storage.deliveries.cursorsOf.bind(storage.deliveries);
  storage.deliveries.cursors = () => ((reads.all += 1), cursors());
  storage.deliveries.cursorsOf = (channels) => (reads.pages.push(channels.length), cursorsOf(channels));
  const dispatcher = another(storage, log);
  const chains = (dispatcher as unknown as { chains: Map<string, Promise<void>> }).chains;
  await dispatcher.start();
  let most = 0;
  const deadline = Date.now() + 20_000;
  while ((await storage.deliveries.listDeliveries('ep_all', undefined, 5000)).length < 1198) {
    assert.ok(Date.now() < deadline, 'every channel caught up in time');
    most = Math.max(most, chains.size);
    await new Promise((r) => setImmediate(r));
  }
  await dispatcher.stop();
  assert.ok(most > 0 && most <= 500, `${most} channels had work queued at once`);
  assert.deepEqual(reads, { all: 0, pages: [500, 500, 200] }, 'saved cursors read a page at a time, never all at once');
  assert.equal((await cursors()).size, 1200);
  assert.equal((await storage.deliveries.listDeliveries('ep_all', undefined, 5000)).length, 1198, 'none for what the saved cursors had passed');
  await bus.close();
  await storage.close();
});

test('a new endpoint over many channels is owed its backfills a page of channels at a time, and an ordered one keeps its order', async () => {
  const { storage, log, dispatcher, close } = await setUp();
  for (let i = 0; i < 1200; i++) await log.publish([{ channel: `c:${String(i).padStart(4, '0')}`, data: i }]);
  await idle(dispatcher);
  let readAll = 0;
  const cursors = storage.deliveries.cursors.bind(storage.deliveries);
  storage.deliveries.cursors = () => ((readAll += 1), cursors());
  const owed = (dispatcher as unknown as { owedBackfills: Map<string, string> }).owedBackfills;
  // Created through another node: this dispatcher learns of it at a reload.
  await storage.deliveries.insertEndpoint(endpoint('ep_wide', { channels: ['c:*'], ordering: 'channel' }));
  await dispatcher.reloadEndpoints();
  // The last channel is the sweep's last to reach: its new events wait for its backfill.
  await log.publish([{ channel: 'c:1199', data: 'live 1' }]);
  await log.publish([{ channel: 'c:1199', data: 'live 2' }]);
  let most = 0;
  const sweeps = (dispatcher as unknown as { sweeps: Set<unknown> }).sweeps;
  const deadline = Date.now() + 20_000;
  while (sweeps.size > 0 || owed.size > 0) {
    assert.ok(Date.now() < deadline, 'the sweep ends');
    most = Math.max(most, owed.size);
    await new Promise((r) => setImmediate(r));
  }
  await idle(dispatcher);
  assert.ok(most > 0 && most <= 500, `${most} backfills owed at once`);
  assert.equal(readAll, 0, 'no read of every saved cursor');
  const deliveries = await storage.deliveries.listDeliveries('ep_wide', undefined, 5000);
  assert.equal(deliveries.length, 1202);
  // Created in seq order on the last channel: its backfill (seq 1) before its live events (2, 3).
  const last = deliveries.filter((d) => d.channel === 'c:1199').sort((a, b) => Number(a.id.slice(4)) - Number(b.id.slice(4)));
  assert.deepEqual(last.map((d) => d.seq), [1, 2, 3]);
  await dispatcher.stop();
  assert.deepEqual(JSON.parse((await storage.settings.get(SEEN_ENDPOINTS_SETTING))!), ['ep_wide'], 'recorded as seen once swept');
  await close();
});

test('an ordered endpoint gets the first event of a channel created while its sweep runs, after the sweep has listed every channel', async () => {
  const { storage, log, dispatcher, close } = await setUp();
  for (let i = 0; i < 10; i++) await log.publish([{ channel: `order:${1000 + i}`, data: i }]);
  await idle(dispatcher);
  await storage.deliveries.insertEndpoint(endpoint('ep_o', { channels: ['order:*'], ordering: 'channel' }));
  await dispatcher.reloadEndpoints();
  // A new channel, after every name the sweep's one page listed: the listing will never show it.
  await log.publish([{ channel: 'order:2000', data: 'new' }]);
  await backfilled(dispatcher);
  await idle(dispatcher);
  await log.publish([{ channel: 'order:2000', data: 'next' }]);
  await idle(dispatcher);
  await dispatcher.stop();
  const seqs = (await storage.deliveries.listDeliveries('ep_o', undefined, 100)).filter((d) => d.channel === 'order:2000').map((d) => d.seq);
  assert.deepEqual(seqs.sort(), [1, 2]);
  assert.equal((await storage.deliveries.listDeliveries('ep_o', undefined, 100)).length, 12);
  await close();
});

test('a start that both sweeps and catches up 1,500 channels keeps about two pages of cursors in memory, not one per channel', async () => {
  const storage = await openSqliteStorage({ dataDir: ':memory:' });
  const bus = new LocalBus();
  const log = new EventLog(storage.events, bus);
  const first = new Dispatcher(log, storage.deliveries, logger, () => {}, storage.settings, 10);
  await first.start();
  for (let i = 0; i < 1500; i++) await log.publish([{ channel: `c:${String(i).padStart(4, '0')}`, data: i }]);
  await idle(first);
  await first.stop();
  // Created while no dispatcher ran, and one more event per channel: the next one both sweeps and catches up.
  await storage.deliveries.insertEndpoint(endpoint('ep_late', { channels: ['c:*'] }));
  const bus2 = new LocalBus();
  const log2 = new EventLog(storage.events, bus2);
  for (let i = 0; i < 1500; i++) await storage.events.append({ events: [{ channel: `c:${String(i).padStart(4, '0')}`, id: `more-${i}`, type: 't', data: i, time: Date.now() }] });
  const next = new Dispatcher(log2, storage.deliveries, logger, () => {}, storage.settings, 10);
  await next.start();
  let most = 0;
  const sweeps = (next as unknown as { sweeps: Set<unknown> }).sweeps;
  const deadline = Date.now() + 30_000;
  while ((await storage.deliveries.listDeliveries('ep_late', undefined, 5000)).length < 3000 || sweeps.size > 0) {
    assert.ok(Date.now() < deadline, 'every event delivered');
    most = Math.max(most, next.cachedCursors);
    await new Promise((r) => setTimeout(r, 5));
  }
  await next.stop();
  // A page of 500 runs while the one before waits for its save to end before it may leave memory.
  assert.ok(most <= 1100, `${most} cursors in memory at once, of 1500 channels`);
  await bus.close();
  await bus2.close();
  await storage.close();
});

test('ahead of its sweep, an ordered endpoint is owed one backfill per channel, then gets the live events', async () => {
  const { storage, log, dispatcher, close } = await setUp();
  await log.publish([{ channel: 'hot', data: 0 }]);
  await idle(dispatcher);
  // The sweep waits at its first listing, so 'hot' stays ahead of it.
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const channels = storage.events.channels.bind(storage.events);
  storage.events.channels = async (page) => (await held, channels(page));
  let eventsRead = 0;
  const read = storage.events.read.bind(storage.events);
  storage.events.read = async (...args) => {
    const page = await read(...args);
    eventsRead += page.events.length;
    return page;
  };
  await storage.deliveries.insertEndpoint(endpoint('ep_hot', { channels: ['hot'], ordering: 'channel' }));
  await dispatcher.reloadEndpoints();
  for (let i = 1; i <= 50; i++) {
    await log.publish([{ channel: 'hot', data: i }]);
    await idle(dispatcher);
  }
  assert.ok(eventsRead <= 60, `${eventsRead} events read for 50 live ones: one backfill, not one per event`);
  release();
  await backfilled(dispatcher);
  await idle(dispatcher);
  await dispatcher.stop();
  const deliveries = await storage.deliveries.listDeliveries('ep_hot', undefined, 100);
  const byCreation = deliveries.sort((a, b) => Number(a.id.slice(4)) - Number(b.id.slice(4))).map((d) => d.seq);
  assert.deepEqual(byCreation, Array.from({ length: 51 }, (_, i) => i + 1), 'every event once, created in seq order');
  await close();
});

test("a sweep's page waits until its backfills are written, retried while the store refuses them", async () => {
  const { storage, log, dispatcher, close } = await setUp();
  for (let i = 0; i < 1200; i++) await log.publish([{ channel: `c:${String(i).padStart(4, '0')}`, data: i }]);
  await idle(dispatcher);
  let refusing = true;
  const create = storage.deliveries.createDeliveries.bind(storage.deliveries);
  storage.deliveries.createDeliveries = async (channel, seq, deliveries) => {
    if (refusing && deliveries.some((d) => d.endpointId === 'ep_full')) throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    return create(channel, seq, deliveries);
  };
  await storage.deliveries.insertEndpoint(endpoint('ep_full', { channels: ['c:*'] }));
  await dispatcher.reloadEndpoints();
  const owed = (dispatcher as unknown as { owedBackfills: Map<string, string> }).owedBackfills;
  let most = 0;
  const until = Date.now() + 2500;
  while (Date.now() < until) {
    most = Math.max(most, owed.size);
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.ok(most > 0 && most <= 500, `${most} backfills owed at once while none can be written`);
  refusing = false;
  await backfilled(dispatcher);
  await idle(dispatcher);
  await dispatcher.stop();
  assert.equal((await storage.deliveries.listDeliveries('ep_full', undefined, 5000)).length, 1200);
  await close();
});

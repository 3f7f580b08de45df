import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { openSqliteStorage } from '../store/sqlite/open.js';
import { LocalBus } from '../bus/local-bus.js';
import { EventLog } from '../log/event-log.js';
import type { EndpointRecord, Storage } from '../store/types.js';
import { Dispatcher, SEEN_ENDPOINTS_SETTING } from './dispatcher.js';

const logger = pino({ level: 'silent' });

async function setUp(): Promise<{ storage: Storage; log: EventLog; dispatcher: Dispatcher; close: () => Promise<void> }> {
  const storage = await openSqliteStorage({ dataDir: ':memory:' });
  const bus = new LocalBus();
  const log = new EventLog(storage.events, bus);
  const dispatcher = new Dispatcher(log, storage.deliveries, logger, () => {}, storage.settings);
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

test('stop saves the cursors of channels no endpoint wanted, even with no save since', async () => {
  const { storage, log, dispatcher, close } = await setUp();
  await publish(log, 'quiet', 3);
  await publish(log, 'other', 2);
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

test('an endpoint created while no dispatcher could backfill it is backfilled by the next one to start', async () => {
  const { storage, log, dispatcher, close } = await setUp();
  await publish(log, 'orders', 3);
  await dispatcher.stop();
  assert.equal((await storage.deliveries.cursors()).get('orders'), 3);
  assert.equal(await storage.settings.get(SEEN_ENDPOINTS_SETTING), '[]');
  // Created through another node; this dispatcher died before its next reload would have backfilled it.
  await storage.deliveries.insertEndpoint(endpoint('ep_missed'));
  const next = new Dispatcher(log, storage.deliveries, logger, () => {}, storage.settings);
  await next.start();
  await next.stop();
  assert.deepEqual((await storage.deliveries.listDeliveries('ep_missed', undefined, 10)).map((d) => d.seq).sort(), [1, 2, 3]);
  assert.equal(await storage.settings.get(SEEN_ENDPOINTS_SETTING), '["ep_missed"]', 'recorded once its backfill was written');
  // The one after that owes it nothing more.
  await storage.deliveries.insertEndpoint(endpoint('ep_known_late', { channels: ['elsewhere'] }));
  const third = new Dispatcher(log, storage.deliveries, logger, () => {}, storage.settings);
  await third.start();
  await third.stop();
  assert.equal((await storage.deliveries.listDeliveries('ep_missed', undefined, 10)).length, 3);
  assert.deepEqual((JSON.parse((await storage.settings.get(SEEN_ENDPOINTS_SETTING))!) as string[]).sort(), ['ep_known_late', 'ep_missed']);
  await close();
});

import { it } from 'node:test';
import assert from 'node:assert/strict';
import type { HeraldEvent } from '@herald/protocol';
import { LocalBus } from './local-bus.js';
import { describeBusConformance } from './bus.conformance.js';
import { openSqliteStorage } from '../store/sqlite/open.js';

const e = (channel: string, seq: number): HeraldEvent => ({ id: `${channel}${seq}`, channel, seq, type: 't', data: null, time: '' });

it('delivers each channel its own events, in order, until unsubscribed', async () => {
  const bus = new LocalBus();
  const seen: string[] = [];
  const all: string[] = [];
  bus.subscribeAll((events) => all.push(events.map((x) => x.id).join('+')));
  const offA = bus.subscribe('a', (events) => seen.push(...events.map((x) => x.id)));
  bus.subscribe('b', (events) => seen.push(...events.map((x) => `B:${x.id}`)));
  await bus.publish([e('a', 1), e('b', 1), e('a', 2)]);
  assert.deepEqual(seen, ['a1', 'a2', 'B:b1']);
  assert.deepEqual(all, ['a1+a2', 'b1'], 'a whole-log listener hears every channel, grouped by channel');
  offA();
  assert.equal(bus.listenerCount('a'), 0);
  await bus.publish([e('a', 3)]);
  assert.deepEqual(seen, ['a1', 'a2', 'B:b1']);
});

describeBusConformance('LocalBus', async () => {
  const storage = await openSqliteStorage({ dataDir: ':memory:' });
  const bus = new LocalBus();
  return {
    store: storage.events,
    node: async () => bus,
    async cleanup() {
      await bus.close();
      await storage.close();
    },
  };
});

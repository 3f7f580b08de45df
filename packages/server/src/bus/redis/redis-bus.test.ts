import { before, after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { HeraldEvent } from '@herald/protocol';
import { startRedis, redisCli, type RedisProcess } from '../../../test/support/redis.js';
import { until } from '../../../test/support/wait.js';
import { describeBusConformance, networkHarness } from '../bus.conformance.js';
import { RedisTopics } from './topics.js';
import { createBus } from '../create.js';
import type { ClusterBus } from '../cluster-bus.js';
import { EventLog } from '../../log/event-log.js';
import { openSqliteStorage } from '../../store/sqlite/open.js';
import type { EventStore } from '../../store/types.js';

let redis: RedisProcess;
let run = 0;
before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis?.stop();
});

describeBusConformance('Redis', () => {
  // A prefix per test keeps each test's topics apart on the one server.
  const prefix = `t${(run += 1)}`;
  const topics = new RedisTopics(prefix);
  return networkHarness(`${redis.url}?prefix=${prefix}`, {
    async subscriptions(channel) {
      const name = channel === 'all' ? topics.all : topics.channel(channel);
      const [, count] = (await redisCli(redis.port, 'PUBSUB', 'NUMSUB', name)).split('\n');
      return Number(count);
    },
    outage: { cut: () => redis.kill(), restore: () => redis.restart() },
    relayable: true,
  });
});

describe('two clusters on one Redis under one prefix', () => {
  it('ignore each other: no foreign events, and no own seq hidden behind one', async () => {
    const [one, two] = [await openSqliteStorage({ dataDir: ':memory:' }), await openSqliteStorage({ dataDir: ':memory:' })];
    const url = `${redis.url}?prefix=shared`;
    const errors: unknown[] = [];
    const open = (store: EventStore, cluster: string) => createBus(url, { store, cluster, connectTimeoutMs: 10_000, onError: (e) => errors.push(e) });
    const buses = [await open(one.events, 'cluster-one'), await open(one.events, 'cluster-one'), await open(two.events, 'cluster-two'), await open(two.events, 'cluster-two')];
    const [publisherOne, listenerOne, publisherTwo, listenerTwo] = buses as [ClusterBus, ClusterBus, ClusterBus, ClusterBus];
    try {
      const heardByOne: HeraldEvent[] = [];
      const heardByTwo: HeraldEvent[] = [];
      listenerOne.subscribe('room', (events) => heardByOne.push(...events));
      listenerTwo.subscribe('room', (events) => heardByTwo.push(...events));
      const topic = new RedisTopics('shared').channel('room');
      await until(async () => (await redisCli(redis.port, 'PUBSUB', 'NUMSUB', topic)).split('\n')[1] === '2', 5000, 'both subscriptions');
      await new EventLog(one.events, publisherOne).publish([{ channel: 'room', data: 'one-1' }, { channel: 'room', data: 'one-2' }]);
      await until(() => heardByOne.length === 2, 5000, "the events, on the publisher's own cluster");
      await until(() => listenerTwo.foreignMessages > 0, 5000, 'the message reaching the other cluster');
      assert.equal(heardByTwo.length, 0, 'nothing from the other cluster');
      assert.match(String(errors[0]), /another Herald cluster .* give each cluster its own \?prefix=/);
      // The other cluster's own seqs 1 and 2 reach its listeners: they are not taken for ones already handed on.
      await new EventLog(two.events, publisherTwo).publish([{ channel: 'room', data: 'two-1' }, { channel: 'room', data: 'two-2' }]);
      await until(() => heardByTwo.length === 2, 5000, "the other cluster's own events");
      assert.deepEqual(heardByTwo.map((e) => [e.seq, e.data]), [[1, 'two-1'], [2, 'two-2']]);
      assert.deepEqual(heardByOne.map((e) => e.data), ['one-1', 'one-2']);
    } finally {
      await Promise.all(buses.map((bus) => bus.close()));
      await one.close();
      await two.close();
    }
  });
});

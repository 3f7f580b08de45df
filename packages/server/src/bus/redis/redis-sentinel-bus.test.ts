import { before, after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { HeraldEvent } from '@herald/protocol';
import { until } from '../../../test/support/wait.js';
import { startRedisSentinel, redisCli, type RedisSentinelSetup } from '../../../test/support/redis.js';
import { describeBusConformance, networkHarness } from '../bus.conformance.js';
import { RedisTopics } from './topics.js';
import { EventLog } from '../../log/event-log.js';

// The bus behind Sentinel: the whole contract on a master Sentinel names
// (an outage is that master down and back), then a real failover.
let sentinel: RedisSentinelSetup;
let run = 0;
before(async () => {
  sentinel = await startRedisSentinel(0);
});
after(async () => {
  await sentinel?.stop();
});

describeBusConformance('Redis Sentinel', () => {
  const prefix = `t${(run += 1)}`;
  const topics = new RedisTopics(prefix);
  return networkHarness(`${sentinel.url}?prefix=${prefix}`, {
    async subscriptions(channel) {
      const name = channel === 'all' ? topics.all : topics.channel(channel);
      return Number((await redisCli(sentinel.master.port, 'PUBSUB', 'NUMSUB', name)).split('\n')[1]);
    },
    outage: { cut: () => sentinel.master.kill(), restore: () => sentinel.master.restart() },
  });
});

describe('Redis Sentinel failover', () => {
  it('follows the master Sentinel promotes: after the master dies, two nodes hear each other again, with nothing lost', async () => {
    const setup = await startRedisSentinel(1, 'failover');
    const harness = await networkHarness(`${setup.url}?prefix=fo`, {});
    try {
      const [a, b] = [await harness.node(), await harness.node()];
      const heard: HeraldEvent[] = [];
      b.subscribe('room', (events) => heard.push(...events));
      const log = new EventLog(harness.store, a);
      let last = 0;
      const publish = async (i: number) => {
        last = (await log.publish([{ channel: 'room', data: { i } }])).events[0]!.seq;
      };
      await waitFor('the subscription to take', async () => {
        await publish(heard.length + 1000);
        return heard.length > 0;
      });
      await waitFor('the warm-up events', async () => heard.at(-1)!.seq === last);
      const before = last;

      await setup.master.kill();
      await waitFor('Sentinel to promote the replica', async () => (await setup.masterPort()) === setup.replicas[0]!.port, 30_000);
      // Events published during and after the failover: the store is the truth, the bus catches up from it.
      for (let i = 0; i < 5; i++) await publish(i);
      await waitFor('the events after the failover', async () => heard.at(-1)!.seq === before + 5, 30_000);
      assert.deepEqual(
        heard.map((e) => e.seq),
        Array.from({ length: heard.length }, (_, i) => heard[0]!.seq + i),
        'every seq once, in order',
      );
      // The new master carries traffic live: a publish now arrives without waiting for a store poll.
      await waitFor('both links up on the new master', async () => a.state === 'up' && b.state === 'up', 30_000);
      const topic = new RedisTopics('fo').channel('room');
      const promoted = setup.replicas[0]!.port;
      await waitFor('the subscription on the promoted master', async () => (await redisCli(promoted, 'PUBSUB', 'NUMSUB', topic)).split('\n')[1] === '1');
      const startedAt = Date.now();
      await publish(99);
      await waitFor('a live event', async () => heard.at(-1)!.seq === before + 6);
      assert.ok(Date.now() - startedAt < 900, `live over the promoted master, took ${Date.now() - startedAt} ms`);
    } finally {
      await harness.cleanup();
      await setup.stop();
    }
  });
});

/** Until `check` holds; a check that throws (a Redis node down mid-failover) counts as not yet. */
const waitFor = (what: string, check: () => Promise<boolean>, timeoutMs = 10_000) => until(() => check().catch(() => false), timeoutMs, what);

import { before, after } from 'node:test';
import { startRedis, redisCli, type RedisProcess } from '../../../test/support/redis.js';
import { describeBusConformance, networkHarness } from '../bus.conformance.js';
import { RedisTopics } from './topics.js';

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

import { before, after } from 'node:test';
import { startRedisCluster, redisCli, type RedisCluster } from '../../../test/support/redis.js';
import { describeBusConformance, networkHarness } from '../bus.conformance.js';
import { RedisTopics } from './topics.js';

let cluster: RedisCluster;
let run = 0;
before(async () => {
  cluster = await startRedisCluster(3);
});
after(async () => {
  await cluster?.stop();
});

describeBusConformance('Redis Cluster (sharded pub/sub)', () => {
  const prefix = `t${(run += 1)}`;
  const topics = new RedisTopics(prefix);
  return networkHarness(`${cluster.url}?prefix=${prefix}`, {
    async subscriptions(channel) {
      const name = channel === 'all' ? topics.all : topics.channel(channel);
      // Each master counts only the shard channels of its own slots; the others answer 0.
      const counts = await Promise.all(
        cluster.ports.map(async (port) => Number((await redisCli(port, 'PUBSUB', 'SHARDNUMSUB', name)).split('\n')[1] ?? 0)),
      );
      return counts.reduce((x, y) => x + y, 0);
    },
    outage: { cut: () => cluster.kill(), restore: () => cluster.restart() },
  });
});

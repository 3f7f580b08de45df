// One node cut off from the bus while the others keep theirs: through real nodes, a relay between that node and
// Redis, and a subscriber on another node. The others see its heartbeat say `bus: "down"` and read the log for their
// subscribers, so what the cut-off node accepts reaches them while it is still cut off.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';
import { faultyLinkTo, type FaultyLink } from './support/faulty-link.js';
import { startRedis, type RedisProcess } from './support/redis.js';
import { contiguity, HeraldNode, SseFollower, until, waitUntil } from './support/cluster.js';

describe('cluster: one node cut off from the bus', () => {
  let db: TestDatabase;
  let redis: RedisProcess;
  let link: FaultyLink;
  let a: HeraldNode;
  let b: HeraldNode;
  let token: string;

  before(async () => {
    db = await createTestDatabase('herald_bus_partition');
    redis = await startRedis();
    link = await faultyLinkTo(redis.url);
    a = await HeraldNode.spawn({ id: 'cut', store: db.url, bus: link.url });
    b = await HeraldNode.spawn({ id: 'whole', store: db.url, bus: redis.url });
    const res = await a.call('POST', '/v1/keys', { body: { name: 'partition', scopes: ['publish', 'subscribe'], channels: ['*'] } });
    assert.equal(res.status, 201);
    token = res.body.key;
  });

  after(async () => {
    await Promise.all([a, b].filter(Boolean).map((n) => n.stop()));
    await link?.close();
    await redis?.stop();
    await db?.drop();
  });

  const busOf = async (node: HeraldNode) => (await node.call('GET', '/readyz', { token: null })).body?.bus;

  it('what it accepts while cut off reaches subscribers on the other nodes, before its link returns', async () => {
    const sse = new SseFollower(b, 'quiet', token);
    await sse.opened;
    try {
      assert.equal((await a.publish('quiet', { n: 1 }, { token })).status, 201);
      await until(() => sse.last === 1, 5000, 'the first event, live');

      link.cut();
      await waitUntil(async () => (await busOf(a)) === 'down', 10_000, "the cut-off node's bus down");
      assert.equal(await busOf(b), 'up', 'the other node keeps its link');
      // The other node learns it from the cut-off node's heartbeat in the store.
      await waitUntil(
        async () => (await b.call('GET', '/v1/nodes')).body.nodes.some((n: { id: string; bus: string }) => n.id === 'cut' && n.bus === 'down'),
        10_000,
        "GET /v1/nodes to show the cut-off node's bus down",
      );
      for (const n of [2, 3]) assert.equal((await a.publish('quiet', { n }, { token })).status, 201);

      await until(() => sse.last === 3, 10_000, 'the events accepted by the cut-off node, on the other node');
      assert.equal(await busOf(a), 'down', 'they came while its link was still cut');
      assert.equal(contiguity(sse.events, 1, 3), undefined);
      assert.deepEqual(sse.events.map((e) => e.data.n), [1, 2, 3]);
    } finally {
      link.restore();
      sse.close();
    }
    await waitUntil(async () => (await busOf(a)) === 'up', 20_000, 'the link back up');
    // Back to live traffic both ways; nothing repeated by the reads made meanwhile.
    const again = new SseFollower(b, 'quiet', token, 3);
    await again.opened;
    try {
      assert.equal((await a.publish('quiet', { n: 4 }, { token })).status, 201);
      await until(() => again.last === 4, 5000, 'a live event after the link returned');
      assert.deepEqual(again.events.map((e) => e.seq), [4]);
    } finally {
      again.close();
    }
  });
});

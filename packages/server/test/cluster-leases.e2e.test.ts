// Issue #9: an endpoint's limits hold cluster-wide because one node at a time
// sends its deliveries (the holder of its lease), and a node that is paused
// (SIGSTOP: a GC stall, a frozen VM) past its lease neither blocks the
// endpoint nor sends twice when it wakes up.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';
import { startRedis, type RedisProcess } from './support/redis.js';
import { leaseHolder, spawnNodes, until, waitUntil, type HeraldNode } from './support/cluster.js';

interface Hit {
  id: string;
  start: number;
  end: number;
}

/** A receiver that holds each request `delayMs` before answering 200, and records how many were open at once. */
async function startSlowReceiver(delayMs: number) {
  const hits: Hit[] = [];
  let open = 0;
  let maxOpen = 0;
  const server: Server = createServer((req, res) => {
    const start = Date.now();
    open++;
    maxOpen = Math.max(maxOpen, open);
    req.resume();
    req.on('end', () => {
      setTimeout(() => {
        open--;
        hits.push({ id: String(req.headers['webhook-id']), start, end: Date.now() });
        res.writeHead(200).end('ok');
      }, delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    hits,
    get maxOpen() {
      return maxOpen;
    },
    resetMax() {
      maxOpen = open;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function countById(hits: Hit[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const h of hits) counts.set(h.id, (counts.get(h.id) ?? 0) + 1);
  return counts;
}

describe('cluster: one sender per endpoint', () => {
  let db: TestDatabase;
  let redis: RedisProcess;
  let nodes: HeraldNode[] = [];
  let sql: pg.Client;

  before(async () => {
    db = await createTestDatabase('herald_cluster_leases');
    redis = await startRedis();
    nodes = await spawnNodes(3, { store: db.url, bus: redis.url, prefix: 'l' });
    sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
  });

  after(async () => {
    await sql?.end();
    for (const n of nodes) if (n.alive) process.kill(n.pid, 'SIGCONT');
    await Promise.all(nodes.map((n) => n.stop()));
    await redis?.stop();
    await db?.drop();
  });

  const holder = (lease: string) => leaseHolder(sql, lease);

  /** Publishes `n` events round-robin over `on`, to channels of `prefix`; returns their ids. */
  const publishRoundRobin = async (on: HeraldNode[], prefix: string, n: number): Promise<string[]> => {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const res = await on[i % on.length]!.publish(`${prefix}:${i % 3}`, { i });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      ids.push(res.body.id);
    }
    return ids;
  };

  it('maxConcurrency and rateLimit hold across 3 nodes publishing to one endpoint', async () => {
    const receiver = await startSlowReceiver(40);
    try {
      const rate = 10;
      const created = await nodes[0]!.call('POST', '/v1/endpoints', {
        body: { url: receiver.url, channels: ['rate:*'], maxConcurrency: 1, rateLimit: rate },
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const ids = await publishRoundRobin(nodes, 'rate', 30);
      await until(() => countById(receiver.hits).size === ids.length, 20_000, 'every event delivered');
      assert.equal(receiver.maxOpen, 1, 'never two requests at once to a maxConcurrency 1 endpoint, whichever node they were published on');
      assert.equal(receiver.hits.length, ids.length, 'each event exactly once');
      // A token bucket of `rate` per second with a burst of one second's worth: no 1 s window holds more than 2 × rate.
      const starts = receiver.hits.map((h) => h.start).sort((x, y) => x - y);
      for (let i = 0; i + 2 * rate < starts.length; i++) {
        assert.ok(starts[i + 2 * rate]! - starts[i]! >= 1000 - 50, `${2 * rate + 1} requests within ${starts[i + 2 * rate]! - starts[i]!} ms`);
      }
      const elapsed = starts.at(-1)! - starts[0]!;
      assert.ok(elapsed >= ((ids.length - 2 * rate) / rate) * 1000 - 100, `30 events at ${rate}/s took only ${elapsed} ms`);
    } finally {
      await receiver.close();
    }
  });

  it('a node paused past its lease hands the endpoint over, and sends nothing twice when it wakes', async () => {
    const receiver = await startSlowReceiver(5);
    try {
      const created = await nodes[0]!.call('POST', '/v1/endpoints', { body: { url: receiver.url, channels: ['pause:*'], maxConcurrency: 2 } });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const endpointId: string = created.body.id;
      const first = await publishRoundRobin(nodes, 'pause', 6);
      await until(() => countById(receiver.hits).size === first.length, 10_000, 'the first events delivered');
      // An answer whose outcome is not yet committed when a node stops is sent again (at-least-once; receivers dedupe
      // by webhook-id). This test is about what the node does after it wakes, so it pauses once the outcomes are in.
      await waitUntil(
        async () => (await nodes[0]!.call('GET', `/v1/endpoints/${endpointId}/deliveries?status=succeeded`)).body.deliveries.length === first.length,
        10_000,
        'the first outcomes committed',
      );
      const sender = await holder(`endpoint:${endpointId}`);
      const paused = nodes.find((n) => n.id === sender);
      assert.ok(paused, `a node holds the endpoint's lease (${sender})`);
      const others = nodes.filter((n) => n !== paused);

      process.kill(paused.pid, 'SIGSTOP');
      const pausedAt = Date.now();
      try {
        const during = await publishRoundRobin(others, 'pause', 10);
        await until(() => during.every((id) => countById(receiver.hits).has(id)), 20_000, 'events published during the pause delivered by another node');
        const takeover = Math.min(...receiver.hits.filter((h) => h.start > pausedAt).map((h) => h.start)) - pausedAt;
        assert.ok(takeover < 12_000, `taken over after ${takeover} ms`);
        const newSender = await holder(`endpoint:${endpointId}`);
        assert.ok(newSender && newSender !== paused.id, `the lease moved (${newSender})`);
      } finally {
        process.kill(paused.pid, 'SIGCONT');
      }
      const wokeAt = Date.now();
      // Published everywhere, the woken node included: it must not act on the lease it lost while asleep.
      const after = await publishRoundRobin(nodes, 'pause', 9);
      const all = [...first, ...after];
      await until(() => all.every((id) => countById(receiver.hits).has(id)), 15_000, 'events after the wake-up delivered');
      // Time for a stale sender to misbehave: its pump, its lease check and its retries all run within this.
      await waitUntil(async () => (await holder(`endpoint:${endpointId}`)) !== undefined && Date.now() - wokeAt > 3000, 10_000, 'three seconds awake');
      const twice = [...countById(receiver.hits)].filter(([, n]) => n > 1);
      const describe = (id: string) =>
        `${id} (${first.includes(id) ? 'before' : after.includes(id) ? 'after' : 'during'} the pause) at ${receiver.hits.filter((h) => h.id === id).map((h) => h.start - pausedAt).join(', ')} ms from the pause, woke at ${wokeAt - pausedAt}`;
      assert.deepEqual(twice.map(([id]) => describe(id)), [], 'no event delivered twice');
      assert.ok(receiver.maxOpen <= 2, `at most maxConcurrency (2) requests at once, saw ${receiver.maxOpen}`);
      assert.notEqual(await holder(`endpoint:${endpointId}`), paused.id, 'the woken node did not take the lease back while another holds it');
    } finally {
      await receiver.close();
    }
  });
});

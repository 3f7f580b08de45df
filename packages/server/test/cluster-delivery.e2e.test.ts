// Issue #9: outbound delivery shared by 3 real nodes (one sender per endpoint,
// taken over when it dies), the node registry, and the two other bus
// transports (PostgreSQL LISTEN/NOTIFY, Redis Cluster) carrying events.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';
import { HookReceiver, type Hook } from './support/receiver.js';
import { startRedis, startRedisCluster, type RedisCluster, type RedisProcess } from './support/redis.js';
import { HeraldNode, leaseHolder, spawnNodes, until, WsFollower, waitUntil } from './support/cluster.js';

/** A delivery's `webhook-id`: the event id, the same on every attempt. */
const webhookId = (hook: Hook) => String(hook.headers['webhook-id']);

describe('cluster delivery: 3 nodes share the outbound webhooks', () => {
  let db: TestDatabase;
  let redis: RedisProcess;
  let nodes: HeraldNode[] = [];
  let receiver: HookReceiver;
  let sql: pg.Client;

  before(async () => {
    db = await createTestDatabase('herald_cluster_delivery');
    redis = await startRedis();
    receiver = await new HookReceiver().start();
    nodes = await spawnNodes(3, { store: db.url, bus: redis.url, prefix: 'd' });
    sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
  });

  after(async () => {
    await sql?.end();
    await Promise.all(nodes.map((n) => n.stop()));
    await receiver?.stop();
    await redis?.stop();
    await db?.drop();
  });

  const holder = (lease: string) => leaseHolder(sql, lease);

  it('GET /v1/nodes lists the 3 live nodes with heartbeats and connection counts', async () => {
    const [a, b] = nodes as [HeraldNode, HeraldNode];
    const token = (await a.call('POST', '/v1/tokens', { body: { sub: 'n', channels: ['watch'], ttl: 600 } })).body.token;
    const ws = await WsFollower.open(b, 'watch', token);
    try {
      await waitUntil(
        async () => {
          const res = await a.call('GET', '/v1/nodes');
          return res.body.nodes.find((n: any) => n.id === b.id)?.connections.ws === 1;
        },
        6000,
        'B reports its WebSocket',
      );
      const res = await a.call('GET', '/v1/nodes');
      assert.equal(res.status, 200);
      assert.equal(res.body.self, a.id);
      assert.deepEqual(res.body.nodes.map((n: any) => n.id), ['d1', 'd2', 'd3']);
      for (const node of res.body.nodes) {
        assert.ok(Date.now() - Date.parse(node.lastHeartbeat) < 6000, `${node.id} heartbeat ${node.lastHeartbeat}`);
        for (const kind of ['ws', 'sse', 'long_poll']) assert.equal(typeof node.connections[kind], 'number', `${node.id}.${kind}`);
        assert.equal(node.bus, 'up', `${node.id}'s own link to the bus`);
      }
      // Admin only.
      assert.equal((await a.call('GET', '/v1/nodes', { token })).status, 403);
    } finally {
      ws.close();
    }
  });

  it('an endpoint created on A gets every event published on any node once; kill -9 of its sender hands it over within seconds', async () => {
    const [a] = nodes as [HeraldNode];
    const created = await a.call('POST', '/v1/endpoints', { body: { url: receiver.url, channels: ['shop:*'] } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const endpointId: string = created.body.id;
    const acked: string[] = [];
    let published = 0;
    const publishSome = async (on: HeraldNode[], n: number) => {
      for (let i = 0; i < n; i++) {
        const node = on[published % on.length]!;
        const res = await node.publish(`shop:${published % 2 === 0 ? 'eu' : 'us'}`, { i: published });
        assert.equal(res.status, 201, JSON.stringify(res.body));
        acked.push(res.body.id);
        published++;
      }
    };
    const receivedIds = () => new Set(receiver.hooks.map(webhookId));
    const waitDelivered = (timeoutMs: number, what: string) =>
      until(() => acked.every((id) => receivedIds().has(id)), timeoutMs, what).catch((error: unknown) => {
        throw new Error(`${String(error)}: ${receivedIds().size}/${acked.length} received\n${nodes.map((n) => `${n.id}: ${n.log().slice(-1500)}`).join('\n')}`);
      });

    await publishSome(nodes, 30);
    await waitDelivered(10_000, 'every event delivered');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(receiver.hooks.length, 30, 'each event exactly once');
    for (const r of receiver.hooks) assert.equal(r.event.id, webhookId(r), 'webhook-id is the event id');

    const sender = await holder(`endpoint:${endpointId}`);
    const victim = nodes.find((n) => n.id === sender);
    assert.ok(victim, `the endpoint's lease is held by a node (${sender})`);
    const survivors = nodes.filter((n) => n !== victim);
    const dispatcherBefore = await holder('dispatcher');

    // Events owed when the sender dies, then more while nobody sends.
    await publishSome(survivors, 10);
    await victim.kill();
    const killedAt = Date.now();
    await publishSome(survivors, 20);
    await waitDelivered(15_000, 'every event delivered after the takeover');
    const takeover = Math.min(...receiver.hooks.filter((r) => r.at > killedAt).map((r) => r.at)) - killedAt;
    assert.ok(takeover < 10_000, `another node took over after ${takeover} ms`);
    const newSender = await holder(`endpoint:${endpointId}`);
    assert.ok(newSender && newSender !== victim.id, `new sender ${newSender}`);
    if (dispatcherBefore === victim.id) assert.notEqual(await holder('dispatcher'), victim.id, 'the dispatcher moved too');

    // Exactly once, except a request the victim may have had on the wire when it died (a retry, by design).
    const counts = new Map<string, number>();
    for (const r of receiver.hooks) counts.set(webhookId(r), (counts.get(webhookId(r)) ?? 0) + 1);
    const firstSeen = new Map<string, number>();
    for (const r of receiver.hooks) if (!firstSeen.has(webhookId(r))) firstSeen.set(webhookId(r), r.at);
    for (const [id, count] of counts) {
      if (count > 1) assert.ok(firstSeen.get(id)! <= killedAt, `${id} delivered ${count} times, first after the kill`);
    }
    assert.equal(counts.size, acked.length);
    assert.deepEqual(new Set(counts.keys()), new Set(acked));

    // The killed node drops out of GET /v1/nodes.
    await waitUntil(
      async () => {
        const res = await survivors[0]!.call('GET', '/v1/nodes');
        return res.body.nodes.map((n: any) => n.id).join() === survivors.map((n) => n.id).sort().join();
      },
      10_000,
      'the killed node drops out of /v1/nodes',
    );
  });
});

interface TwoNodes {
  /** The node that holds the dispatcher lease, and the other one. */
  dispatcher: HeraldNode;
  other: HeraldNode;
  receiver: HookReceiver;
  sql: pg.Client;
}

/** Two nodes on a fresh database and Redis, with a webhook receiver, once one of them runs the dispatcher; all stopped after. */
async function withTwoNodes(prefix: string, env: Record<string, string>, run: (c: TwoNodes) => Promise<void>): Promise<void> {
  const db = await createTestDatabase(`herald_cluster_${prefix}`);
  const redis = await startRedis();
  const receiver = await new HookReceiver().start();
  const sql = new pg.Client({ connectionString: db.url });
  let nodes: HeraldNode[] = [];
  try {
    await sql.connect();
    nodes = await spawnNodes(2, { store: db.url, bus: redis.url, prefix, env });
    await waitUntil(async () => (await leaseHolder(sql, 'dispatcher')) !== undefined, 10_000, 'a dispatcher');
    const holderId = await leaseHolder(sql, 'dispatcher');
    const dispatcher = nodes.find((n) => n.id === holderId)!;
    await run({ dispatcher, other: nodes.find((n) => n !== dispatcher)!, receiver, sql });
  } finally {
    await sql.end();
    await Promise.all(nodes.map((n) => n.stop()));
    await receiver.stop();
    await redis.stop();
    await db.drop();
  }
}

/** Waits until every acknowledged event id has reached the receiver. */
async function allDelivered(receiver: HookReceiver, acked: string[], what: string, log = ''): Promise<void> {
  await until(() => acked.every((id) => receiver.hooks.some((r) => webhookId(r) === id)), 30_000, what).catch((error: unknown) => {
    const got = new Set(receiver.hooks.map(webhookId));
    throw new Error(`${String(error)}: missing ${acked.filter((id) => !got.has(id)).length} of ${acked.length}\n${log}`);
  });
}

describe('cluster delivery: the dispatcher dies before it learns of a new endpoint', () => {
  it('an endpoint created on A while B runs the dispatcher gets every event after kill -9 of B', async () => {
    await withTwoNodes('bf', { HERALD_LOG_LEVEL: 'info' }, async ({ dispatcher: victim, other: a, receiver, sql }) => {
      // The endpoint goes through A, which does not run the dispatcher: B hears of it at its next reload (≤ 2 s).
      const created = await a.call('POST', '/v1/endpoints', { body: { url: receiver.url, channels: ['late:*'] } });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const acked: string[] = [];
      for (let i = 0; i < 10; i++) acked.push((await a.publish('late:1', { i })).body.id);
      // Long enough for B to save the channel's cursor past those events (every second), and B may or may not have
      // reloaded yet: either way nothing may be lost.
      await new Promise((r) => setTimeout(r, 1200));
      await victim.kill();
      for (let i = 10; i < 15; i++) acked.push((await a.publish('late:1', { i })).body.id);
      await allDelivered(receiver, acked, 'every event delivered after the takeover', a.log().slice(-2000));
      assert.equal(await leaseHolder(sql, 'dispatcher'), a.id, 'A runs the dispatcher now');
      assert.match(a.log(), /dispatcher lease taken/, 'and says so in its log');
      // A sends the endpoint's deliveries now, and said so when it took them (at the start, or from B).
      const taken = a.log().split('\n').filter((line) => line.includes('"msg":"endpoint lease taken'));
      assert.deepEqual(taken.map((line) => JSON.parse(line).endpoint), [created.body.id]);
    });
  });
});

describe('cluster delivery: bounded memory on the dispatcher node', () => {
  it('delivers every event of many channels once while the dispatcher node remembers 2 channels on the bus and 2 cursors', async () => {
    await withTwoNodes('bd', { HERALD_BUS_CHANNEL_CACHE: '2', HERALD_DELIVERY_CURSOR_CACHE: '2' }, async ({ other, receiver }) => {
      // Published through the other node: every event reaches the dispatcher over the bus, through its whole-log follower.
      const created = await other.call('POST', '/v1/endpoints', { body: { url: receiver.url, channels: ['many:*'] } });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      // The dispatcher hears of the endpoint at its next reload (≤ 2 s); what is published before is backfilled.
      const acked: string[] = [];
      for (let round = 0; round < 3; round++) {
        for (let c = 0; c < 8; c++) acked.push((await other.publish(`many:${c}`, { round })).body.id);
      }
      await allDelivered(receiver, acked, 'every event delivered');
      await new Promise((r) => setTimeout(r, 500));
      const ids = receiver.hooks.map(webhookId);
      assert.equal(ids.length, new Set(ids).size, 'no event delivered twice');
      assert.equal(ids.length, acked.length);
    });
  });
});

/** Two nodes on one fresh database and `bus`: an event published on one reaches a WebSocket on the other over the wire. */
async function carriesAnEvent(bus: (db: TestDatabase) => string, prefix: string): Promise<void> {
  const db = await createTestDatabase(`herald_cluster_${prefix}`);
  let nodes: HeraldNode[] = [];
  try {
    nodes = await spawnNodes(2, { store: db.url, bus: bus(db), prefix });
    const [a, b] = nodes as [HeraldNode, HeraldNode];
    const ready = await b.call('GET', '/readyz', { token: null });
    assert.equal(ready.body.bus, 'up', JSON.stringify(ready.body));
    const token = (await a.call('POST', '/v1/tokens', { body: { sub: 't', channels: ['x'], ttl: 600 } })).body.token;
    const ws = await WsFollower.open(b, 'x', token);
    try {
      for (let i = 1; i <= 3; i++) {
        const start = Date.now();
        const res = await a.publish('x', { i });
        assert.equal(res.status, 201);
        // Under the ~1 s of the store poll: the bus carried it.
        await until(() => ws.events.length === i, 3000, `event ${i}`);
        assert.ok(ws.receivedAt.get(i)! - start < 500, `event ${i} took ${ws.receivedAt.get(i)! - start} ms`);
      }
    } finally {
      ws.close();
    }
  } finally {
    await Promise.all(nodes.map((n) => n.stop()));
    await db.drop();
  }
}

describe('cluster: other bus transports', () => {
  it('PostgreSQL LISTEN/NOTIFY carries an event between two nodes', async () => {
    await carriesAnEvent((db) => db.url, 'pgbus');
  });

  describe('Redis Cluster', () => {
    let cluster: RedisCluster | undefined;
    after(async () => {
      await cluster?.stop();
    });
    it('a Redis Cluster bus (sharded pub/sub) carries an event between two nodes', async () => {
      cluster = await startRedisCluster(3);
      await carriesAnEvent(() => cluster!.url, 'rcbus');
    });
  });
});

describe('cluster delivery: portal.maxEndpoints across nodes', () => {
  it("one tenant's creates racing on two nodes never take it past the limit", async () => {
    const env = { HERALD_PORTAL_MAX_ENDPOINTS: '3', HERALD_PORTAL_ALLOW_PRIVATE_NETWORKS: '127.0.0.2/32' };
    await withTwoNodes('pm', env, async ({ dispatcher: a, other: b }) => {
      const session = await a.call('POST', '/v1/portal/sessions', { body: { tenant: 'acme' } });
      assert.equal(session.status, 201, JSON.stringify(session.body));
      const create = (node: HeraldNode) => node.call('POST', '/v1/endpoints', { token: session.body.token, body: { url: 'http://127.0.0.2:9/hook', channels: ['acme:orders'] } });
      // Before, each node counted on its own: two nodes could each see room for the last one.
      const burst = await Promise.all(Array.from({ length: 20 }, (_, i) => create(i % 2 ? a : b)));
      assert.deepEqual(burst.map((res) => res.status).sort(), [201, 201, 201, ...Array.from({ length: 17 }, () => 403)]);
      const listed = await b.call('GET', '/v1/endpoints?tenant=acme');
      assert.equal(listed.body.endpoints.length, 3);
    });
  });
});

describe('cluster: node ids', () => {
  it("a node started under a live node's id is refused; a node killed and restarted at once under its own id starts", async () => {
    const db = await createTestDatabase('herald_cluster_ids');
    const redis = await startRedis();
    const sql = new pg.Client({ connectionString: db.url });
    let nodes: HeraldNode[] = [];
    try {
      await sql.connect();
      nodes = await spawnNodes(2, { store: db.url, bus: redis.url, prefix: 'id' });
      const [a, b] = nodes as [HeraldNode, HeraldNode];
      await waitUntil(async () => (await leaseHolder(sql, 'dispatcher')) !== undefined, 10_000, 'a dispatcher');
      const holder = await leaseHolder(sql, 'dispatcher');
      // Before, a second process under a live node's id shared every lease of that id (the dispatcher, each
      // endpoint's sending): both sent every delivery, and /v1/nodes listed them as one node.
      await assert.rejects(
        HeraldNode.spawn({ id: a.id, store: db.url, bus: redis.url }),
        /node id id1 is in use by another live node: give each node its own --node-id/,
      );
      assert.equal(await leaseHolder(sql, 'dispatcher'), holder);
      const listed = await b.call('GET', '/v1/nodes');
      assert.deepEqual(listed.body.nodes.map((n: any) => n.id), ['id1', 'id2'], 'the refused start left the live record alone');

      // A record that stops beating is this node's own previous run: a restart right after kill -9 goes ahead.
      await b.kill();
      nodes = [a, await HeraldNode.spawn({ id: 'id2', store: db.url, bus: redis.url })];
      assert.equal((await nodes[1]!.call('GET', '/readyz')).status, 200);
    } finally {
      await sql.end();
      await Promise.all(nodes.map((n) => n.stop()));
      await redis.stop();
      await db.drop();
    }
  });
});

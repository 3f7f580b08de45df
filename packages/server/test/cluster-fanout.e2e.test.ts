// Issue #9, through 3 real nodes on one PostgreSQL database and one Redis:
// any node, any transport; one log; interest-based routing.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { sign } from '@herald/webhooks';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';
import { redisCli, startRedis, type RedisProcess } from './support/redis.js';
import { contiguity, PollFollower, SseFollower, spawnNodes, until, WsFollower, type HeraldNode } from './support/cluster.js';
import { WsTestClient } from './ws-client.js';

const run = promisify(execFile);

/** Redis subscriptions per node process: CLIENT LIST's `sub` per connection, mapped to its PID through `ss`. */
async function subscriptionsByNode(redisPort: number): Promise<Map<number, number>> {
  const { stdout } = await run('ss', ['-tnpH', 'state', 'established', `( dport = :${redisPort} )`], { timeout: 5000 });
  const pidByPort = new Map<string, number>();
  for (const line of stdout.split('\n')) {
    const match = /127\.0\.0\.1:(\d+)\s+127\.0\.0\.1:\d+\s+users:\(\("[^"]*",pid=(\d+)/.exec(line);
    if (match) pidByPort.set(match[1]!, Number(match[2]));
  }
  const subs = new Map<number, number>();
  for (const line of (await redisCli(redisPort, 'CLIENT', 'LIST')).split('\n')) {
    const port = /addr=127\.0\.0\.1:(\d+)/.exec(line)?.[1];
    const sub = Number(/ sub=(\d+)/.exec(line)?.[1] ?? 0);
    const pid = port && pidByPort.get(port);
    if (pid) subs.set(pid, (subs.get(pid) ?? 0) + sub);
  }
  return subs;
}

const STRIPE_SECRET = 'whsec_cluster_' + 's'.repeat(24);

describe('cluster: 3 nodes, one PostgreSQL, one Redis', () => {
  let db: TestDatabase;
  let redis: RedisProcess;
  let nodes: HeraldNode[] = [];
  let a: HeraldNode, b: HeraldNode, c: HeraldNode;

  before(async () => {
    db = await createTestDatabase('herald_cluster_fanout');
    redis = await startRedis();
    nodes = await spawnNodes(3, { store: db.url, bus: redis.url });
    [a, b, c] = nodes as [HeraldNode, HeraldNode, HeraldNode];
  });

  after(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await redis?.stop();
    await db?.drop();
  });

  async function subscriberToken(node: HeraldNode, channels: string[], publish = false): Promise<string> {
    const res = await node.call('POST', '/v1/tokens', { body: { sub: 'tester', channels, publish: publish ? channels : undefined, ttl: 600 } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body.token;
  }

  it('an event published on A over HTTP, WebSocket and Stripe ingest reaches SSE, WebSocket and long-poll subscribers on B and C once, in order, fast', async () => {
    const channel = 'orders';
    assert.equal((await a.call('POST', '/v1/sources', { body: { name: 'stripe-orders', provider: 'stripe', secrets: [STRIPE_SECRET], channel } })).status, 201);
    // A token minted on A is good on every node: the token secret is shared through the store.
    const token = await subscriberToken(a, [channel], true);
    const followers = {
      sseB: new SseFollower(b, channel, token),
      sseC: new SseFollower(c, channel, token),
      wsB: await WsFollower.open(b, channel, token),
      wsC: await WsFollower.open(c, channel, token),
      pollB: new PollFollower(b, channel, token),
      pollC: new PollFollower(c, channel, token),
    };
    const publisher = new WsTestClient(`${a.wsUrl}?token=${encodeURIComponent(token)}`);
    try {
      await Promise.all([followers.sseB.opened, followers.sseC.opened, publisher.opened]);
      const sentAt = new Map<number, number>();
      const total = 30;
      for (let i = 0; i < total; i++) {
        const start = Date.now();
        let seq: number;
        if (i % 3 === 0) {
          const res = await a.publish(channel, { i }, { type: 'http' });
          assert.equal(res.status, 201, JSON.stringify(res.body));
          seq = res.body.seq;
        } else if (i % 3 === 1) {
          publisher.send({ op: 'publish', channel, type: 'ws', data: { i }, ref: `p${i}` });
          await until(() => publisher.ops('ack').some((f) => f.ref === `p${i}`), 5000, `ack p${i}`);
          seq = publisher.ops('ack').find((f) => f.ref === `p${i}`).seq;
        } else {
          const body = JSON.stringify({ id: `evt_fanout_${i}`, type: 'charge.succeeded', data: { object: { i } } });
          const res = await a.call('POST', '/v1/ingest/stripe-orders', { raw: body, token: null, headers: sign('stripe', { secret: STRIPE_SECRET, body }) });
          assert.equal(res.status, 200, JSON.stringify(res.body));
          seq = res.body.event.seq;
        }
        sentAt.set(seq, start);
      }
      assert.deepEqual([...sentAt.keys()].sort((x, y) => x - y), Array.from({ length: total }, (_, i) => i + 1));
      const all = Object.entries(followers);
      await until(() => all.every(([, f]) => f.events.length >= total), 5000, 'every subscriber has every event').catch((error: unknown) => {
        throw new Error(`${String(error)}: ${all.map(([name, f]) => `${name}=${f.events.length}`).join(' ')}`);
      });
      // Nothing extra trickles in: a marker published after, once every subscriber has it, would follow any duplicate.
      assert.equal((await a.publish(channel, { marker: true }, { type: 'marker' })).status, 201);
      await until(() => all.every(([, f]) => f.events.length >= total + 1), 5000, 'every subscriber has the marker');
      const types = (await a.readAll(channel)).map((e) => e.type);
      assert.deepEqual(new Set(types), new Set(['http', 'ws', 'charge.succeeded', 'marker']));
      for (const [name, follower] of all) {
        assert.equal(contiguity(follower.events, 1, total + 1), undefined, name);
        assert.deepEqual(follower.events.map((e) => e.type), types, name);
        let worst = 0;
        for (const [seq, at] of sentAt) worst = Math.max(worst, follower.receivedAt.get(seq)! - at);
        // Well under a second from the request on A to the frame on B or C (a long poll re-arms, so allow it a little more).
        assert.ok(worst < (name.startsWith('poll') ? 800 : 500), `${name}: slowest publish→receive ${worst} ms`);
      }
    } finally {
      publisher.ws.terminate();
      followers.sseB.close();
      followers.sseC.close();
      followers.wsB.close();
      followers.wsC.close();
      await Promise.all([followers.pollB.stop(), followers.pollC.stop()]);
    }
  });

  it('a client that reconnects to another node with its cursor resumes with no gap and no duplicate', async () => {
    const channel = 'resume';
    const token = await subscriberToken(b, [channel]);
    let published = 0;
    const publishSome = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const res = await nodes[i % 3]!.publish(channel, { i: published });
        assert.equal(res.status, 201);
        published++;
      }
    };
    // WebSocket: B, then C; SSE: C, then A (Last-Event-ID); long poll: A, then B.
    const ws1 = await WsFollower.open(b, channel, token);
    const sse1 = new SseFollower(c, channel, token);
    await sse1.opened;
    const poll1 = new PollFollower(a, channel, token);
    await publishSome(10);
    await until(() => ws1.events.length === 10 && sse1.events.length === 10 && poll1.events.length === 10, 5000, 'first half');
    ws1.close();
    sse1.close();
    await poll1.stop();
    // Published while nobody listens: the new node must replay these from the log.
    await publishSome(5);
    const ws2 = await WsFollower.open(c, channel, token, ws1.last);
    const sse2 = new SseFollower(a, channel, token, sse1.last);
    await sse2.opened;
    const poll2 = new PollFollower(b, channel, token, poll1.last);
    try {
      await publishSome(10);
      await until(() => ws2.events.length >= 15 && sse2.events.length >= 15 && poll2.events.length >= 15, 5000, 'second half');
      // A marker after the rest: a duplicate of anything before it would have arrived before it.
      await publishSome(1);
      await until(() => ws2.events.length >= 16 && sse2.events.length >= 16 && poll2.events.length >= 16, 5000, 'the marker');
      for (const [name, first, second] of [
        ['ws', ws1.events, ws2.events],
        ['sse', sse1.events, sse2.events],
        ['poll', poll1.events, poll2.events],
      ] as const) {
        assert.equal(contiguity([...first, ...second], 1, 26), undefined, name);
      }
    } finally {
      ws2.close();
      sse2.close();
      await poll2.stop();
    }
  });

  it('concurrent publishers on all 3 nodes to one channel get contiguous seqs from 1', async () => {
    const channel = 'contended';
    const perWorker = 25;
    const workersPerNode = 4;
    const acks: any[] = [];
    await Promise.all(
      nodes.flatMap((node) =>
        Array.from({ length: workersPerNode }, async (_, w) => {
          for (let i = 0; i < perWorker; i++) {
            const res = await node.publish(channel, { node: node.id, w, i });
            assert.equal(res.status, 201, JSON.stringify(res.body));
            acks.push(res.body);
          }
        }),
      ),
    );
    const total = nodes.length * workersPerNode * perWorker;
    const seqs = acks.map((e) => e.seq).sort((x, y) => x - y);
    assert.deepEqual(seqs, Array.from({ length: total }, (_, i) => i + 1));
    assert.equal(new Set(acks.map((e) => e.id)).size, total);
    const log = await c.readAll(channel);
    assert.equal(contiguity(log, 1, total), undefined);
    // What each publisher was told is what the log holds.
    const byId = new Map(log.map((e) => [e.id, e.seq]));
    for (const ack of acks) assert.equal(byId.get(ack.id), ack.seq);
  });

  it('one Idempotency-Key from one credential on 3 nodes at once makes one event', async () => {
    const channel = 'idem';
    const key = (await a.call('POST', '/v1/keys', { body: { name: 'idem', scopes: ['publish', 'subscribe'], channels: [channel] } })).body.key;
    for (let round = 0; round < 5; round++) {
      const results = await Promise.all(
        [...nodes, ...nodes].map((node) => node.publish(channel, { round }, { token: key, headers: { 'idempotency-key': `k-${round}` } })),
      );
      assert.ok(results.every((r) => r.status === 201 || r.status === 200), JSON.stringify(results.map((r) => r.status)));
      assert.equal(results.filter((r) => r.status === 201).length, 1, `round ${round}: exactly one 201`);
      assert.equal(new Set(results.map((r) => r.body.id)).size, 1, `round ${round}: every answer is the one event`);
    }
    // An explicit event id, likewise.
    const byId = await Promise.all(nodes.map((node) => node.call('POST', `/v1/channels/${channel}/events`, { token: key, body: { id: 'evt_same_everywhere', data: {} } })));
    assert.equal(byId.filter((r) => r.status === 201).length, 1, JSON.stringify(byId.map((r) => r.status)));
    const log = await b.readAll(channel);
    assert.equal(contiguity(log, 1, 6), undefined);
  });

  it('100 copies of one Stripe event sent to 3 nodes make exactly one event', async () => {
    const channel = 'stripe-dedupe';
    assert.equal((await b.call('POST', '/v1/sources', { body: { name: 'stripe-dedupe', provider: 'stripe', secrets: [STRIPE_SECRET], channel } })).status, 201);
    const body = JSON.stringify({ id: 'evt_1OnlyOnce', type: 'invoice.paid', data: { object: { amount: 42 } } });
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        nodes[i % 3]!.call('POST', '/v1/ingest/stripe-dedupe', { raw: body, token: null, headers: sign('stripe', { secret: STRIPE_SECRET, body }) }),
      ),
    );
    assert.ok(results.every((r) => r.status === 200), JSON.stringify(results.filter((r) => r.status !== 200).slice(0, 3)));
    assert.equal(results.filter((r) => r.body.duplicate === false).length, 1);
    assert.equal(new Set(results.map((r) => r.body.event.id)).size, 1);
    const log = await c.readAll(channel);
    assert.equal(log.length, 1);
    assert.equal(log[0].meta.providerEventId, 'evt_1OnlyOnce');
  });

  it('interest-based routing: only nodes with a subscriber for a channel subscribe to it on Redis', async () => {
    const channel = 'interest-only-b';
    const topic = `herald:ch:{${channel}}`;
    // The channel's messages outside the log (ephemeral publishes, presence, direct messages): interest-routed too.
    const signalTopic = `herald:ch:{#${channel}}`;
    const numsubOf = async (name: string) => Number((await redisCli(redis.port, 'PUBSUB', 'NUMSUB', name)).split('\n')[1]);
    const numsub = () => numsubOf(topic);
    const settle = async (check: () => Promise<boolean>, what: string) => {
      const deadline = Date.now() + 5000;
      while (!(await check())) {
        if (Date.now() > deadline) throw new Error(`${what} not met in time`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    assert.equal(await numsub(), 0);
    assert.equal(await numsubOf(signalTopic), 0);
    const before = await subscriptionsByNode(redis.port);
    const token = await subscriberToken(a, [channel]);
    const ws = await WsFollower.open(b, channel, token);
    try {
      // Two Redis subscriptions more, both on B's connections (the channel's events and its signals); A's and C's unchanged.
      await settle(async () => (await numsub()) === 1 && (await numsubOf(signalTopic)) === 1, 'one subscriber for each topic');
      const during = await subscriptionsByNode(redis.port);
      assert.equal(during.get(b.pid), (before.get(b.pid) ?? 0) + 2, `B: ${JSON.stringify([...during])}`);
      assert.equal(during.get(a.pid), before.get(a.pid), 'A subscribed to nothing new');
      assert.equal(during.get(c.pid), before.get(c.pid), 'C subscribed to nothing new');
      // Publishing from A and C does not make them subscribe; B gets both over the wire.
      for (const node of [a, c]) assert.equal((await node.publish(channel, { from: node.id })).status, 201);
      await until(() => ws.events.length === 2, 3000, 'B receives both');
      assert.equal(await numsub(), 1);
      assert.deepEqual(await subscriptionsByNode(redis.port), during);
    } finally {
      ws.close();
    }
    // B's last subscriber left: B unsubscribes, so no node receives this channel's traffic any more.
    await settle(async () => (await numsub()) === 0 && (await numsubOf(signalTopic)) === 0, 'the topics have no subscriber');
  });
});

// Issue #9's faults, through 3 real nodes: kill -9 of a node under publish
// load, Redis killed and restarted, PostgreSQL unreachable (through a relay the
// test cuts: the shared PostgreSQL server itself is never stopped).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';
import { faultyLinkTo, type FaultyLink } from './support/faulty-link.js';
import { redisCli, startRedis, type RedisProcess } from './support/redis.js';
import { HEARTBEAT_MS } from '../src/cluster/nodes.js';
import { contiguity, HeraldNode, PollFollower, SseFollower, spawnNodes, until, WsFollower, waitUntil } from './support/cluster.js';

const STORE_TIMEOUT_S = 3;

describe('cluster faults: 3 nodes', () => {
  let db: TestDatabase;
  let link: FaultyLink;
  let redis: RedisProcess;
  const nodes: HeraldNode[] = [];
  const spawned: HeraldNode[] = [];
  let token: string;

  const live = () => nodes.filter((n) => n.alive);

  before(async () => {
    db = await createTestDatabase('herald_cluster_faults');
    link = await faultyLinkTo(db.url);
    redis = await startRedis();
    // Every node reaches PostgreSQL through the link, so the test can cut it for all of them.
    // A short store query timeout, so a hung PostgreSQL answers 503 within the test's patience.
    nodes.push(...(await spawnNodes(3, { store: link.url, bus: redis.url, env: { HERALD_STORE_QUERY_TIMEOUT: String(STORE_TIMEOUT_S) } })));
    spawned.push(...nodes);
    const res = await nodes[0]!.call('POST', '/v1/keys', { body: { name: 'faults', scopes: ['publish', 'subscribe'], channels: ['*'] } });
    assert.equal(res.status, 201);
    token = res.body.key;
  });

  after(async () => {
    await Promise.all(spawned.map((n) => n.stop()));
    await redis?.stop();
    await link?.close();
    await db?.drop();
  });

  it('kill -9 of a node under publish load loses no acknowledged event, and its clients resume on other nodes', async () => {
    const channel = 'load';
    const [a, b, victim] = nodes as [HeraldNode, HeraldNode, HeraldNode];
    const wsOnVictim = await WsFollower.open(victim, channel, token);
    const sseOnVictim = new SseFollower(victim, channel, token);
    await sseOnVictim.opened;
    const acked: Array<{ id: string; seq: number }> = [];
    const refused: string[] = [];
    let running = true;
    // Two publishers per node, each one request at a time, until told to stop.
    const publishers = nodes.flatMap((node) =>
      [0, 1].map(async (w) => {
        for (let i = 0; running; i++) {
          try {
            const res = await node.publish(channel, { node: node.id, w, i }, { token });
            if (res.status === 201) acked.push({ id: res.body.id, seq: res.body.seq });
            else refused.push(`${node.id}: ${res.status} ${JSON.stringify(res.body)}`);
          } catch (error) {
            // The victim's connections reset: no answer, so nothing was acknowledged.
            if (node === victim) return;
            refused.push(`${node.id}: ${String(error)}`);
          }
        }
      }),
    );
    try {
      await until(() => acked.length >= 60 && wsOnVictim.events.length > 0 && sseOnVictim.events.length > 0, 10_000, 'load under way');
      await victim.kill();
      const ackedAtKill = acked.length;
      // The victim's clients see their connection end.
      await until(() => wsOnVictim.closed && sseOnVictim.ended, 5000, 'the victim’s clients notice');
      // …and reconnect elsewhere with their cursor, while the load goes on.
      const ws2 = await WsFollower.open(a, channel, token, wsOnVictim.last);
      const sse2 = new SseFollower(b, channel, token, sseOnVictim.last);
      await sse2.opened;
      try {
        await until(() => acked.length >= ackedAtKill + 60, 10_000, 'load goes on on the other nodes');
        running = false;
        await Promise.all(publishers);
        assert.deepEqual(refused.filter((r) => !r.startsWith(`${victim.id}:`)), [], 'the surviving nodes refused nothing');
        const log = await a.readAll(channel);
        const head = log.length;
        assert.equal(contiguity(log, 1, head), undefined);
        const byId = new Map(log.map((e) => [e.id, e.seq]));
        for (const ack of acked) assert.equal(byId.get(ack.id), ack.seq, `acknowledged ${ack.id} (seq ${ack.seq}) is in the log`);
        await until(() => ws2.last >= head && sse2.last >= head, 5000, 'the reconnected clients catch up');
        assert.equal(contiguity([...wsOnVictim.events, ...ws2.events], 1, head), undefined, 'ws');
        assert.equal(contiguity([...sseOnVictim.events, ...sse2.events], 1, head), undefined, 'sse');
      } finally {
        ws2.close();
        sse2.close();
      }
    } finally {
      running = false;
      await Promise.all(publishers);
      wsOnVictim.close();
      sseOnVictim.close();
      // A replacement, so the next tests have 3 nodes again.
      await victim.kill();
      const replacement = await HeraldNode.spawn({ id: 'n4', store: link.url, bus: redis.url });
      spawned.push(replacement);
      nodes.splice(nodes.indexOf(victim), 1, replacement);
    }
  });

  it('Redis down: publishes succeed, subscribers get events from the store, /readyz says degraded; Redis back: resubscribed, nothing lost', async () => {
    const channel = 'redis-outage';
    const [a, b, c] = live() as [HeraldNode, HeraldNode, HeraldNode];
    const ws = await WsFollower.open(b, channel, token);
    const sse = new SseFollower(c, channel, token);
    await sse.opened;
    const poll = new PollFollower(a, channel, token);
    const followers = { ws, sse, poll };
    const lateChannel = 'redis-outage-late';
    const lateFollowers: WsFollower[] = [];
    const sentAt = new Map<number, number>();
    let published = 0;
    const publishSome = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const node = [a, b, c][published % 3]!;
        const start = Date.now();
        const res = await node.publish(channel, { i: published }, { token });
        assert.equal(res.status, 201, JSON.stringify(res.body));
        sentAt.set(res.body.seq, start);
        published++;
      }
    };
    const worstLatency = (from: number, to: number) => {
      let worst = 0;
      for (const follower of Object.values(followers)) {
        for (let seq = from; seq <= to; seq++) worst = Math.max(worst, follower.receivedAt.get(seq)! - sentAt.get(seq)!);
      }
      return worst;
    };
    const readyz = async (node: HeraldNode) => node.call('GET', '/readyz', { token: null, timeoutMs: 3000 });
    try {
      await publishSome(3);
      await until(() => Object.values(followers).every((f) => f.events.length === 3), 5000, 'before the outage').catch((error: unknown) => {
        throw new Error(`${String(error)}: ws=${ws.events.length} sse=${sse.events.length} poll=${poll.events.length} ${String(poll.error)}\n${[a, b, c].map((n) => `${n.id}: ${n.log().slice(-2000)}`).join('\n')}`);
      });

      await redis.kill();
      await waitUntil(async () => (await Promise.all(live().map(readyz))).every((r) => r.status === 200 && r.body.bus === 'down'), 5000, 'every node says the bus is down');
      for (const node of live()) {
        const res = await readyz(node);
        assert.equal(res.status, 200);
        assert.equal(res.body.status, 'degraded');
        assert.equal(res.body.store, 'up');
      }
      // A subscriber that arrives during the outage, on a channel no node followed before.
      const late = await WsFollower.open(c, lateChannel, token);
      lateFollowers.push(late);
      assert.equal((await a.publish(lateChannel, { during: true }, { token })).status, 201);
      await publishSome(6);
      await until(() => late.events.length === 1, 6000, 'the late subscriber gets its event from the store');
      await until(() => Object.values(followers).every((f) => f.events.length === 9), 6000, 'events reach subscribers from the store').catch((error: unknown) => {
        throw new Error(`${String(error)}: ws=${ws.events.length} sse=${sse.events.length} poll=${poll.events.length}`);
      });
      const outage = worstLatency(4, 9);
      assert.ok(outage < 4000, `while Redis is down, slowest publish→receive ${outage} ms`);

      await redis.restart();
      await waitUntil(async () => (await Promise.all(live().map(readyz))).every((r) => r.status === 200 && r.body.status === 'ready' && r.body.bus === 'up'), 10_000, 'every node says ready again');
      // Resubscribed: B and C (and A while its long poll is parked) listen to the channel's topic again.
      const topic = `herald:ch:{${channel}}`;
      let numsub = '';
      await waitUntil(async () => Number((numsub = (await redisCli(redis.port, 'PUBSUB', 'NUMSUB', topic)).split('\n')[1]!)) >= 2, 3000, 'B and C resubscribed').catch((error: unknown) => {
        throw new Error(`${String(error)}: NUMSUB ${numsub}`);
      });
      await publishSome(6);
      await until(() => Object.values(followers).every((f) => f.events.length >= 15), 3000, 'events after the restart');
      // One marker more: a duplicate or a stray of anything before it would have arrived before it.
      await publishSome(1);
      await until(() => Object.values(followers).every((f) => f.events.length >= 16), 3000, 'the marker');
      for (const [name, follower] of Object.entries(followers)) assert.equal(contiguity(follower.events, 1, 16), undefined, name);
      // The late subscriber's channel was subscribed on Redis when the link came back: a publish reaches it over the wire.
      const start = Date.now();
      assert.equal((await b.publish(lateChannel, { after: true }, { token })).status, 201);
      await until(() => lateFollowers[0]!.events.length === 2, 3000, 'the late subscriber after the restart');
      assert.ok(lateFollowers[0]!.receivedAt.get(2)! - start < 500, `late subscriber: ${lateFollowers[0]!.receivedAt.get(2)! - start} ms`);
      assert.equal(contiguity(lateFollowers[0]!.events, 1, 2), undefined);
      // Back on the wire, not on the store's poll.
      const restored = worstLatency(10, 15);
      assert.ok(restored < 500, `after the restart, slowest publish→receive ${restored} ms`);
    } finally {
      ws.close();
      sse.close();
      for (const f of lateFollowers) f.close();
      await poll.stop();
    }
  });

  it('PostgreSQL unreachable: publishes answer 503 store_unavailable, /readyz 503; service resumes when it returns', async () => {
    const channel = 'pg-outage';
    const [a, b, c] = live() as [HeraldNode, HeraldNode, HeraldNode];
    const ws = await WsFollower.open(b, channel, token);
    try {
      assert.equal((await a.publish(channel, { before: true }, { token })).status, 201);
      await until(() => ws.events.length === 1, 3000, 'before the outage');

      link.cut();
      const started = Date.now();
      for (const node of [a, b, c]) {
        const res = await node.publish(channel, { during: node.id }, { token, headers: { 'idempotency-key': `during-${node.id}` } });
        assert.equal(res.status, 503, JSON.stringify(res.body));
        assert.equal(res.body.error.code, 'store_unavailable');
        const ready = await node.call('GET', '/readyz', { token: null });
        assert.equal(ready.status, 503, JSON.stringify(ready.body));
      }
      // A WebSocket publish is refused the same way: an error frame, never an ack.
      ws.client.send({ op: 'publish', channel, data: { during: 'ws' }, ref: 'during-ws' });
      await until(() => ws.client.ops('error').some((f) => f.ref === 'during-ws'), 10_000, 'ws publish refused');
      assert.equal(ws.client.ops('error').find((f) => f.ref === 'during-ws').code, 'store_unavailable');
      assert.ok(!ws.client.ops('ack').some((f) => f.ref === 'during-ws'));
      assert.ok(Date.now() - started < 20_000, 'refusals come quickly');

      // Each node's heartbeat fails every 2 s meanwhile: the outage is one warning per node, not one per beat.
      const beatFailures = (node: HeraldNode) => node.log().split('\n').filter((line) => line.includes('"msg":"node heartbeat failed"')).length;
      await until(() => [a, b, c].every((node) => beatFailures(node) === 1), 10_000, 'every node warns of its failing heartbeat');
      await new Promise((resolve) => setTimeout(resolve, 2 * HEARTBEAT_MS + 500));
      assert.deepEqual([a, b, c].map(beatFailures), [1, 1, 1], 'two more failed beats, and no more lines');

      link.restore();
      await waitUntil(async () => (await Promise.all([a, b, c].map((n) => n.call('GET', '/readyz', { token: null })))).every((r) => r.status === 200), 10_000, 'every node ready again');
      for (const node of [a, b, c]) {
        const res = await node.publish(channel, { after: node.id }, { token });
        assert.equal(res.status, 201, JSON.stringify(res.body));
      }
      await until(() => ws.events.length === 4, 3000, 'events after the outage reach the subscriber');
      const log = await c.readAll(channel);
      assert.equal(contiguity(log, 1, 4), undefined);
      assert.ok(log.every((e) => e.data.during === undefined), 'nothing refused was appended');
      assert.equal(contiguity(ws.events, 1, 4), undefined);
    } finally {
      link.restore();
      ws.close();
    }
  });

  it('PostgreSQL hung (packets black-holed): /readyz answers 503 within seconds, a publish answers 503 store_unavailable after store.queryTimeout; service resumes', async () => {
    const channel = 'pg-hung';
    const [a, b] = live() as [HeraldNode, HeraldNode];
    assert.equal((await a.publish(channel, { before: true }, { token })).status, 201);
    link.blackhole();
    try {
      const publishing = Date.now();
      const hung = b.call('POST', `/v1/channels/${channel}/events`, { token, body: { data: { during: true } }, timeoutMs: 60_000 });
      const started = Date.now();
      const ready = await a.call('GET', '/readyz', { token: null, timeoutMs: 10_000 });
      assert.equal(ready.status, 503, JSON.stringify(ready.body));
      assert.ok(Date.now() - started < 4000, `/readyz answered after ${Date.now() - started} ms`);
      const answer = await hung;
      const took = Date.now() - publishing;
      assert.equal(answer.status, 503, `publish during the hang answered ${answer.status} ${JSON.stringify(answer.body)}`);
      assert.equal(answer.body.error.code, 'store_unavailable');
      // Bounded by the query timeout (plus the connect timeout if a fresh connection was tried), never open-ended.
      assert.ok(took < (STORE_TIMEOUT_S + 6) * 1000, `the publish was answered after ${took} ms`);
    } finally {
      link.restore();
    }
    await waitUntil(async () => (await b.publish(channel, { after: true }, { token })).status === 201, 20_000, 'publishes succeed again');
    const events = await b.readAll(channel);
    assert.deepEqual(
      events.map((e) => e.data),
      [{ before: true }, { after: true }],
      'the refused publish left nothing behind',
    );
  });
});

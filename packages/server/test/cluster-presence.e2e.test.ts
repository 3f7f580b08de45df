// Issue #14 in cluster mode, through 3 real nodes on one PostgreSQL database and one Redis: a presence set is
// the same on every node, ephemeral publishes and direct messages cross nodes, and the members of a node that
// dies (kill -9) leave within 30 s.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';
import { startRedis, type RedisProcess } from './support/redis.js';
import { spawnNodes, until, waitUntil, type HeraldNode } from './support/cluster.js';
import { WsTestClient } from './ws-client.js';

describe('cluster: presence, ephemeral publishes and direct messages across 3 nodes', () => {
  let db: TestDatabase;
  let redis: RedisProcess;
  let nodes: HeraldNode[] = [];
  const clients: WsTestClient[] = [];

  before(async () => {
    db = await createTestDatabase('herald_cluster_presence');
    redis = await startRedis();
    nodes = await spawnNodes(3, { store: db.url, bus: redis.url, env: { HERALD_CHANNELS_PRESENCE: 'room:*' } });
  });

  after(async () => {
    for (const c of clients) c.ws.terminate();
    await Promise.all(nodes.map((n) => n.stop()));
    await redis?.stop();
    await db?.drop();
  });

  async function connect(node: HeraldNode, sub: string): Promise<WsTestClient> {
    const minted = await node.call('POST', '/v1/tokens', { body: { sub, channels: ['room:*'], publish: ['room:*'], ttl: 600 } });
    assert.equal(minted.status, 201, JSON.stringify(minted.body));
    const c = new WsTestClient(`${node.wsUrl}?token=${minted.body.token}`);
    clients.push(c);
    await c.opened;
    return c;
  }

  async function answerTo(c: WsTestClient, ref: string): Promise<any> {
    await until(() => c.frames.some((f) => f.ref === ref), 10_000, `answer to ${ref}`);
    return c.frames.find((f) => f.ref === ref);
  }

  const listed = async (node: HeraldNode, channel: string): Promise<string[]> => {
    const res = await node.call('GET', `/v1/channels/${channel}/presence`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.members.map((m: any) => `${m.sub}:${m.client}`).sort();
  };

  it('a join on A is seen from B (frames and GET) and C; ephemeral and direct messages cross nodes; kill -9 of A makes its member leave within 30 s', async (t) => {
    const [a, b, c] = nodes as [HeraldNode, HeraldNode, HeraldNode];
    const watcher = await connect(b, 'watcher');
    watcher.send({ op: 'subscribe', channel: 'room:x', ref: 'w', presence: { info: { on: 'B' } } });
    const w = await answerTo(watcher, 'w');
    assert.equal(w.op, 'subscribed', JSON.stringify(w));

    const alice = await connect(a, 'alice');
    alice.send({ op: 'subscribe', channel: 'room:x', ref: 'a', presence: { info: { name: 'Alice' } } });
    const joinedA = await answerTo(alice, 'a');
    assert.equal(joinedA.op, 'subscribed', JSON.stringify(joinedA));
    const aliceId: string = joinedA.presence.client;

    // B's member hears the join made on A, and B's GET lists it.
    await until(() => watcher.ops('presence').some((f) => f.action === 'join' && f.member.client === aliceId), 10_000, 'join frame on B');
    const frame = watcher.ops('presence').find((f) => f.member.client === aliceId);
    assert.deepEqual(frame.member, { client: aliceId, sub: 'alice', info: { name: 'Alice' } });
    const both = [`alice:${aliceId}`, `watcher:${w.presence.client}`].sort();
    await waitUntil(async () => JSON.stringify(await listed(b, 'room:x')) === JSON.stringify(both), 10_000, 'B lists both members');
    // C has no member of its own in the channel, and knows the set all the same.
    await waitUntil(async () => JSON.stringify(await listed(c, 'room:x')) === JSON.stringify(both), 10_000, 'C lists both members');

    // An ephemeral publish on C reaches the subscribers on A and B; nothing is logged.
    const publisher = await connect(c, 'publisher');
    publisher.send({ op: 'publish', channel: 'room:x', type: 'typing', data: { from: 'C' }, ref: 'e', ephemeral: true });
    assert.deepEqual(await answerTo(publisher, 'e'), { op: 'ack', ref: 'e' });
    await until(() => watcher.ops('ephemeral').length === 1 && alice.ops('ephemeral').length === 1, 10_000, 'ephemeral on A and B');
    assert.deepEqual(watcher.ops('ephemeral')[0].data, { from: 'C' });
    assert.equal((await c.readAll('room:x')).length, 0);

    // A direct message from B's member to A's, and the answer back.
    watcher.send({ op: 'send', channel: 'room:x', to: aliceId, data: { kind: 'offer' }, ref: 'd' });
    assert.deepEqual(await answerTo(watcher, 'd'), { op: 'ack', ref: 'd' });
    const [message] = await alice.next('message', 1, 10_000);
    assert.deepEqual(message.from, { client: w.presence.client, sub: 'watcher' });
    assert.deepEqual(message.data, { kind: 'offer' });
    alice.send({ op: 'send', channel: 'room:x', to: message.from.client, data: { kind: 'answer' }, ref: 'r' });
    const [reply] = await watcher.next('message', 1, 10_000);
    assert.deepEqual(reply.data, { kind: 'answer' });

    // A dies without a word: its member leaves everywhere within 30 s.
    const killedAt = Date.now();
    await a.kill();
    await until(() => watcher.ops('presence').some((f) => f.action === 'leave' && f.member.client === aliceId), 30_000, 'leave frame on B');
    const tookMs = Date.now() - killedAt;
    assert.ok(tookMs < 30_000, `left after ${tookMs} ms`);
    t.diagnostic(`the member of the killed node left after ${tookMs} ms`);
    assert.deepEqual(await listed(b, 'room:x'), [`watcher:${w.presence.client}`]);
    await waitUntil(async () => (await listed(c, 'room:x')).length === 1, 5000, 'C drops the member too');
    watcher.send({ op: 'send', channel: 'room:x', to: aliceId, data: 1, ref: 'gone' });
    assert.equal((await answerTo(watcher, 'gone')).code, 'not_present');
  });
});

// The outbound circuit breaker in a cluster of real nodes (PostgreSQL + Redis): a refusing endpoint's sender killed
// while its circuit is open, PostgreSQL unreachable (through a relay the test cuts), an edit and a retry through the
// node that does not send the endpoint's deliveries.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';
import { faultyLinkTo, type FaultyLink } from './support/faulty-link.js';
import { freePort, startRedis, type RedisProcess } from './support/redis.js';
import { HookReceiver } from './support/receiver.js';
import { CLI_ADMIN_KEY, deliveriesOf, metricValue } from './helpers.js';
import { leaseHolder, sleep, spawnNodes, until, waitUntil, type HeraldNode } from './support/cluster.js';

const BREAKER = { failures: 5, cooldown: 1, maxCooldown: 2 };
const ENV = {
  HERALD_DELIVERY_CIRCUIT_BREAKER_FAILURES: String(BREAKER.failures),
  HERALD_DELIVERY_CIRCUIT_BREAKER_COOLDOWN: String(BREAKER.cooldown),
  HERALD_DELIVERY_CIRCUIT_BREAKER_MAX_COOLDOWN: String(BREAKER.maxCooldown),
  HERALD_DELIVERY_RETRY_SCHEDULE: Array.from({ length: 30 }, () => '0.5').join(','),
  HERALD_DELIVERY_JITTER: '0',
};

async function circuitsOpen(node: HeraldNode): Promise<number> {
  return (await metricValue(node.url, CLI_ADMIN_KEY, 'herald_endpoint_circuits_open')) ?? NaN;
}

/**
 * `count` nodes on a fresh database (through a relay the test can cut) and their own redis-server, with `env`, and the
 * receivers the tests start, all stopped after the suite. Call it inside the `describe`.
 */
function cluster(count: number, prefix: string, env: Record<string, string>) {
  let db: TestDatabase;
  let redis: RedisProcess;
  const receivers: HookReceiver[] = [];
  const c = { nodes: [] as HeraldNode[], sql: undefined as unknown as pg.Client, link: undefined as unknown as FaultyLink };
  before(async () => {
    db = await createTestDatabase(`herald_${prefix}`);
    c.link = await faultyLinkTo(db.url);
    redis = await startRedis();
    // A short store query timeout, so that requests made while PostgreSQL is cut off fail within the test's patience.
    c.nodes = await spawnNodes(count, { store: c.link.url, bus: redis.url, prefix, env: { ...env, HERALD_STORE_QUERY_TIMEOUT: '3' } });
    c.sql = new pg.Client({ connectionString: db.url });
    await c.sql.connect();
  });
  after(async () => {
    await c.sql?.end();
    await Promise.all(c.nodes.map((n) => n.stop()));
    for (const r of receivers) await r.stop();
    await redis?.stop();
    await c.link?.close();
    await db?.drop();
  });
  return {
    get nodes() {
      return c.nodes;
    },
    get sql() {
      return c.sql;
    },
    get link() {
      return c.link;
    },
    async receiver(port = 0): Promise<HookReceiver> {
      const r = await new HookReceiver().start(port);
      receivers.push(r);
      return r;
    },
    /** The live node sending the endpoint's deliveries, once its circuit is open there. */
    async openOn(endpoint: string): Promise<HeraldNode> {
      let holder: HeraldNode | undefined;
      await waitUntil(
        async () => {
          const name = await leaseHolder(c.sql, `endpoint:${endpoint}`);
          holder = c.nodes.find((n) => n.id === name && n.alive);
          return holder !== undefined && (await circuitsOpen(holder)) === 1;
        },
        10_000,
        'the circuit open',
      );
      return holder!;
    },
  };
}

describe('cluster circuit breaker', () => {
  const t = cluster(3, 'cb', ENV);
  const byId = (id: string | undefined) => t.nodes.find((n) => n.id === id && n.alive);

  it('kill -9 of the sender of an open circuit: the next sender starts closed and soon opens it, the healthy endpoint is not slowed, and everything arrives once the endpoint listens', async () => {
    const healthy = await t.receiver();
    const deadPort = await freePort();
    const h = await t.nodes[0]!.call('POST', '/v1/endpoints', { body: { url: healthy.url, channels: ['k:*'] } });
    const d = await t.nodes[1]!.call('POST', '/v1/endpoints', { body: { url: `http://127.0.0.1:${deadPort}/hooks`, channels: ['k:*'] } });
    assert.equal(d.status, 201, JSON.stringify(d.body));
    const dead = d.body.id as string;
    // Batches of 5 events every 100 ms through each live node in turn, until told to stop; each acknowledged one kept.
    const publishedAt = new Map<string, number>();
    let publishing = true;
    const publisher = (async () => {
      for (let batch = 0; publishing; batch++) {
        const live = t.nodes.filter((n) => n.alive);
        const events = Array.from({ length: 5 }, (_, j) => ({ channel: `k:${j}`, type: 't', data: { batch, j } }));
        const at = Date.now();
        const res = await live[batch % live.length]!.call('POST', '/v1/events', { body: { events } }).catch(() => undefined);
        if (res?.status === 201) for (const e of res.body.events as Array<{ id: string }>) publishedAt.set(e.id, at);
        await sleep(100);
      }
    })();
    const holder = await t.openOn(dead);
    await sleep(1000);
    const healthyHolder = await leaseHolder(t.sql, `endpoint:${h.body.id}`);
    const before = (await deliveriesOf(t.nodes[0]!, dead)).attempts;
    const killedAt = Date.now();
    await holder.kill();
    let next: HeraldNode | undefined;
    await waitUntil(async () => (next = byId(await leaseHolder(t.sql, `endpoint:${dead}`))) !== undefined, 15_000, 'another node taking the endpoint over');
    const takenAt = Date.now();
    await sleep(4000);
    // Its circuit starts closed: `failures`, what was on the wire when it opened (maxConcurrency, 10), then a probe
    // per cooldown at most. Without a breaker, each half-second retry round would try every pending delivery.
    const attempts = (await deliveriesOf(next!, dead)).attempts - before;
    const bound = BREAKER.failures + 10 + Math.ceil((Date.now() - takenAt) / (BREAKER.cooldown * 1000)) + 1;
    assert.ok(attempts <= bound, `${attempts} attempts since the takeover (at most ${bound})`);
    assert.equal(await circuitsOpen(next!), 1, 'open on the node that took it over');
    publishing = false;
    await publisher;
    assert.ok(publishedAt.size >= 100, `${publishedAt.size} events published`);
    await until(() => [...publishedAt.keys()].every((id) => healthy.eventIds().has(id)), 10_000, 'every event at the healthy endpoint');
    if (healthyHolder !== holder.id) {
      // Its sender was not killed: nothing of its waited on the dead endpoint or on the takeover.
      const late = healthy.hooks.filter((hook) => (publishedAt.get(hook.event.id) ?? Infinity) >= killedAt && hook.at - publishedAt.get(hook.event.id)! > 1000);
      assert.deepEqual(late.map((hook) => hook.event.id), [], 'no event at the healthy endpoint over a second after its publish');
    }
    const back = await t.receiver(deadPort);
    await until(() => [...publishedAt.keys()].every((id) => back.eventIds().has(id)), 15_000, 'every event at the endpoint once it listens');
    await waitUntil(async () => (await circuitsOpen(next!)) === 0, 5000, 'the circuit closed');
  });

  it('PostgreSQL unreachable while a circuit is open: the pump comes back, and the probes go on', async () => {
    const live = t.nodes.filter((n) => n.alive);
    const deadPort = await freePort();
    const d = await live[0]!.call('POST', '/v1/endpoints', { body: { url: `http://127.0.0.1:${deadPort}/hooks`, channels: ['pg:*'] } });
    assert.equal(d.status, 201, JSON.stringify(d.body));
    const dead = d.body.id as string;
    const res = await live[1]!.call('POST', '/v1/events', { body: { events: Array.from({ length: 50 }, (_, j) => ({ channel: `pg:${j % 5}`, type: 't', data: { j } })) } });
    assert.equal(res.status, 201);
    await t.openOn(dead);
    t.link.cut();
    await sleep(4000);
    t.link.restore();
    await waitUntil(async () => (await live[0]!.call('GET', `/v1/endpoints/${dead}`)).status === 200, 10_000, 'the store answering again');
    const before = (await deliveriesOf(live[0]!, dead)).attempts;
    const from = Date.now();
    await sleep(5000);
    const attempts = (await deliveriesOf(live[0]!, dead)).attempts - before;
    // At least a probe or two (every 2 s at most); at most what a takeover costs (the lease may have looked lost).
    const bound = BREAKER.failures + 10 + Math.ceil((Date.now() - from) / (BREAKER.cooldown * 1000)) + 1;
    assert.ok(attempts >= 2 && attempts <= bound, `${attempts} attempts in the 5 s after PostgreSQL came back (2 to ${bound})`);
    const back = await t.receiver(deadPort);
    await until(() => back.eventIds().size === 50, 10_000, 'all 50 once the endpoint listens');
  });
});

describe('cluster circuit breaker: edits and retries through a node that does not send', () => {
  const COOLDOWN = 4;
  const t = cluster(2, 'cbe', {
    ...ENV,
    HERALD_DELIVERY_CIRCUIT_BREAKER_FAILURES: '3',
    HERALD_DELIVERY_CIRCUIT_BREAKER_COOLDOWN: String(COOLDOWN),
    HERALD_DELIVERY_CIRCUIT_BREAKER_MAX_COOLDOWN: String(COOLDOWN),
    HERALD_DELIVERY_RETRY_SCHEDULE: '0.2',
  });

  /** An endpoint with `count` events to send and its circuit open; `other` is the node that does not send for it. */
  async function openCircuit(url: string, channel: string, count: number) {
    const d = await t.nodes[0]!.call('POST', '/v1/endpoints', { body: { url, channels: [`${channel}:*`], maxConcurrency: 1 } });
    assert.equal(d.status, 201);
    const id = d.body.id as string;
    const res = await t.nodes[1]!.call('POST', '/v1/events', { body: { events: Array.from({ length: count }, (_, j) => ({ channel: `${channel}:0`, type: 't', data: { j } })) } });
    assert.equal(res.status, 201);
    const holder = await t.openOn(id);
    return { id, other: t.nodes.find((n) => n !== holder)! };
  }

  it('a PATCH of the URL through the other node closes the circuit within about a second', async () => {
    const deadPort = await freePort();
    const { id, other } = await openCircuit(`http://127.0.0.1:${deadPort}/hooks`, 'patched', 30);
    const r = await t.receiver();
    const res = await other.call('PATCH', `/v1/endpoints/${id}`, { body: { url: r.url } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    // The sender reads the endpoints at least once a second: well before the next probe, COOLDOWN seconds away.
    await until(() => r.eventIds().size === 30, 2500, 'all 30 at the new URL, before the next probe');
  });

  it('a retry of a dead letter through the other node goes at the next probe', async () => {
    const r = await t.receiver();
    r.status = 503;
    // One retry each: the first event's second failure makes it a dead letter, and the third failure opens the circuit.
    const { id, other } = await openCircuit(r.url, 'retried', 2);
    // The circuit opens as the answer comes in, before the dead letter's outcome is written.
    let deadLetter: { id: string } | undefined;
    await waitUntil(async () => (deadLetter = (await deliveriesOf(other, id)).list.find((d) => d.status === 'failed')) !== undefined, 5000, 'a dead letter');
    r.status = 200;
    const res = await other.call('POST', `/v1/deliveries/${deadLetter!.id}/retry`);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    // The sender's circuit stays open until its next probe (README): that probe succeeds, and both go then.
    await waitUntil(async () => [...(await deliveriesOf(other, id)).statuses].join() === 'succeeded', COOLDOWN * 1000 + 4000, 'both delivered at the next probe');
  });
});

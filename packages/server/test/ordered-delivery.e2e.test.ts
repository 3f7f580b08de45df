// Issue #14, "Ordered webhook delivery": an endpoint with `ordering: "channel"` receives each channel's events
// strictly in seq order, the next one waiting until the previous one succeeded or became a dead letter, while
// other channels and other endpoints go on. Through the real server, on SQLite and on a PostgreSQL cluster.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { execFile } from 'node:child_process';
import { ADMIN_KEY, BIN, startTestServer, until, type TestServer } from './helpers.js';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';
import { startRedis, type RedisProcess } from './support/redis.js';
import { leaseHolder, spawnNodes, type HeraldNode } from './support/cluster.js';

/** One request as the receiver saw it: when it came in, and when (and how) it was answered. */
interface Hit {
  channel: string;
  seq: number;
  status: number;
  arrived: number;
  answered: number;
}

type Decide = (channel: string, seq: number, attempt: number) => number | Promise<number>;

/**
 * A receiver that answers each request after `delayMs` (so a request sent out of turn would overlap its
 * predecessor), with the status `decide` picks; it records every request and the most open at once per channel.
 */
async function startReceiver(decide: Decide = () => 200, delayMs = 15) {
  const hits: Hit[] = [];
  const attempts = new Map<string, number>();
  const open = new Map<string, number>();
  let overlaps = 0;
  let tick = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let event: { channel: string; seq: number };
      try {
        event = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof event;
      } catch {
        // A request cut short while the receiver closes.
        return void res.writeHead(400).end();
      }
      const key = `${event.channel}:${event.seq}`;
      const attempt = (attempts.get(key) ?? 0) + 1;
      attempts.set(key, attempt);
      // A logical clock as well as the wall clock: order is judged on it, so equal milliseconds cannot hide a race.
      const arrived = ++tick;
      open.set(event.channel, (open.get(event.channel) ?? 0) + 1);
      if (open.get(event.channel)! > 1) overlaps++;
      setTimeout(async () => {
        const status = await decide(event.channel, event.seq, attempt);
        open.set(event.channel, open.get(event.channel)! - 1);
        hits.push({ channel: event.channel, seq: event.seq, status, arrived, answered: ++tick });
        res.writeHead(status).end(status === 200 ? 'ok' : 'not now');
      }, delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    hits,
    /** Requests that came in while another of the same channel was still unanswered. */
    get overlaps() {
      return overlaps;
    },
    of: (channel: string) => hits.filter((h) => h.channel === channel),
    succeeded: (channel: string) => hits.filter((h) => h.channel === channel && h.status === 200).map((h) => h.seq),
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

type Receiver = Awaited<ReturnType<typeof startReceiver>>;

/**
 * The ordering contract for one channel: every request for seq k came in after seq k-1 was answered with a
 * 2xx (or for the last time, when it became a dead letter), and the seqs seen never go down. `repeats`: a
 * request a killed node had on the wire may be sent again by the node that takes over (at least once).
 */
function assertInOrder(receiver: Receiver, channel: string, expected: number[], { deadLetters = [] as number[], repeats = false } = {}): void {
  const hits = receiver.of(channel).sort((a, b) => a.arrived - b.arrived);
  const seen = hits.map((h) => h.seq);
  assert.deepEqual(
    seen.filter((s, i) => i > 0 && s < seen[i - 1]!),
    [],
    `${channel}: seqs never go down (seen ${seen.join(',')})`,
  );
  const succeeded = receiver.succeeded(channel);
  assert.deepEqual(repeats ? [...new Set(succeeded)] : succeeded, expected.filter((s) => !deadLetters.includes(s)), `${channel}: each delivered once, in seq order`);
  for (let i = 1; i < expected.length; i++) {
    const previous = hits.filter((h) => h.seq === expected[i - 1]);
    const released = deadLetters.includes(expected[i - 1]!) ? previous.at(-1)?.answered : previous.find((h) => h.status === 200)?.answered;
    const first = hits.find((h) => h.seq === expected[i]);
    assert.ok(released !== undefined && first !== undefined && first.arrived > released, `${channel}: seq ${expected[i]} only after seq ${expected[i - 1]} was done`);
  }
}

/** The built `herald` CLI, run to the end. */
function runCli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } }, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** The node that holds a lease now, from the cluster's database, over a connection of its own. */
async function leaseHolderAt(url: string, lease: string): Promise<string | undefined> {
  const sql = new pg.Client({ connectionString: url });
  await sql.connect();
  try {
    return await leaseHolder(sql, lease);
  } finally {
    await sql.end();
  }
}

/** Resolves once `condition` holds, or after `maxMs` whatever it is: a receiver holding its answer for a while. */
async function holdUntil(condition: () => boolean, maxMs: number): Promise<void> {
  const deadline = Date.now() + maxMs;
  while (!condition() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('ordered webhook delivery (ordering: "channel")', () => {
  let h: TestServer;
  const receivers: Receiver[] = [];
  const receiver = async (decide?: Decide) => {
    const r = await startReceiver(decide);
    receivers.push(r);
    return r;
  };
  before(async () => {
    // Retries 1 s apart: long enough to see other channels and endpoints move while one event waits.
    h = await startTestServer({ delivery: { allowPrivateNetworks: ['127.0.0.0/8'], retrySchedule: [1, 1], jitter: 0, timeout: 5 } });
  });
  after(async () => {
    await h.stop();
    for (const r of receivers) await r.close();
  });

  const createEndpoint = async (body: Record<string, unknown>) => {
    const res = await h.call('POST', '/v1/endpoints', { body });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body as { id: string; ordering: string };
  };
  const publishMany = async (channel: string, seqs: number[]) => {
    const res = await h.call('POST', '/v1/events', { body: { events: seqs.map((i) => ({ channel, type: 'test', data: { i } })) } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
  };

  it('a receiver that fails the 3rd event twice sees each channel in seq order, while other channels and endpoints keep flowing', async () => {
    let othersDone = () => false;
    // The second failure is answered only once the other channel and the other endpoint are through (or after 3 s):
    // no race between them and the retry schedule, however slow the machine. Were they held back by ord:a seq 3,
    // they would come after its success, and the assertions below would fail.
    const ordered = await receiver(async (channel, seq, attempt) => {
      if (channel !== 'ord:a' || seq !== 3 || attempt > 2) return 200;
      if (attempt === 2) await holdUntil(() => othersDone(), 3000);
      return 500;
    });
    const unordered = await receiver();
    othersDone = () => ordered.succeeded('ord:b').length === 8 && unordered.succeeded('ord:a').length === 8;
    const ep = await createEndpoint({ url: ordered.url, channels: ['ord:*'], ordering: 'channel', maxConcurrency: 8 });
    assert.equal(ep.ordering, 'channel');
    // Another endpoint on the same channels, unordered: it is not held back by the first one's failing event.
    await createEndpoint({ url: unordered.url, channels: ['ord:*'], maxConcurrency: 8 });

    await publishMany('ord:a', range(1, 8));
    await until(() => ordered.of('ord:a').some((x) => x.seq === 3 && x.status === 500), 5000, 'the first failure of ord:a seq 3');
    // While ord:a waits for its retry, ord:b's events all go through to the same endpoint.
    await publishMany('ord:b', range(1, 8));
    await until(() => ordered.succeeded('ord:b').length === 8, 5000, "ord:b's events to the ordered endpoint");
    await until(() => unordered.succeeded('ord:a').length === 8, 5000, "ord:a's events to the other endpoint");
    assert.ok(!ordered.succeeded('ord:a').includes(3), 'ord:b and the other endpoint went on while ord:a seq 3 was still failing');
    assert.deepEqual(ordered.succeeded('ord:a'), [1, 2], 'nothing of ord:a after the failing seq 3 was sent meanwhile');

    await until(() => ordered.succeeded('ord:a').length === 8, 8000, "ord:a's events after two retries of seq 3");
    assertInOrder(ordered, 'ord:a', range(1, 8));
    assertInOrder(ordered, 'ord:b', range(1, 8));
    assert.deepEqual(ordered.of('ord:a').filter((x) => x.seq === 3).map((x) => x.status), [500, 500, 200]);
    assert.equal(ordered.overlaps, 0, 'never two requests of one channel at once');
  });

  it('a dead letter releases its channel: the next event goes once the failed one has used up its retries', async () => {
    const r = await receiver((channel, seq) => (seq === 2 ? 503 : 200));
    const ep = await createEndpoint({ url: r.url, channels: ['dead:*'], ordering: 'channel' });
    await publishMany('dead:x', range(1, 4));
    await until(() => r.succeeded('dead:x').length === 3, 8000, 'the events after the dead letter');
    assertInOrder(r, 'dead:x', range(1, 4), { deadLetters: [2] });
    assert.deepEqual(r.of('dead:x').filter((x) => x.seq === 2).map((x) => x.status), [503, 503, 503], 'the first attempt and both retries');
    const failed = (await h.call('GET', `/v1/endpoints/${ep.id}/deliveries?status=failed`)).body.deliveries;
    assert.deepEqual(failed.map((d: { seq: number }) => d.seq), [2], 'seq 2 is the dead letter');
  });

  it('shows ordering on create, get, list and patch, defaults to unordered, and refuses other values', async () => {
    const r = await receiver();
    const plain = await createEndpoint({ url: r.url, channels: ['opt'] });
    assert.equal(plain.ordering, 'unordered');
    const patched = await h.call('PATCH', `/v1/endpoints/${plain.id}`, { body: { ordering: 'channel' } });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    assert.equal(patched.body.ordering, 'channel');
    assert.equal((await h.call('GET', `/v1/endpoints/${plain.id}`)).body.ordering, 'channel');
    const listed = (await h.call('GET', '/v1/endpoints')).body.endpoints.find((e: { id: string }) => e.id === plain.id);
    assert.equal(listed.ordering, 'channel');
    for (const bad of ['strict', 'global', 1, null]) {
      const refused = await h.call('POST', '/v1/endpoints', { body: { url: r.url, channels: ['opt'], ordering: bad } });
      assert.deepEqual([refused.status, refused.body.error.code], [400, 'bad_request'], `ordering ${JSON.stringify(bad)}`);
      const refusedPatch = await h.call('PATCH', `/v1/endpoints/${plain.id}`, { body: { ordering: bad } });
      assert.equal(refusedPatch.status, 400, `PATCH ordering ${JSON.stringify(bad)}`);
    }
    assert.equal((await h.call('PATCH', `/v1/endpoints/${plain.id}`, { body: { ordering: 'unordered' } })).body.ordering, 'unordered');
    // The CLI passes it through.
    const cli = await runCli(['endpoints', 'create', r.url, '--channels', 'opt', '--ordering', 'channel'], { HERALD_URL: h.url, HERALD_KEY: ADMIN_KEY });
    assert.equal(cli.code, 0, cli.stderr);
    assert.equal(JSON.parse(cli.stdout).ordering, 'channel');
    const doc = (await h.call('GET', '/v1/openapi.json')).body;
    const schema = doc.paths['/v1/endpoints'].post.requestBody.content['application/json'].schema;
    assert.deepEqual(schema.properties.ordering.enum, ['unordered', 'channel']);
    assert.deepEqual(doc.paths['/v1/endpoints/{id}'].patch.requestBody.content['application/json'].schema.properties.ordering.enum, ['unordered', 'channel']);
    assert.deepEqual(doc.components.schemas.Endpoint.properties.ordering.enum, ['unordered', 'channel']);
    assert.ok(doc.components.schemas.Endpoint.required.includes('ordering'));
    assert.equal(doc.paths['/v1/endpoints/{id}'].get.responses['200'].content['application/json'].schema.$ref, '#/components/schemas/Endpoint');
    assert.equal(doc.paths['/v1/endpoints'].get.responses['200'].content['application/json'].schema.properties.endpoints.items.$ref, '#/components/schemas/Endpoint');
  });
});

describe('ordered webhook delivery on a PostgreSQL cluster', () => {
  let db: TestDatabase;
  let redis: RedisProcess;
  let nodes: HeraldNode[] = [];
  let receiver: Receiver | undefined;

  before(async () => {
    db = await createTestDatabase('herald_ordered');
    redis = await startRedis();
    nodes = await spawnNodes(2, {
      store: db.url,
      bus: redis.url,
      prefix: 'o',
      env: { HERALD_DELIVERY_RETRY_SCHEDULE: '1,1', HERALD_DELIVERY_JITTER: '0' },
    });
  });
  after(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await receiver?.close();
    await redis?.stop();
    await db?.drop();
  });

  /** One event at a time, alternating between `on`, so consecutive seqs come from different nodes. */
  const publishAcross = async (on: HeraldNode[], channel: string, seqs: number[]) => {
    for (const i of seqs) {
      const res = await on[i % on.length]!.publish(channel, { i });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.equal(res.body.seq, i);
    }
  };

  it('2 nodes: a channel waits for its failing event while another flows, and order survives kill -9 of the sender', async () => {
    const r = await startReceiver(async (channel, seq, attempt) => {
      if (channel !== 'pg:a' || seq !== 3 || attempt > 2) return 200;
      // As on SQLite: the second failure waits for pg:b to be through (at most 5 s), so nothing races the schedule.
      if (attempt === 2) await holdUntil(() => r.succeeded('pg:b').length === 6, 5000);
      return 500;
    });
    receiver = r;
    const created = await nodes[0]!.call('POST', '/v1/endpoints', { body: { url: r.url, channels: ['pg:*'], ordering: 'channel', maxConcurrency: 8 } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal((await nodes[1]!.call('GET', `/v1/endpoints/${created.body.id}`)).body.ordering, 'channel', 'stored in PostgreSQL, seen by every node');
    const logs = () => nodes.map((n) => `${n.id}: ${n.log().slice(-1500)}`).join('\n');

    await publishAcross(nodes, 'pg:a', range(1, 6));
    await until(() => r.of('pg:a').some((x) => x.seq === 3 && x.status === 500), 10_000, 'the first failure of pg:a seq 3').catch((e: unknown) => {
      throw new Error(`${String(e)}\n${logs()}`);
    });
    await publishAcross(nodes, 'pg:b', range(1, 6));
    await until(() => r.succeeded('pg:b').length === 6, 5000, "pg:b's events while pg:a waits");
    assert.ok(!r.succeeded('pg:a').includes(3), 'pg:b went on while pg:a seq 3 was still failing');
    await until(() => r.succeeded('pg:a').length === 6, 10_000, "pg:a's events after two retries of seq 3");

    // The node that sends this endpoint dies; the other takes its lease over and goes on in order.
    const victimId = await leaseHolderAt(db.url, `endpoint:${created.body.id}`);
    const victim = nodes.find((n) => n.id === victimId);
    assert.ok(victim, `the endpoint's lease is held by a node (${victimId})`);
    const survivor = nodes.find((n) => n !== victim)!;
    await publishAcross([survivor], 'pg:a', range(7, 10));
    await victim.kill();
    await publishAcross([survivor], 'pg:a', range(11, 16));
    await until(() => new Set(r.succeeded('pg:a')).size === 16, 20_000, "pg:a's events after the takeover").catch((e: unknown) => {
      throw new Error(`${String(e)}: ${r.succeeded('pg:a').join(',')}\n${logs()}`);
    });
    assertInOrder(r, 'pg:a', range(1, 16), { repeats: true });
    assertInOrder(r, 'pg:b', range(1, 6));
    assert.deepEqual(r.of('pg:a').filter((x) => x.seq === 3).map((x) => x.status), [500, 500, 200]);
    assert.equal(r.overlaps, 0, 'never two requests of one channel at once, on either node');
  });
});

describe('ordering survives herald migrate (SQLite to PostgreSQL)', () => {
  it('the copied endpoint keeps ordering: "channel" and is served as such', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'herald-ordered-migrate-'));
    const db = await createTestDatabase('herald_ordered_migrate');
    try {
      const h = await startTestServer({ delivery: { allowPrivateNetworks: ['127.0.0.0/8'] } }, dataDir);
      let ids: { ordered: string; plain: string };
      try {
        const create = async (body: Record<string, unknown>) => (await h.call('POST', '/v1/endpoints', { body: { url: 'http://127.0.0.1:9/hook', channels: ['m'], ...body } })).body.id as string;
        ids = { ordered: await create({ ordering: 'channel' }), plain: await create({}) };
      } finally {
        await h.stop();
      }
      const run = await runCli(['migrate', '--from', dataDir, '--to', db.url], {});
      assert.equal(run.code, 0, run.stderr);
      const [node] = await spawnNodes(1, { store: db.url, prefix: 'm' });
      try {
        assert.equal((await node!.call('GET', `/v1/endpoints/${ids.ordered}`)).body.ordering, 'channel');
        assert.equal((await node!.call('GET', `/v1/endpoints/${ids.plain}`)).body.ordering, 'unordered');
      } finally {
        await node!.stop();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
      await db.drop();
    }
  });
});

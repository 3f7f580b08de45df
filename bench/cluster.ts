// npm run bench:cluster — Herald on PostgreSQL + Redis beside one single-node SQLite Herald, in the same run:
// 1. durable publishes/s, single and batched, to one node on PostgreSQL and one on SQLite;
// 2. 3 nodes on one PostgreSQL database and one redis-server, N WebSocket subscribers spread over them on one
//    channel, RATE events/s published round-robin to the nodes (after 2 s of the same as warm-up): publish→receive
//    p50/p99, the nodes' CPU per delivery, and a check that every subscriber got every event once, in order; then
//    the same on one SQLite node;
// 3. deliveries/s to 10 endpoints (one local receiver) from a durable backlog, 3 nodes sharing the endpoint set
//    beside one SQLite node.
// Every process is started here and stopped by its own PID; the database is a fresh one, dropped at the end.
// Shared machines are noisy: read the ratios.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createTestDatabase } from '../packages/server/test/support/postgres.js';
import { startRedis } from '../packages/server/test/support/redis.js';
import { BENCH_ADMIN_KEY, cpuMs, fmt, postLoad, spawnHerald, type LoadResult, type Spawned } from './harness.js';
import { LoadGroup } from './fanout-common.js';
import { percentiles } from './fanout-load.js';

const DURATION = Number(process.env.BENCH_DURATION ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 64);
const N = Number(process.env.BENCH_SUBSCRIBERS ?? 3000);
// The target is 1,000 events/s to 3,000 subscribers on one channel: 3M deliveries/s, far beyond a
// 2-core machine that also runs the clients, PostgreSQL and Redis (tried: the nodes and PostgreSQL stall).
// The default keeps the 3,000 subscribers and lowers the rate; BENCH_RATE=1000 runs the target on bigger hardware.
const RATE = Number(process.env.BENCH_RATE ?? 10);
const DELIVER_EVENTS = Number(process.env.BENCH_DELIVER_EVENTS ?? 2000);
// BENCH_PARTS=fanout (or publish, deliver, comma-separated) runs only those parts.
const PARTS = new Set((process.env.BENCH_PARTS ?? 'publish,fanout,deliver').split(','));
const ENDPOINTS = 10;
const NODES = 3;
const BATCH = 100;
const M = RATE * DURATION;
const WARMUP = RATE * 2;
const CLIENT_PROCESSES = 3;
const DRAIN_MS = 20_000;
const REQUEST_TIMEOUT_MS = 10_000;
const TOKEN_SECRET = 'bench-token-secret-0123456789abcdef0123456789';
const PRIVATE = { HERALD_DELIVERY_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8', HERALD_TOKEN_SECRET: TOKEN_SECRET };
const admin = { authorization: `Bearer ${BENCH_ADMIN_KEY}`, 'content-type': 'application/json' };
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- 1. durable publishes/s ----

const single = JSON.stringify({ type: 'order.created', data: { orderId: 12345, total: 99.5, currency: 'EUR', items: ['a', 'b'] } });
const batch = JSON.stringify({
  events: Array.from({ length: BATCH }, (_, i) => ({ channel: `bench-${i % 4}`, type: 'tick', data: { i, v: Math.random() } })),
});

async function publishRates(server: Spawned): Promise<{ single: LoadResult; batch: LoadResult }> {
  return {
    single: await postLoad(`${server.url}/v1/channels/bench/events`, single, CONNECTIONS, DURATION),
    batch: await postLoad(`${server.url}/v1/events`, batch, CONNECTIONS, DURATION),
  };
}

// ---- 2. WebSocket fan-out over the nodes ----

interface FanoutResult {
  p50: number;
  p99: number;
  cpuUsPerDelivery: number;
  received: number;
  complete: number;
  disorder: number;
  publishErrors: number;
  sentRate: number;
}

async function fanout(servers: Spawned[]): Promise<FanoutResult> {
  // The subscribers live in CLIENT_PROCESSES load generators (bench/fanout-load.ts, which reads each frame's stamp
  // and seq from its bytes), the same number for one node and for the cluster: one process parsing 3,000 frames
  // per event would add its own queue to every latency. Each node gets an equal share of the sockets.
  const share = (i: number) => Math.floor(N / servers.length) + (i < N % servers.length ? 1 : 0);
  const groups = servers.map(
    (server, i) =>
      new LoadGroup(
        { kind: 'herald', transport: 'ws', base: server.url, token: BENCH_ADMIN_KEY, sockets: Array.from({ length: share(i) }, () => ['fanout']) },
        Math.max(1, Math.round(CLIENT_PROCESSES / servers.length)),
      ),
  );
  const received = () => groups.reduce((sum, g) => sum + g.received, 0);
  await Promise.all(groups.map((g) => g.connect()));
  await sleep(500);

  const pids = servers.map((s) => s.child.pid!);
  const cpu = () => pids.reduce((sum, pid) => sum + cpuMs(pid), 0);
  let sent = 0;
  let publishErrors = 0;
  const publish = async (i: number) => {
    const base = servers[i % servers.length]!.url;
    const body = JSON.stringify({ data: { t: now(), i } });
    const res = await fetch(`${base}/v1/channels/fanout/events`, { method: 'POST', headers: admin, body, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) }).catch(
      () => undefined,
    );
    if (res?.status !== 201) publishErrors += 1;
    await res?.body?.cancel();
  };
  // RATE events/s, round-robin over the nodes, caught up every 5 ms so timer drift does not lower the rate.
  const publishAtRate = async (count: number) => {
    const started = performance.now();
    const first = sent;
    const inflight: Array<Promise<void>> = [];
    while (sent < first + count) {
      const due = first + Math.min(count, Math.floor(((performance.now() - started) / 1000) * RATE));
      while (sent < due) inflight.push(publish(sent++));
      await sleep(5);
    }
    await Promise.all(inflight);
    return count / ((performance.now() - started) / 1000);
  };
  const drain = async (deliveries: number) => {
    const deadline = Date.now() + DRAIN_MS;
    while (received() < deliveries && Date.now() < deadline) await sleep(20);
  };
  // Warm-up, not measured: every node serves the same path a while first, so none is measured while its JIT
  // compiles the fan-out (the single node has just served the publish loads; the cluster's nodes are new).
  await publishAtRate(WARMUP);
  await drain(N * WARMUP);
  await Promise.all(groups.map((g) => g.resetLatency()));
  const cpuBefore = cpu();
  const sentRate = await publishAtRate(M);
  await drain(N * (WARMUP + M));
  const cpuUsPerDelivery = ((cpu() - cpuBefore) * 1000) / Math.max(1, received() - N * WARMUP);
  const reports = await Promise.all(groups.map((g) => g.report({ fanout: WARMUP + M })));
  await Promise.all(groups.map((g) => g.close()));
  const [p50, p99] = percentiles(reports.flatMap((r) => r.histograms), [0.5, 0.99]);
  const short = reports.reduce((sum, r) => sum + r.short + r.over, 0);
  return {
    p50: p50!,
    p99: p99!,
    cpuUsPerDelivery,
    received: reports.reduce((sum, r) => sum + r.received, 0) - N * WARMUP,
    complete: N - short,
    disorder: reports.reduce((sum, r) => sum + r.disorder, 0),
    publishErrors,
    sentRate,
  };
}

// ---- 3. deliveries/s to a shared endpoint set ----

/** A receiver answering 200 to every POST, counting distinct webhook-ids per endpoint path. */
class Receiver {
  readonly seen = new Map<string, Set<string>>();
  posts = 0;
  readonly server: Server = createServer((req, res) => {
    req.resume().on('end', () => {
      this.posts += 1;
      const ids = this.seen.get(req.url!) ?? new Set<string>();
      this.seen.set(req.url!, ids.add(String(req.headers['webhook-id'])));
      res.writeHead(200).end();
    });
  });
  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  get distinct(): number {
    let n = 0;
    for (const ids of this.seen.values()) n += ids.size;
    return n;
  }
  reset(): void {
    this.seen.clear();
    this.posts = 0;
  }
}

async function call(url: string, method: string, body: unknown, status: number): Promise<unknown> {
  const res = await fetch(url, { method, headers: admin, body: JSON.stringify(body), signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  if (res.status !== status) throw new Error(`${method} ${url}: ${res.status} ${await res.text()}`);
  return res.json();
}

async function deliveries(servers: Spawned[], receiver: Receiver): Promise<{ rate: number; distinct: number; posts: number }> {
  const head = servers[0]!.url;
  receiver.reset();
  // Queue every delivery while the endpoints are disabled, then enable them and time the drain.
  const ids: string[] = [];
  for (let e = 0; e < ENDPOINTS; e++) {
    const endpoint = { url: `${receiver.url}/e${e}`, channels: ['deliver'], maxConcurrency: 16, enabled: false };
    ids.push(((await call(`${head}/v1/endpoints`, 'POST', endpoint, 201)) as { id: string }).id);
  }
  for (let i = 0; i < DELIVER_EVENTS; i += BATCH) {
    const events = Array.from({ length: Math.min(BATCH, DELIVER_EVENTS - i) }, (_, k) => ({ channel: 'deliver', type: 'tick', data: { i: i + k } }));
    await call(`${servers[(i / BATCH) % servers.length]!.url}/v1/events`, 'POST', { events }, 201);
  }
  await sleep(1000);
  const expected = DELIVER_EVENTS * ENDPOINTS;
  const t0 = performance.now();
  await Promise.all(ids.map((id, e) => call(`${servers[e % servers.length]!.url}/v1/endpoints/${id}`, 'PATCH', { enabled: true }, 200)));
  const deadline = Date.now() + 30_000;
  while (receiver.distinct < expected && Date.now() < deadline) await sleep(20);
  const seconds = (performance.now() - t0) / 1000;
  return { rate: receiver.distinct / seconds, distinct: receiver.distinct, posts: receiver.posts };
}

// ---- the run ----

async function main(): Promise<void> {
  console.log(
    `bench:cluster  ${DURATION}s per load, ${CONNECTIONS} connections; fan-out ${N} ws subscribers × ${RATE} events/s for ${DURATION}s over ${NODES} nodes; ` +
      `${DELIVER_EVENTS} events × ${ENDPOINTS} endpoints; node ${process.version}`,
  );
  const db = await createTestDatabase('herald_bench');
  const redis = await startRedis();
  const receiver = new Receiver();
  await new Promise<void>((r) => receiver.server.listen(0, '127.0.0.1', r));
  const started: Spawned[] = [];
  const cleanup = async () => {
    for (const s of started) await s.stop();
    receiver.server.close();
    await redis.stop();
    await db.drop();
  };
  // Interrupted runs still stop what they started and drop the database.
  const interrupted = () => void cleanup().finally(() => process.exit(130));
  process.once('SIGINT', interrupted).once('SIGTERM', interrupted);
  const spawn = async (env: Record<string, string>) => {
    const s = await spawnHerald({ ...PRIVATE, ...env });
    started.push(s);
    return s;
  };
  try {
    const sqliteNode = await spawn({});
    if (PARTS.has('publish')) {
      const sqlitePub = await publishRates(sqliteNode);
      const pgNode = await spawn({ HERALD_STORE_URL: db.url, HERALD_NODE_ID: 'solo' });
      const pgPub = await publishRates(pgNode);
      await pgNode.stop();
      const pub = (name: string, r: LoadResult, events = 1) =>
        `  ${name.padEnd(36)} ${fmt(r.rps * events).padStart(9)} events/s  (${fmt(r.rps)} req/s, p99 ${fmt(r.p99)} ms, errors ${r.errors})`;
      console.log('1. durable publishes/s');
      console.log(pub('SQLite, single node, single event', sqlitePub.single));
      console.log(pub('PostgreSQL, single event', pgPub.single));
      console.log(`     ratio single: ${fmt((pgPub.single.rps / sqlitePub.single.rps) * 100, 1)}% of SQLite`);
      console.log(pub(`SQLite, single node, batch of ${BATCH}`, sqlitePub.batch, BATCH));
      console.log(pub(`PostgreSQL, batch of ${BATCH}`, pgPub.batch, BATCH));
      console.log(`     ratio batched: ${fmt((pgPub.batch.rps / sqlitePub.batch.rps) * 100, 1)}% of SQLite; PostgreSQL aim ≥ 50,000 events/s`);
    }

    const cluster: Spawned[] = [];
    for (let i = 0; i < NODES; i++) cluster.push(await spawn({ HERALD_STORE_URL: db.url, HERALD_BUS_URL: redis.url, HERALD_NODE_ID: `n${i}` }));
    if (PARTS.has('fanout')) {
      const sqliteFan = await fanout([sqliteNode]);
      const clusterFan = await fanout(cluster);
      const fan = (name: string, r: FanoutResult) =>
        `  ${name.padEnd(36)} p50 ${fmt(r.p50, 1)} ms  p99 ${fmt(r.p99, 1)} ms  cpu ${fmt(r.cpuUsPerDelivery, 2)} µs/delivery  ` +
        `published ${fmt(r.sentRate)}/s (errors ${r.publishErrors})\n` +
        `  ${''.padEnd(36)} received ${r.received}/${N * M}; ${r.complete}/${N} subscribers got all ${WARMUP + M} events (${WARMUP} of warm-up) once; ` +
        `${r.disorder} out of order → ${r.received === N * M && r.complete === N && r.disorder === 0 ? 'nothing lost, all in order' : 'LOSS OR DISORDER'}`;
      console.log(`2. WebSocket fan-out, ${N} subscribers on one channel, ${RATE} events/s`);
      console.log(fan('SQLite, single node', sqliteFan));
      console.log(fan(`${NODES} nodes, PostgreSQL + Redis`, clusterFan));
      console.log(
        `     ratio: cluster cpu ${fmt(clusterFan.cpuUsPerDelivery / sqliteFan.cpuUsPerDelivery, 2)}× the single node (aim ≤ 1.3×); ` +
          `cluster p99 ${fmt(clusterFan.p99, 1)} ms (aim ≤ 50 ms)`,
      );
    }

    if (PARTS.has('deliver')) {
      const sqliteDel = await deliveries([sqliteNode], receiver);
      const clusterDel = await deliveries(cluster, receiver);
      const del = (name: string, r: { rate: number; distinct: number; posts: number }) =>
        `  ${name.padEnd(36)} ${fmt(r.rate).padStart(9)} deliveries/s  (${r.distinct}/${DELIVER_EVENTS * ENDPOINTS} delivered, ${r.posts} POSTs)`;
      console.log(`3. deliveries/s, ${ENDPOINTS} endpoints on one local receiver, durable backlog of ${DELIVER_EVENTS} events`);
      console.log(del('SQLite, single node', sqliteDel));
      console.log(del(`${NODES} nodes sharing the endpoints`, clusterDel));
      console.log(`     ratio: ${fmt((clusterDel.rate / sqliteDel.rate) * 100, 1)}% of the single node`);
    }
  } finally {
    process.off('SIGINT', interrupted).off('SIGTERM', interrupted);
    await cleanup();
  }
}

await main();

// npm run bench:deliver — signed deliveries/s to a local sink that verifies every signature (a durable
// backlog drained once the endpoint is enabled), publish→delivered latency in a steady stream, and the
// ratio to a bare undici loop POSTing the same signed bodies to the same sink in the same run.
import { Pool } from 'undici';
import { generateSecret, sign } from '@herald/webhooks';
import { BENCH_ADMIN_KEY, fmt, spawnBaseline, spawnHerald } from './harness.js';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 20_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 64);
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const LATENCY_RATE = Number(process.env.BENCH_LATENCY_RATE ?? 1000);

interface SinkStats {
  count: number;
  failures: number;
  p50: number;
  p99: number;
}

async function sinkStats(url: string): Promise<SinkStats> {
  return (await (await fetch(url)).json()) as SinkStats;
}

async function waitFor(url: string, count: number, timeoutMs: number): Promise<SinkStats> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const stats = await sinkStats(url);
    if (stats.count >= count || Date.now() > deadline) return stats;
    await sleep(20);
  }
}

function body(i: number): string {
  return JSON.stringify({ id: `evt_bare_${i}`, channel: 'bench', seq: i + 1, type: 'tick', data: { i, t: now() }, time: new Date().toISOString() });
}

async function main(): Promise<void> {
  console.log(`bench:deliver  ${EVENTS} events, concurrency ${CONCURRENCY}, node ${process.version}`);
  const sink = await spawnBaseline('verifying-sink.ts');
  const secret = generateSecret();
  await fetch(sink.url, { method: 'PUT', body: secret });

  // The floor: undici POSTing signed bodies as fast as the sink takes them.
  const pool = new Pool(sink.url, { connections: CONCURRENCY });
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < EVENTS) {
        const i = next++;
        const payload = body(i);
        const headers = { 'content-type': 'application/json', ...sign('standard', { secret, id: `evt_bare_${i}`, body: payload }) };
        const res = await pool.request({ path: '/', method: 'POST', headers, body: payload });
        await res.body.dump();
      }
    }),
  );
  const bareSeconds = (performance.now() - started) / 1000;
  const bare = await sinkStats(sink.url);
  await pool.close();

  const herald = await spawnHerald({ HERALD_DELIVERY_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8' });
  const admin = { authorization: `Bearer ${BENCH_ADMIN_KEY}`, 'content-type': 'application/json' };
  const publish = async (events: unknown[]) => {
    const res = await fetch(`${herald.url}/v1/events`, { method: 'POST', headers: admin, body: JSON.stringify({ events }) });
    if (res.status !== 201) throw new Error(`publish failed: ${res.status}`);
  };
  // Throughput: queue every delivery while the endpoint is disabled, then enable it and time the drain.
  const created = await fetch(`${herald.url}/v1/endpoints`, {
    method: 'POST',
    headers: admin,
    body: JSON.stringify({ url: sink.url, channels: ['bench'], secret, maxConcurrency: CONCURRENCY, enabled: false }),
  });
  if (created.status !== 201) throw new Error(`cannot create the endpoint: ${await created.text()}`);
  const endpointId = ((await created.json()) as { id: string }).id;
  for (let i = 0; i < EVENTS; i += 1000) {
    await Promise.all(
      Array.from({ length: 10 }, (_, b) =>
        publish(Array.from({ length: 100 }, (_, k) => ({ channel: 'bench', type: 'tick', data: { i: i + b * 100 + k } }))),
      ),
    );
  }
  await sleep(1000);
  await fetch(sink.url, { method: 'PUT', body: secret });
  const t0 = performance.now();
  await fetch(`${herald.url}/v1/endpoints/${endpointId}`, { method: 'PATCH', headers: admin, body: JSON.stringify({ enabled: true }) });
  const ours = await waitFor(sink.url, EVENTS, 120_000);
  const heraldSeconds = (performance.now() - t0) / 1000;

  // Latency: a steady stream at LATENCY_RATE events/s, each stamped when published.
  await fetch(sink.url, { method: 'PUT', body: secret });
  const streamed = LATENCY_RATE * 3;
  for (let i = 0; i < streamed; i += 10) {
    void publish(Array.from({ length: 10 }, (_, k) => ({ channel: 'bench', type: 'tick', data: { i: i + k, t: now() } })));
    await sleep(10_000 / LATENCY_RATE);
  }
  const latency = await waitFor(sink.url, streamed, 60_000);
  await herald.stop();
  await sink.stop();

  const bareRate = bare.count / bareSeconds;
  const ourRate = ours.count / heraldSeconds;
  console.log(`bare undici loop, signed POSTs        ${fmt(bareRate).padStart(8)} deliveries/s  (${bare.count} verified, ${bare.failures} refused)`);
  console.log(
    `herald durable backlog → sink         ${fmt(ourRate).padStart(8)} deliveries/s  (${ours.count} verified, ${ours.failures} refused)`,
  );
  console.log(
    `herald at ${LATENCY_RATE} events/s: publish→delivered p50 ${fmt(latency.p50, 1)} ms, p99 ${fmt(latency.p99, 1)} ms  (${latency.count}/${streamed} verified)`,
  );
  console.log(`  ratio: ${fmt((ourRate / bareRate) * 100, 1)}% of the bare loop (aim ≥ 50%)`);
}

await main();

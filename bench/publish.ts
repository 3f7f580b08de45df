// npm run bench:publish — durable publishes/s, single and batched, beside a bare node:http server
// answering the same POSTs in the same run. Shared machines are noisy: read the ratios.
import { fmt, postLoad, spawnBaseline, spawnHerald } from './harness.js';

const DURATION = Number(process.env.BENCH_DURATION ?? 8);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 64);
const BATCH = 100;

const single = JSON.stringify({ type: 'order.created', data: { orderId: 12345, total: 99.5, currency: 'EUR', items: ['a', 'b'] } });
const batch = JSON.stringify({
  events: Array.from({ length: BATCH }, (_, i) => ({ channel: `bench-${i % 4}`, type: 'tick', data: { i, v: Math.random() } })),
});

const load = (url: string, path: string, body: string) => postLoad(url + path, body, CONNECTIONS, DURATION);

async function main(): Promise<void> {
  console.log(`bench:publish  ${DURATION}s per run, ${CONNECTIONS} connections, node ${process.version}`);
  const bare = await spawnBaseline('bare-http-server.ts');
  const bareSingle = await load(bare.url, '/v1/channels/bench/events', single);
  const bareBatch = await load(bare.url, '/v1/events', batch);
  await bare.stop();

  const herald = await spawnHerald();
  const heraldSingle = await load(herald.url, '/v1/channels/bench/events', single);
  const heraldBatch = await load(herald.url, '/v1/events', batch);
  await herald.stop();

  const line = (name: string, r: { rps: number; p99: number; errors: number }, unit = 'req/s') =>
    `${name.padEnd(34)} ${fmt(r.rps).padStart(9)} ${unit}  p99 ${fmt(r.p99)} ms  errors ${r.errors}`;
  console.log(line('bare node:http, single POST', bareSingle));
  console.log(line('herald durable single publish', heraldSingle));
  console.log(`  ratio single: ${fmt((heraldSingle.rps / bareSingle.rps) * 100, 1)}% of bare (aim ≥ 30%)`);
  console.log(line(`bare node:http, batch of ${BATCH}`, bareBatch));
  console.log(line(`herald durable batch of ${BATCH}`, heraldBatch));
  console.log(
    `  batched events/s: herald ${fmt(heraldBatch.rps * BATCH)} (aim ≥ 200,000), bare ${fmt(bareBatch.rps * BATCH)}; ratio ${fmt((heraldBatch.rps / bareBatch.rps) * 100, 1)}%`,
  );
}

await main();

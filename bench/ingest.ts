// npm run bench:ingest — verified, deduped and durable ingests/s of a 1 KiB Stripe-signed webhook,
// beside a bare node:http server answering the same POSTs in the same run.
import autocannon from 'autocannon';
import { sign } from '@herald/webhooks';
import { BENCH_ADMIN_KEY, fmt, spawnBaseline, spawnHerald } from './harness.js';

const DURATION = Number(process.env.BENCH_DURATION ?? 8);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 64);
const SECRET = 'whsec_bench_' + 'x'.repeat(24);

let n = 0;
/** A fresh Stripe event of about 1 KiB each time, so every request is a new event, not a duplicate. */
function nextRequest(): { body: string; headers: Record<string, string> } {
  n += 1;
  const base = { id: `evt_bench_${process.pid}_${n}`, object: 'event', type: 'payment_intent.succeeded', created: 1_700_000_000, data: { object: { id: `pi_${n}`, amount: 1999, currency: 'eur' } } };
  const pad = 1024 - JSON.stringify({ ...base, pad: '' }).length;
  const body = JSON.stringify({ ...base, pad: 'p'.repeat(Math.max(0, pad)) });
  return { body, headers: { 'content-type': 'application/json', ...sign('stripe', { secret: SECRET, body }) } };
}

async function load(url: string): Promise<{ rps: number; p99: number; errors: number }> {
  const result = await autocannon({
    url,
    method: 'POST',
    connections: CONNECTIONS,
    duration: DURATION,
    requests: [
      {
        setupRequest: (req) => {
          const { body, headers } = nextRequest();
          return { ...req, body, headers: { ...req.headers, ...headers } };
        },
      },
    ],
  });
  return { rps: result.requests.average, p99: result.latency.p99, errors: result.non2xx + result.errors + result.timeouts };
}

async function main(): Promise<void> {
  console.log(`bench:ingest  ${DURATION}s per run, ${CONNECTIONS} connections, 1 KiB Stripe-signed bodies, node ${process.version}`);
  const bare = await spawnBaseline('bare-http-server.ts');
  const floor = await load(`${bare.url}/v1/ingest/stripe`);
  await bare.stop();

  const herald = await spawnHerald();
  const created = await fetch(`${herald.url}/v1/sources`, {
    method: 'POST',
    headers: { authorization: `Bearer ${BENCH_ADMIN_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'stripe', provider: 'stripe', secrets: [SECRET] }),
  });
  if (created.status !== 201) throw new Error(`cannot create the source: ${await created.text()}`);
  const ours = await load(`${herald.url}/v1/ingest/stripe`);
  await herald.stop();

  const line = (name: string, r: { rps: number; p99: number; errors: number }) =>
    `${name.padEnd(40)} ${fmt(r.rps).padStart(9)} req/s  p99 ${fmt(r.p99)} ms  errors ${r.errors}`;
  console.log(line('bare node:http, same POST', floor));
  console.log(line('herald verified + deduped + durable', ours));
  console.log(`  ratio: ${fmt((ours.rps / floor.rps) * 100, 1)}% of bare (aim ≥ 30%)`);
}

await main();

// Picks the Redis client for the cross-node bus by measurement: publish→receive throughput and latency of
// ioredis and node-redis (`redis`) against a throwaway local redis-server, with the bus's own message shape.
//
//   node --conditions=herald-source --import tsx bench/redis-clients.ts [--messages 50000] [--rounds 3]
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { startRedis } from '../packages/server/test/support/redis.js';

const { values } = parseArgs({
  options: { messages: { type: 'string', default: '50000' }, rounds: { type: 'string', default: '3' }, window: { type: 'string', default: '1000' } },
});
const MESSAGES = Number(values.messages);
const ROUNDS = Number(values.rounds);
const WINDOW = Number(values.window);
const LATENCY_SAMPLES = 5000;
const CHANNEL = 'herald:{bench}';

/** What the bus publishes: one append batch of one channel, as JSON. */
const payload = JSON.stringify({
  n: 'node-1',
  e: [{ id: 'evt_01JF8Y6Q2M3N4P5Q6R7S8T9V0W', channel: 'bench', seq: 1, type: 'order.created', data: { order: 'ord_123', total: 4200, currency: 'eur', items: [{ sku: 'A-1', qty: 2 }] }, time: '2026-11-29T10:00:00.000Z' }],
});

interface Pair {
  name: string;
  publish(message: string): Promise<unknown>;
  /** Calls `onMessage` for each message on CHANNEL. */
  subscribe(onMessage: () => void): Promise<void>;
  close(): Promise<void>;
}

async function ioredisPair(url: string, enableAutoPipelining: boolean): Promise<Pair> {
  const pub = new Redis(url, { enableAutoPipelining });
  const sub = new Redis(url);
  return {
    name: enableAutoPipelining ? 'ioredis (autopipelining)' : 'ioredis',
    publish: (m) => pub.publish(CHANNEL, m),
    async subscribe(onMessage) {
      sub.on('message', onMessage);
      await sub.subscribe(CHANNEL);
    },
    async close() {
      pub.disconnect();
      sub.disconnect();
    },
  };
}

async function nodeRedisPair(url: string): Promise<Pair> {
  const pub = createClient({ url });
  const sub = createClient({ url });
  await Promise.all([pub.connect(), sub.connect()]);
  return {
    name: 'node-redis',
    publish: (m) => pub.publish(CHANNEL, m),
    subscribe: (onMessage) => sub.subscribe(CHANNEL, onMessage),
    async close() {
      pub.destroy();
      sub.destroy();
    },
  };
}

interface Result {
  throughput: number;
  p50: number;
  p99: number;
}

async function measure(pair: Pair): Promise<Result> {
  let received = 0;
  let wake: (() => void) | undefined;
  await pair.subscribe(() => {
    received += 1;
    wake?.();
  });
  const until = (n: number) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${pair.name}: ${received}/${n} received`)), 60_000);
      wake = () => {
        if (received < n) return;
        clearTimeout(timer);
        wake = undefined;
        resolve();
      };
      wake();
    });

  // Throughput: up to WINDOW publishes in flight, timed until the subscriber has every message.
  const start = performance.now();
  let sent = 0;
  const publisher = async () => {
    while (sent < MESSAGES) {
      sent += 1;
      await pair.publish(payload);
    }
  };
  await Promise.all(Array.from({ length: WINDOW }, publisher));
  await until(MESSAGES);
  const throughput = MESSAGES / ((performance.now() - start) / 1000);

  // Latency: one message at a time, publish call to the subscriber's callback.
  const samples: number[] = [];
  for (let i = 0; i < LATENCY_SAMPLES; i += 1) {
    const t0 = performance.now();
    const done = until(received + 1);
    await pair.publish(payload);
    await done;
    samples.push(performance.now() - t0);
  }
  samples.sort((a, b) => a - b);
  await pair.close();
  return { throughput, p50: samples[Math.floor(samples.length * 0.5)]!, p99: samples[Math.floor(samples.length * 0.99)]! };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const redis = await startRedis();
try {
  const makers: Array<() => Promise<Pair>> = [() => ioredisPair(redis.url, false), () => ioredisPair(redis.url, true), () => nodeRedisPair(redis.url)];
  const results = new Map<string, Result[]>();
  for (let round = 0; round < ROUNDS; round += 1) {
    // Interleaved rounds, so a warm-up or a noisy neighbour does not favour one client.
    for (const make of makers) {
      const pair = await make();
      const name = pair.name;
      const result = await measure(pair);
      results.set(name, [...(results.get(name) ?? []), result]);
    }
  }
  console.log(`redis-server ${redis.port}, ${MESSAGES} messages of ${payload.length} bytes, window ${WINDOW}, ${LATENCY_SAMPLES} latency samples, median of ${ROUNDS} rounds`);
  console.log('| client | publish→receive msg/s | latency p50 ms | latency p99 ms |');
  console.log('|---|---:|---:|---:|');
  for (const [name, rs] of results) {
    const t = median(rs.map((r) => r.throughput));
    console.log(`| ${name} | ${Math.round(t).toLocaleString('en')} | ${median(rs.map((r) => r.p50)).toFixed(3)} | ${median(rs.map((r) => r.p99)).toFixed(3)} |`);
  }
} finally {
  await redis.stop();
}

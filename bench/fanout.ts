// npm run bench:fanout — N subscribers on one channel (SSE, then WebSocket), M events published over HTTP.
// Reports server CPU per delivery, publish→receive latency and server memory per idle connection, each beside
// a bare node:http + ws broadcast server measured in the same run (the floor for Node).
import { request, Agent } from 'node:http';
import { WebSocket } from 'ws';
import { BENCH_ADMIN_KEY, cpuMs, fmt, spawnBaseline, spawnHerald, type Spawned } from './harness.js';

const N = Number(process.env.BENCH_SUBSCRIBERS ?? 2000);
const M = Number(process.env.BENCH_EVENTS ?? 200);
const INTERVAL_MS = Number(process.env.BENCH_INTERVAL_MS ?? 10);
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Kind = 'herald' | 'bare';
type Transport = 'sse' | 'ws';

interface Subscriber {
  close(): void;
}

/** Finds the publish stamp in a frame from either server. */
function stampOf(text: string): number | undefined {
  const parsed = JSON.parse(text) as { t?: number; data?: { t?: number } };
  return parsed.data?.t ?? parsed.t;
}

const agent = new Agent({ keepAlive: true, maxSockets: 20_000 });

function subscribeSse(url: string, onStamp: (t: number) => void): Promise<Subscriber> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent }, (res) => {
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block.split('\n').find((l) => l.startsWith('data: '));
          if (data) {
            const t = stampOf(data.slice(6));
            if (t !== undefined) onStamp(t);
          }
        }
      });
      resolve({ close: () => req.destroy() });
    });
    req.on('error', reject);
    req.end();
  });
}

function subscribeWs(url: string, kind: Kind, onStamp: (t: number) => void): Promise<Subscriber> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    ws.on('message', (data) => {
      const text = data.toString();
      if (kind === 'herald' && text.startsWith('{"op":"subscribed"')) return resolve({ close: () => ws.terminate() });
      const t = stampOf(text);
      if (t !== undefined) onStamp(t);
    });
    ws.on('open', () => {
      if (kind === 'herald') ws.send(JSON.stringify({ op: 'subscribe', channel: 'fanout' }));
      else resolve({ close: () => ws.terminate() });
    });
    ws.on('error', reject);
  });
}

async function publish(base: string, kind: Kind, i: number): Promise<void> {
  const path = kind === 'herald' ? '/v1/channels/fanout/events' : '/publish';
  const body = JSON.stringify(kind === 'herald' ? { data: { t: now(), i } } : { t: now(), i });
  await fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${BENCH_ADMIN_KEY}` }, body });
}

interface Result {
  cpuUsPerDelivery: number;
  p50: number;
  p99: number;
  /** JS heap and RSS growth per idle connection, each after a full GC. */
  heapPerIdle: number;
  rssPerIdle: number;
  received: number;
}

async function measure(server: Spawned, kind: Kind, transport: Transport): Promise<Result> {
  const pid = server.child.pid!;
  const latencies: number[] = [];
  const onStamp = (t: number) => latencies.push(now() - t);
  const base = server.url;
  const url =
    transport === 'sse'
      ? kind === 'herald' ? `${base}/v1/channels/fanout/stream?token=${BENCH_ADMIN_KEY}` : `${base}/sse`
      : kind === 'herald' ? `${base.replace('http', 'ws')}/v1/ws?token=${BENCH_ADMIN_KEY}` : base.replace('http', 'ws');

  const before = await server.memory();
  const subs: Subscriber[] = [];
  for (let i = 0; i < N; i += 100) {
    const batch = Array.from({ length: Math.min(100, N - i) }, () => (transport === 'sse' ? subscribeSse(url, onStamp) : subscribeWs(url, kind, onStamp)));
    subs.push(...(await Promise.all(batch)));
  }
  await sleep(500);
  const idle = await server.memory();
  const heapPerIdle = (idle.heapUsed - before.heapUsed) / N;
  const rssPerIdle = (idle.rss - before.rss) / N;

  const cpuBefore = cpuMs(pid);
  for (let i = 0; i < M; i++) {
    void publish(base, kind, i);
    await sleep(INTERVAL_MS);
  }
  const deadline = Date.now() + 30_000;
  while (latencies.length < N * M && Date.now() < deadline) await sleep(20);
  const cpuUsPerDelivery = ((cpuMs(pid) - cpuBefore) * 1000) / (N * M);
  for (const s of subs) s.close();
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? NaN;
  return { cpuUsPerDelivery, p50: pct(0.5), p99: pct(0.99), heapPerIdle, rssPerIdle, received: latencies.length };
}

async function main(): Promise<void> {
  console.log(`bench:fanout  ${N} subscribers per transport, ${M} events every ${INTERVAL_MS} ms, node ${process.version}`);
  for (const transport of ['sse', 'ws'] as const) {
    const bare = await spawnBaseline('bare-broadcast-server.ts');
    const floor = await measure(bare, 'bare', transport);
    await bare.stop();
    const herald = await spawnHerald();
    const ours = await measure(herald, 'herald', transport);
    await herald.stop();
    const row = (name: string, r: Result) =>
      `${name.padEnd(24)} cpu ${fmt(r.cpuUsPerDelivery, 2).padStart(6)} µs/delivery  p50 ${fmt(r.p50, 1)} ms  p99 ${fmt(r.p99, 1)} ms  ` +
      `idle conn: heap ${fmt(r.heapPerIdle / 1024, 1)} KiB, rss ${fmt(r.rssPerIdle / 1024, 1)} KiB  received ${r.received}/${N * M}`;
    console.log(`${transport.toUpperCase()}`);
    console.log(row('  bare node:http + ws', floor));
    console.log(row('  herald', ours));
    const aim = transport === 'ws' ? 8 : 4;
    console.log(
      `  ratio: cpu ${fmt(ours.cpuUsPerDelivery / floor.cpuUsPerDelivery, 2)}× the floor (aim ≤ 1.25×), ` +
        `memory per idle connection: heap ${fmt(ours.heapPerIdle / 1024, 1)} KiB (floor ${fmt(floor.heapPerIdle / 1024, 1)}), ` +
        `rss ${fmt(ours.rssPerIdle / 1024, 1)} KiB (floor ${fmt(floor.rssPerIdle / 1024, 1)}); aim ≤ ${aim} KiB`,
    );
  }
  agent.destroy();
}

await main();

// Soak test: `npm run soak` (SOAK_MINUTES, default 10). Not part of `npm test`.
// Runs a real Herald in this process under churn on every transport (WebSocket, SSE, long polling), steady
// publishes, slow and dead consumers and deliveries to a flaky endpoint. Prints RSS, event-loop delay p99, open
// handles and file descriptors at the start, while warm and at the end, and fails (exit 1) when one keeps
// growing or an acknowledged event is missing from the log.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { WebSocket } from 'ws';
import { loadConfig } from '../packages/server/src/config/load.js';
import { startServer } from '../packages/server/src/server.js';

const MINUTES = Number(process.env.SOAK_MINUTES ?? 10);
const DURATION_MS = Math.max(0.25, MINUTES) * 60_000;
const ADMIN = 'soak-admin-key-0123456789abcdef';
const CHANNELS = Array.from({ length: 40 }, (_, i) => `soak${i}`);
const pick = <T>(list: readonly T[]): T => list[Math.floor(Math.random() * list.length)]!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Sample {
  label: string;
  rssMiB: number;
  heapMiB: number;
  p99ms: number;
  handles: number;
  fds: number;
}

const eld = monitorEventLoopDelay({ resolution: 10 });
eld.enable();

function sample(label: string): Sample {
  const mem = process.memoryUsage();
  const s: Sample = {
    label,
    rssMiB: Math.round(mem.rss / 1048576),
    heapMiB: Math.round(mem.heapUsed / 1048576),
    p99ms: Math.round(eld.percentile(99) / 1e5) / 10,
    handles: process.getActiveResourcesInfo().length,
    fds: readdirSync('/proc/self/fd').length,
  };
  eld.reset();
  console.log(`${label.padEnd(8)} rss ${s.rssMiB} MiB  heap ${s.heapMiB} MiB  event-loop p99 ${s.p99ms} ms  handles ${s.handles}  fds ${s.fds}`);
  return s;
}

// A receiver that fails a third of the time, and now and then answers only after 2 s.
let received = 0;
const sink = createServer((req: IncomingMessage, res: ServerResponse) => {
  req.resume();
  req.on('end', () => {
    const roll = Math.random();
    if (roll < 0.05) setTimeout(() => res.writeHead(200).end(), 2000);
    else if (roll < 0.35) res.writeHead(503).end();
    else {
      received++;
      res.writeHead(200).end();
    }
  });
});
await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
const sinkPort = (sink.address() as { port: number }).port;

const dataDir = mkdtempSync(join(tmpdir(), 'herald-soak-'));
const config = loadConfig({
  env: {},
  cwd: dataDir,
  flags: {
    port: 0,
    dataDir,
    logLevel: 'silent',
    adminKey: ADMIN,
    delivery: { allowPrivateNetworks: ['127.0.0.0/8'], retrySchedule: [1, 2, 5], timeout: 3 },
    retention: { trimInterval: 5 },
    limits: { sendBufferBytes: 256 * 1024 },
  },
});
const server = await startServer(config);
const base = server.url;
const auth = { authorization: `Bearer ${ADMIN}` };
const wsUrl = `${base.replace('http', 'ws')}/v1/ws?token=${ADMIN}`;

await fetch(`${base}/v1/endpoints`, {
  method: 'POST',
  headers: { ...auth, 'content-type': 'application/json' },
  body: JSON.stringify({ url: `http://127.0.0.1:${sinkPort}/hook`, channels: ['soak1*'] }),
});

const acked = new Map<string, Map<number, string>>();
const counts = { published: 0, publishErrors: 0, ws: 0, sse: 0, polls: 0, slow: 0, dead: 0, errors: 0 };
let running = true;

async function publisher(): Promise<void> {
  while (running) {
    const channel = pick(CHANNELS);
    try {
      const res = await fetch(`${base}/v1/channels/${channel}/events`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'soak', data: { n: counts.published, pad: 'p'.repeat(Math.floor(Math.random() * 2000)) } }),
      });
      const body = (await res.json()) as { seq: number; id: string };
      if (res.status === 201) {
        if (!acked.has(channel)) acked.set(channel, new Map());
        acked.get(channel)!.set(body.seq, body.id);
        counts.published++;
      } else counts.publishErrors++;
    } catch {
      counts.publishErrors++;
    }
    await sleep(5);
  }
}

/** A WebSocket that subscribes, reads for a while, and closes, or (slow) stops reading, or (dead) vanishes. */
async function wsChurn(): Promise<void> {
  while (running) {
    const kind = Math.random();
    const ws = new WebSocket(wsUrl);
    ws.on('error', () => {});
    await new Promise((r) => ws.once('open', r).once('error', r).once('close', r));
    if (ws.readyState === ws.OPEN) {
      for (let i = 0; i < 3; i++) ws.send(JSON.stringify({ op: 'subscribe', channel: pick(CHANNELS), after: 0 }));
      counts.ws++;
      if (kind < 0.1) {
        // Slow consumer: stops reading, so the server's send buffer fills and it cuts the socket off.
        (ws as unknown as { _socket: { pause(): void } })._socket.pause();
        counts.slow++;
        setTimeout(() => ws.terminate(), 8000);
      } else if (kind < 0.2) {
        // Dead consumer: the connection simply disappears, without a close frame.
        await sleep(500);
        (ws as unknown as { _socket: { destroy(): void } })._socket.destroy();
        counts.dead++;
      } else {
        await sleep(500 + Math.random() * 1500);
        ws.close();
      }
    }
    await sleep(50);
  }
}

async function sseChurn(): Promise<void> {
  while (running) {
    const controller = new AbortController();
    try {
      const channels = [pick(CHANNELS), pick(CHANNELS)].map((c) => `channel=${c}`).join('&');
      const res = await fetch(`${base}/v1/stream?${channels}&after=0`, { headers: auth, signal: controller.signal });
      counts.sse++;
      const reader = res.body!.getReader();
      const until = Date.now() + 300 + Math.random() * 1500;
      while (Date.now() < until) if ((await reader.read()).done) break;
    } catch {
      counts.errors++;
    } finally {
      controller.abort();
    }
    await sleep(50);
  }
}

async function pollChurn(): Promise<void> {
  while (running) {
    const controller = new AbortController();
    // Half of them give up before the answer: abandoned long polls.
    if (Math.random() < 0.5) setTimeout(() => controller.abort(), 200);
    try {
      await fetch(`${base}/v1/channels/${pick(CHANNELS)}/events?after=999999999&wait=1`, { headers: auth, signal: controller.signal }).then((r) => r.text());
      counts.polls++;
    } catch {
      // aborted on purpose
    }
  }
}

const start = sample('start');
const workers = [
  ...Array.from({ length: 4 }, publisher),
  ...Array.from({ length: 6 }, wsChurn),
  ...Array.from({ length: 3 }, sseChurn),
  ...Array.from({ length: 4 }, pollChurn),
];
const samples: Sample[] = [];
const startedAt = Date.now();
const every = Math.min(30_000, DURATION_MS / 6);
while (Date.now() - startedAt < DURATION_MS) {
  await sleep(every);
  samples.push(sample(`${Math.round((Date.now() - startedAt) / 1000)}s`));
}
running = false;
await Promise.all(workers);
// Let slow sockets time out and in-flight work settle before the last look.
await sleep(10_000);
const end = sample('end');

// Every acknowledged event must be in the log, with its id.
let missing = 0;
let checked = 0;
for (const [channel, seqs] of acked) {
  const found = new Map<number, string>();
  let after = 0;
  for (;;) {
    const page = (await (await fetch(`${base}/v1/channels/${channel}/events?after=${after}&limit=1000`, { headers: auth })).json()) as {
      events: Array<{ seq: number; id: string }>;
      next: number;
    };
    for (const e of page.events) found.set(e.seq, e.id);
    if (page.events.length === 0) break;
    after = page.next;
  }
  for (const [seq, id] of seqs) {
    checked++;
    if (found.get(seq) !== id) missing++;
  }
}

// Growth is judged from the warm state (after the first third) to the end, so start-up allocations do not count.
const warm = samples[Math.floor(samples.length / 3)] ?? start;
const failures: string[] = [];
if (end.rssMiB > warm.rssMiB * 1.5 + 50) failures.push(`RSS grew from ${warm.rssMiB} to ${end.rssMiB} MiB`);
if (end.handles > warm.handles + 20) failures.push(`open handles grew from ${warm.handles} to ${end.handles}`);
if (end.fds > warm.fds + 20) failures.push(`file descriptors grew from ${warm.fds} to ${end.fds}`);
if (end.p99ms > 200) failures.push(`event-loop delay p99 is ${end.p99ms} ms at the end`);
if (missing > 0) failures.push(`${missing} of ${checked} acknowledged events are missing`);

console.log(
  `\n${MINUTES} min: ${counts.published} events acknowledged (${counts.publishErrors} publish errors), ${counts.ws} WebSockets ` +
    `(${counts.slow} slow, ${counts.dead} dead), ${counts.sse} SSE streams, ${counts.polls} long polls, ${received} deliveries accepted ` +
    `by the flaky endpoint; ${checked} acknowledged events checked in the log, ${missing} missing.`,
);
await server.close();
sink.close();
rmSync(dataDir, { recursive: true, force: true });
if (failures.length > 0) {
  console.log(`FAIL\n  ${failures.join('\n  ')}`);
  process.exit(1);
}
console.log('PASS');
process.exit(0);

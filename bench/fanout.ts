// npm run bench:fanout — N subscribers on one channel (SSE, then WebSocket), M events published over HTTP.
// Reports server CPU per delivery, publish→receive latency and server memory per idle connection, each beside
// a bare node:http + ws broadcast server (the floor for Node) and, when nginx-light and libnginx-mod-nchan are
// installed, Nchan (in C), all measured in the same run. The subscribers live in a forked load generator
// (bench/fanout-load.ts), so the bench's own work is not on the servers' event loops.
import { execFileSync } from 'node:child_process';
import { fmt } from './harness.js';
import { nchanAvailable } from './nchan.js';
import { closePublisher, cpuOf, LoadGroup, publishOne, PEER_LABEL, sleep, startPeer, type Peer, type PeerKind, type Transport } from './fanout-common.js';
import { BENCH_ADMIN_KEY } from './harness.js';

const N = Number(process.env.BENCH_SUBSCRIBERS ?? 5000);
const M = Number(process.env.BENCH_EVENTS ?? 200);
const INTERVAL_MS = Number(process.env.BENCH_INTERVAL_MS ?? 2);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 1);
/** BENCH_PEERS=herald,bare limits the run (e.g. while profiling); default: all that are available. */
const PEERS = (process.env.BENCH_PEERS ?? 'bare,nchan,herald').split(',') as PeerKind[];
const TRANSPORTS = (process.env.BENCH_TRANSPORTS ?? 'sse,ws').split(',') as Transport[];
/** Subscribers per load-generator process. */
const PER_PROCESS = 5000;

interface Result {
  cpuUsPerDelivery: number;
  p50: number;
  p99: number;
  rssPerIdle: number;
  heapPerIdle?: number;
  received: number;
  failedPublishes: number;
}

async function measure(peer: Peer, transport: Transport): Promise<Result> {
  const load = new LoadGroup(
    { kind: peer.kind, transport, base: peer.url, token: BENCH_ADMIN_KEY, sockets: Array.from({ length: N }, () => ['fanout']) },
    Math.ceil(N / PER_PROCESS),
  );
  // Memory per idle connection: growth from none to all N, each read after a full GC. The heap figure is
  // exact; RSS is what the issue's table used, but a Node process's RSS also moves with heap pages it had
  // already touched, so read it over several runs.
  const before = await peer.memory();
  await load.connect();
  await sleep(500);
  const idle = await peer.memory();
  const idleCount = N;

  const cpuBefore = cpuOf(peer);
  const start = performance.now();
  const publishes: Array<Promise<boolean>> = [];
  for (let i = 0; i < M; i++) {
    const wait = start + i * INTERVAL_MS - performance.now();
    if (wait > 0) await sleep(wait);
    publishes.push(publishOne(peer, 'fanout', i));
  }
  const accepted = (await Promise.all(publishes)).filter(Boolean).length;
  await load.waitFor(N * accepted, 60_000);
  const cpuUsPerDelivery = ((cpuOf(peer) - cpuBefore) * 1000) / (N * accepted);
  const report = await load.report({ fanout: accepted });
  await load.close();
  return {
    cpuUsPerDelivery,
    p50: report.p50,
    p99: report.p99,
    rssPerIdle: (idle.rss - before.rss) / idleCount,
    ...(idle.heap === undefined || before.heap === undefined ? {} : { heapPerIdle: (idle.heap - before.heap) / idleCount }),
    received: report.received,
    failedPublishes: M - accepted,
  };
}

function row(kind: PeerKind, r: Result): string {
  const heap = r.heapPerIdle === undefined ? '' : `, heap ${fmt(r.heapPerIdle / 1024, 1)} KiB`;
  const failed = r.failedPublishes > 0 ? `  FAILED PUBLISHES ${r.failedPublishes}` : '';
  return (
    `  ${PEER_LABEL[kind].padEnd(22)} cpu ${fmt(r.cpuUsPerDelivery, 2).padStart(6)} µs/delivery  p50 ${fmt(r.p50, 1)} ms  p99 ${fmt(r.p99, 1)} ms  ` +
    `idle conn: rss ${fmt(r.rssPerIdle / 1024, 1)} KiB${heap}  received ${r.received}/${N * (M - r.failedPublishes)}${failed}`
  );
}

function ratios(results: Map<PeerKind, Result>): string {
  const ours = results.get('herald');
  const floor = results.get('bare');
  const nchan = results.get('nchan');
  if (!ours) return '';
  const parts: string[] = [];
  if (floor) {
    parts.push(
      `herald/floor: cpu ${fmt(ours.cpuUsPerDelivery / floor.cpuUsPerDelivery, 2)}× (aim ≤ 0.90), p99 ${fmt(ours.p99 / floor.p99, 2)}× (aim ≤ 1.00), ` +
        `rss per idle conn ${fmt(ours.rssPerIdle / floor.rssPerIdle, 2)}× (aim ≤ 1.10)` +
        (ours.heapPerIdle !== undefined && floor.heapPerIdle !== undefined ? `, heap ${fmt(ours.heapPerIdle / floor.heapPerIdle, 2)}×` : ''),
    );
  }
  if (nchan) parts.push(`herald/nchan: cpu ${fmt(ours.cpuUsPerDelivery / nchan.cpuUsPerDelivery, 2)}× (aim ≤ 1.00)`);
  return parts.length ? `  ${parts.join('; ')}` : '';
}

function nchanVersion(): string {
  try {
    const version = execFileSync('dpkg-query', ['-W', '-f', '${Version}', 'libnginx-mod-nchan'], { encoding: 'utf8' });
    return `nchan ${version}`;
  } catch {
    return 'nchan';
  }
}

async function main(): Promise<void> {
  const peers = PEERS.filter((p) => p !== 'nchan' || nchanAvailable());
  const nchanNote = PEERS.includes('nchan') && !nchanAvailable() ? '; Nchan skipped (apt-get install nginx-light libnginx-mod-nchan)' : '';
  console.log(
    `bench:fanout  ${N} subscribers on one channel per transport, ${M} events every ${INTERVAL_MS} ms, node ${process.version}` +
      `${peers.includes('nchan') ? `, ${nchanVersion()}` : ''}${nchanNote}`,
  );
  for (let round = 0; round < ROUNDS; round++) {
    for (const transport of TRANSPORTS) {
      const results = new Map<PeerKind, Result>();
      console.log(transport.toUpperCase());
      for (const kind of peers) {
        const peer = await startPeer(kind, N);
        try {
          results.set(kind, await measure(peer, transport));
        } finally {
          await peer.stop();
        }
        console.log(row(kind, results.get(kind)!));
      }
      const line = ratios(results);
      if (line) console.log(line);
    }
  }
  closePublisher();
}

await main();

// npm run bench:fanout-scale — Herald at scale, over WebSocket:
//   1. 19,000 subscribers on one channel, 5 events/s: nothing lost, publish→receive p99 (aim ≤ 100 ms), CPU per delivery,
//      beside the bare Node floor and (when installed) Nchan, in the same run: what this machine allows any server;
//   2. 10,000 channels with 2 subscribers each (10,000 sockets, each subscribed to two channels), events spread
//      over the channels in `POST /v1/events` batches at the same deliveries/s as (1): nothing lost, CPU per
//      delivery within 1.2× of (1).
// A process here may hold at most 20,000 open files, so the subscribers live in several forked load generators.
import { BENCH_ADMIN_KEY, fmt, machineTicks } from './harness.js';
import { nchanAvailable } from './nchan.js';
import { closePublisher, cpuOf, LoadGroup, publishBatch, publishOne, PEER_LABEL, sleep, startPeer, type Peer, type PeerKind } from './fanout-common.js';

const SUBSCRIBERS = Number(process.env.BENCH_SUBSCRIBERS ?? 19_000);
const RATE = Number(process.env.BENCH_RATE ?? 5);
const DURATION_S = Number(process.env.BENCH_DURATION ?? 20);
const CHANNELS = Number(process.env.BENCH_CHANNELS ?? 10_000);
/** Events per `POST /v1/events` in the many-channel phase. */
const BATCH = Number(process.env.BENCH_BATCH ?? 1000);
const PER_PROCESS = 5000;
/** The peers of the one-channel phase; BENCH_PEERS=herald runs Herald alone. Default: all that are available. */
const PEERS = (process.env.BENCH_PEERS ?? 'bare,nchan,herald').split(',') as PeerKind[];

interface Result {
  cpuUsPerDelivery: number;
  p50: number;
  p99: number;
  received: number;
  expected: number;
  short: number;
  over: number;
  failedPublishes: number;
  /** The load generators' CPU during the phase, in cores, and the share of the machine's CPU left idle. */
  loadCores: number;
  machineIdle: number;
}

/** Publishes on a fixed schedule for DURATION_S; `send(i)` publishes the i-th round and says how many events it carried. */
async function schedule(rounds: number, intervalMs: number, send: (i: number) => Promise<Record<string, number> | undefined>) {
  const expected: Record<string, number> = {};
  let failed = 0;
  const start = performance.now();
  const sent: Array<Promise<void>> = [];
  for (let i = 0; i < rounds; i++) {
    const wait = start + i * intervalMs - performance.now();
    if (wait > 0) await sleep(wait);
    sent.push(
      send(i).then((counts) => {
        if (!counts) return void (failed += 1);
        for (const [channel, n] of Object.entries(counts)) expected[channel] = (expected[channel] ?? 0) + n;
      }),
    );
  }
  await Promise.all(sent);
  return { expected, failed };
}

async function run(
  kind: PeerKind,
  sockets: string[][],
  publish: (peer: Peer) => Promise<{ expected: Record<string, number>; failed: number }>,
): Promise<Result> {
  const peer = await startPeer(kind, sockets.length);
  const load = new LoadGroup({ kind, transport: 'ws', base: peer.url, token: BENCH_ADMIN_KEY, sockets }, Math.ceil(sockets.length / PER_PROCESS));
  try {
    await load.connect();
    await sleep(1000);
    const cpuBefore = cpuOf(peer);
    const loadBefore = load.cpuMs();
    const ticksBefore = machineTicks();
    const started = performance.now();
    const { expected, failed } = await publish(peer);
    const subscribersOf = new Map<string, number>();
    for (const channels of sockets) for (const c of channels) subscribersOf.set(c, (subscribersOf.get(c) ?? 0) + 1);
    const total = Object.entries(expected).reduce((sum, [c, n]) => sum + n * (subscribersOf.get(c) ?? 0), 0);
    await load.waitFor(total, 60_000);
    const cpuUsPerDelivery = ((cpuOf(peer) - cpuBefore) * 1000) / total;
    const loadCores = (load.cpuMs() - loadBefore) / (performance.now() - started);
    const ticks = machineTicks();
    const machineIdle = (ticks.idle - ticksBefore.idle) / (ticks.total - ticksBefore.total);
    const report = await load.report(expected);
    return {
      cpuUsPerDelivery,
      p50: report.p50,
      p99: report.p99,
      received: report.received,
      expected: total,
      short: report.short,
      over: report.over,
      failedPublishes: failed,
      loadCores,
      machineIdle,
    };
  } finally {
    await load.close();
    await peer.stop();
  }
}

function row(name: string, r: Result): string {
  const lost = r.expected - Math.min(r.received, r.expected);
  return (
    `  ${name.padEnd(34)} cpu ${fmt(r.cpuUsPerDelivery, 2).padStart(6)} µs/delivery  p50 ${fmt(r.p50, 1)} ms  p99 ${fmt(r.p99, 1)} ms  ` +
    `received ${r.received}/${r.expected}, lost ${lost}, sockets short ${r.short}, over ${r.over}; ` +
    `load generators ${fmt(r.loadCores, 2)} cores, machine idle ${fmt(r.machineIdle * 100, 0)}%` +
    (r.failedPublishes > 0 ? `, FAILED PUBLISHES ${r.failedPublishes}` : '')
  );
}

async function main(): Promise<void> {
  const rounds = RATE * DURATION_S;
  console.log(`bench:fanout-scale  WebSocket, ${DURATION_S} s per phase, node ${process.version}`);

  // Herald last, as in bench:fanout; the peers publish the same stamps on the same schedule to the same sockets.
  const peers = [...PEERS.filter((p) => p !== 'herald' && (p !== 'nchan' || nchanAvailable())), 'herald' as const];
  const phaseOne = new Map<PeerKind, Result>();
  console.log(`${SUBSCRIBERS} subscribers, 1 channel, ${RATE}/s`);
  for (const kind of peers) {
    const result = await run(
      kind,
      Array.from({ length: SUBSCRIBERS }, () => ['fanout']),
      (peer) => schedule(rounds, 1000 / RATE, async (i) => ((await publishOne(peer, 'fanout', i)) ? { fanout: 1 } : undefined)),
    );
    phaseOne.set(kind, result);
    console.log(row(PEER_LABEL[kind], result));
  }
  const oneChannel = phaseOne.get('herald')!;
  const beside = [...phaseOne]
    .filter(([kind]) => kind !== 'herald')
    .map(([kind, r]) => `herald/${kind}: p99 ${fmt(oneChannel.p99 / r.p99, 2)}×, cpu ${fmt(oneChannel.cpuUsPerDelivery / r.cpuUsPerDelivery, 2)}×`);
  console.log(
    `  aims: lost 0 (${oneChannel.expected - Math.min(oneChannel.received, oneChannel.expected)}), p99 ≤ 100 ms (${fmt(oneChannel.p99, 1)})` +
      (beside.length ? `; ${beside.join('; ')}` : ''),
  );

  // Each channel has two subscribers on two different sockets: socket k holds channels k and k + CHANNELS/2 (modulo
  // CHANNELS), so channel j is held by sockets j and j - CHANNELS/2: CHANNELS sockets, two subscriptions each.
  const half = Math.floor(CHANNELS / 2);
  const channel = (n: number) => `c${n}`;
  const sockets = Array.from({ length: CHANNELS }, (_, k) => [channel(k), channel((k + half) % CHANNELS)]);
  const held = new Map<string, number>();
  for (const channels of sockets) for (const c of channels) held.set(c, (held.get(c) ?? 0) + 1);
  if (CHANNELS < 2 || held.size !== CHANNELS || [...held.values()].some((n) => n !== 2) || sockets.some(([a, b]) => a === b)) {
    throw new Error('every channel must have exactly 2 subscribers, on two sockets (BENCH_CHANNELS ≥ 2)');
  }
  // The same deliveries per second as the one-channel phase, spread over every channel in turn.
  const eventsPerSecond = (SUBSCRIBERS * RATE) / 2;
  const batchesPerSecond = eventsPerSecond / BATCH;
  let next = 0;
  const spread = await run('herald', sockets, (peer) =>
    schedule(Math.round(batchesPerSecond * DURATION_S), 1000 / batchesPerSecond, async (i) => {
      const channels = Array.from({ length: BATCH }, () => channel(next++ % CHANNELS));
      if (!(await publishBatch(peer, channels, i))) return undefined;
      const counts: Record<string, number> = {};
      for (const c of channels) counts[c] = (counts[c] ?? 0) + 1;
      return counts;
    }),
  );
  console.log(row(`${CHANNELS} channels × 2 subscribers`, spread));
  console.log(
    `  aims: lost 0 (${spread.expected - Math.min(spread.received, spread.expected)}), ` +
      `cpu per delivery ≤ 1.2× the one-channel figure (${fmt(spread.cpuUsPerDelivery / oneChannel.cpuUsPerDelivery, 2)}×)`,
  );
  closePublisher();
}

await main();

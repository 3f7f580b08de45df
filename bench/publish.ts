// npm run bench:publish — durable publishes/s, single and batched, beside a bare node:http server answering the same
// POSTs in the same run (and, for single publishes, Fastify with the same route and nothing else). Shared machines are
// noisy: read the ratios, and the server CPU per request, which other load on the machine moves much less than it
// moves throughput.
import { cpuMs, fmt, postLoad, spawnBaseline, spawnHerald, type LoadResult, type Spawned } from './harness.js';
import { sqliteFloor } from './sqlite-floor.js';
import { BATCH, batch, batchEvents, single } from './publish-bodies.js';

const DURATION = Number(process.env.BENCH_DURATION ?? 8);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 64);
/** Times the whole sequence of runs is repeated; each line is then the median of the rounds. */
const ROUNDS = Math.max(1, Math.floor(Number(process.env.BENCH_ROUNDS ?? 1)) || 1);
/** Channels the second SQLite-alone line spreads its batches over: appends to many channels must not cost much more. */
const SPREAD_CHANNELS = 10_000;
/** Channels of the wide batch: one event each, as a publish to every user's own channel would be. */
const WIDE = 1000;
const wideBatch = JSON.stringify({ events: Array.from({ length: WIDE }, (_, i) => ({ channel: `user-${i}`, type: 'tick', data: { i, v: Math.random() } })) });

interface Measured extends LoadResult {
  /** Server CPU (user + system) per request, µs. */
  cpuPerRequest: number;
}

async function load(server: Spawned, path: string, body: string): Promise<Measured> {
  const before = cpuMs(server.child.pid!);
  const result = await postLoad(server.url + path, body, CONNECTIONS, DURATION);
  const cpu = cpuMs(server.child.pid!) - before;
  return { ...result, cpuPerRequest: (cpu * 1000) / Math.max(1, result.rps * DURATION) };
}

const middle = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const half = sorted.length >> 1;
  return sorted.length % 2 ? sorted[half]! : (sorted[half - 1]! + sorted[half]!) / 2;
};

/** The median of each figure over the rounds (each figure on its own), as one result to print. */
const median = (runs: Measured[]): Measured => ({
  rps: middle(runs.map((r) => r.rps)),
  p99: middle(runs.map((r) => r.p99)),
  errors: runs.reduce((n, r) => n + r.errors, 0),
  cpuPerRequest: middle(runs.map((r) => r.cpuPerRequest)),
});

/** A figure worked out in each round: its median, then, with more than one round, every round's value, so the spread shows. */
const perRound = (values: number[], digits: number, unit = ''): string =>
  `${fmt(middle(values), digits)}${unit}` + (values.length > 1 ? ` [${values.map((v) => fmt(v, digits)).join(' ')}]` : '');

async function main(): Promise<void> {
  console.log(`bench:publish  ${DURATION}s per run, ${CONNECTIONS} connections, ${ROUNDS} round${ROUNDS === 1 ? '' : 's'}, node ${process.version}`);
  // Both servers up at once, each herald run straight after its bare twin: a ratio compares two runs seconds apart.
  // Fastify alone goes first, so that it stands next to bare too and herald still follows bare straight away.
  const bare = await spawnBaseline('bare-http-server.ts');
  const fastify = await spawnBaseline('fastify-http-server.ts');
  const herald = await spawnHerald();
  // The same, with `store.appendThread`: the event store on a thread of its own (store/sqlite/event-thread/).
  const threaded = await spawnHerald({ HERALD_STORE_APPEND_THREAD: 'true' });
  const runs: Record<
    'fastifySingle' | 'bareSingle' | 'heraldSingle' | 'threadedSingle' | 'bareBatch' | 'heraldBatch' | 'threadedBatch' | 'heraldWide' | 'threadedWide',
    Measured[]
  > = {
    fastifySingle: [],
    bareSingle: [],
    heraldSingle: [],
    threadedSingle: [],
    bareBatch: [],
    heraldBatch: [],
    threadedBatch: [],
    heraldWide: [],
    threadedWide: [],
  };
  // Rounds repeat the whole sequence, so a run that another process on the machine starved is one of several.
  for (let round = 0; round < ROUNDS; round++) {
    // The two Heralds take turns going first: a run's writes are still being flushed by the kernel while the next
    // one starts, which slows the second's syncs.
    const both = async (path: string, body: string, onLoop: Measured[], onThread: Measured[]) => {
      if (round % 2 === 1) onThread.push(await load(threaded, path, body));
      onLoop.push(await load(herald, path, body));
      if (round % 2 === 0) onThread.push(await load(threaded, path, body));
    };
    runs.fastifySingle.push(await load(fastify, '/v1/channels/bench/events', single));
    runs.bareSingle.push(await load(bare, '/v1/channels/bench/events', single));
    await both('/v1/channels/bench/events', single, runs.heraldSingle, runs.threadedSingle);
    runs.bareBatch.push(await load(bare, '/v1/events', batch));
    await both('/v1/events', batch, runs.heraldBatch, runs.threadedBatch);
    await both('/v1/events', wideBatch, runs.heraldWide, runs.threadedWide);
  }
  await fastify.stop();
  await bare.stop();
  await herald.stop();
  await threaded.stop();
  // With both servers gone, so the bench process has a core to itself.
  const floor = sqliteFloor(batchEvents, DURATION);
  const spreadFloor = sqliteFloor(batchEvents, DURATION, SPREAD_CHANNELS);

  const fastifySingle = median(runs.fastifySingle);
  const bareSingle = median(runs.bareSingle);
  const heraldSingle = median(runs.heraldSingle);
  const bareBatch = median(runs.bareBatch);
  const heraldBatch = median(runs.heraldBatch);
  const threadedSingle = median(runs.threadedSingle);
  const threadedBatch = median(runs.threadedBatch);
  const heraldWide = median(runs.heraldWide);
  const threadedWide = median(runs.threadedWide);
  const rounds = (f: (i: number) => number) => Array.from({ length: ROUNDS }, (_, i) => f(i));
  const line = (name: string, r: Measured, unit = 'req/s') =>
    `${name.padEnd(38)} ${fmt(r.rps).padStart(9)} ${unit}  p99 ${fmt(r.p99)} ms  errors ${r.errors}  cpu ${fmt(r.cpuPerRequest, 1)} µs/req`;
  if (ROUNDS > 1) console.log(`each line: the median of ${ROUNDS} rounds, figure by figure; [ ] every round's own`);
  console.log(line('bare node:http, single POST', bareSingle));
  console.log(line('Fastify alone, the same route', fastifySingle));
  console.log(line('herald durable single publish', heraldSingle));
  const ofBare = (runsOf: Measured[]) => rounds((i) => (runsOf[i]!.rps / runs.bareSingle[i]!.rps) * 100);
  console.log(
    `  ratio single: ${perRound(ofBare(runs.heraldSingle), 1, '%')} of bare (aim ≥ 60%); Fastify alone ${perRound(ofBare(runs.fastifySingle), 1, '%')} of bare; ` +
      `herald cpu beyond Fastify's ${perRound(
        rounds((i) => runs.heraldSingle[i]!.cpuPerRequest - runs.fastifySingle[i]!.cpuPerRequest),
        1,
      )} µs/req`,
  );
  console.log(line('herald single, store.appendThread', threadedSingle));
  console.log(
    `  store.appendThread: ${perRound(ofBare(runs.threadedSingle), 1, '%')} of bare; ` +
      `${perRound(
        rounds((i) => runs.threadedSingle[i]!.rps / runs.heraldSingle[i]!.rps),
        2,
        '×',
      )} the requests/s of the store on the event loop`,
  );
  console.log(line(`bare node:http, batch of ${BATCH}`, bareBatch));
  console.log(line(`herald durable batch of ${BATCH}`, heraldBatch));
  console.log(
    `  batched events/s: herald ${fmt(heraldBatch.rps * BATCH)} (aim ≥ 300,000), bare ${fmt(bareBatch.rps * BATCH)}; ` +
      `ratio ${perRound(
        rounds((i) => (runs.heraldBatch[i]!.rps / runs.bareBatch[i]!.rps) * 100),
        1,
        '%',
      )}; herald cpu ${perRound(
        runs.heraldBatch.map((r) => r.cpuPerRequest / BATCH),
        2,
      )} µs/event`,
  );
  console.log(line(`herald batch of ${BATCH}, appendThread`, threadedBatch));
  console.log(
    `  store.appendThread: ${fmt(threadedBatch.rps * BATCH)} events/s (aim ≥ 300,000); ${perRound(
      rounds((i) => runs.threadedBatch[i]!.rps / runs.heraldBatch[i]!.rps),
      2,
      '×',
    )} the store on the event loop; cpu ${perRound(
      runs.threadedBatch.map((r) => r.cpuPerRequest / BATCH),
      2,
    )} µs/event (both threads)`,
  );
  console.log(line(`herald durable batch, ${fmt(WIDE)} channels`, heraldWide));
  console.log(
    `  wide batches: herald ${fmt(heraldWide.rps * WIDE)} events/s, cpu ${perRound(
      runs.heraldWide.map((r) => r.cpuPerRequest / WIDE),
      2,
    )} µs/event`,
  );
  console.log(line(`herald wide batch, appendThread`, threadedWide));
  console.log(
    `  store.appendThread: ${fmt(threadedWide.rps * WIDE)} events/s; ${perRound(
      rounds((i) => runs.threadedWide[i]!.rps / runs.heraldWide[i]!.rps),
      2,
      '×',
    )} the store on the event loop; cpu ${perRound(
      runs.threadedWide.map((r) => r.cpuPerRequest / WIDE),
      2,
    )} µs/event (both threads)`,
  );
  console.log(`SQLite alone, same statement, ${BATCH} per commit, no sync ${fmt(floor.eventsPerSecond).padStart(9)} events/s  cpu ${fmt(floor.cpuPerEvent, 2)} µs/event`);
  console.log(`  herald batched: ${fmt(((heraldBatch.rps * BATCH) / floor.eventsPerSecond) * 100, 1)}% of SQLite alone`);
  console.log(
    `SQLite alone, the same batches over ${fmt(SPREAD_CHANNELS)} channels in turn ${fmt(spreadFloor.eventsPerSecond).padStart(9)} events/s  cpu ${fmt(spreadFloor.cpuPerEvent, 2)} µs/event` +
      `  (${fmt(spreadFloor.cpuPerEvent / floor.cpuPerEvent, 2)}× the 4-channel figure)`,
  );
}

await main();

// npm run bench:compare -- <another checkout> — this checkout's Herald beside another build of Herald (say the commit
// before a change, in a `git worktree`, built with `npx tsc -b`), both under the same load at the same time: single
// publishes, then batches of 100, as in bench:publish. Run one after the other, two builds meet different moments of
// a shared machine (other work, a busy disk) and a few percent cannot be told from the noise; run side by side, both
// meet the same moments, and the ratio of their CPU per request moves far less. Each round loads both at once for
// BENCH_DURATION seconds with BENCH_CONNECTIONS connections each; the lines print every round and the median.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { cpuMs, fmt, postLoad, ROOT, spawnHerald, type Spawned } from './harness.js';
import { BATCH, batch, single } from './publish-bodies.js';

const other = process.argv[2];
if (!other || !existsSync(join(other, 'packages/server/dist'))) {
  console.error('usage: npm run bench:compare -- <another Herald checkout, built (npx tsc -b)>');
  process.exit(2);
}
const DURATION = Number(process.env.BENCH_DURATION ?? 6);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const ROUNDS = Math.max(1, Math.floor(Number(process.env.BENCH_ROUNDS ?? 5)) || 1);

const middle = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const half = sorted.length >> 1;
  return sorted.length % 2 ? sorted[half]! : (sorted[half - 1]! + sorted[half]!) / 2;
};

/**
 * Both servers under the same load at once; CPU (user + system) per request of each, µs. Odd rounds start the other's
 * load first, so neither build always has its connections opened first.
 */
async function round(servers: Spawned[], path: string, body: string, flip: boolean): Promise<number[]> {
  const order = flip ? [1, 0] : [0, 1];
  const before = servers.map((s) => cpuMs(s.child.pid!));
  const loads: Array<ReturnType<typeof postLoad>> = [];
  for (const i of order) loads[i] = postLoad(servers[i]!.url + path, body, CONNECTIONS, DURATION);
  const results = await Promise.all(loads);
  return servers.map((s, i) => ((cpuMs(s.child.pid!) - before[i]!) * 1000) / Math.max(1, results[i]!.rps * DURATION));
}

async function compare(name: string, servers: Spawned[], path: string, body: string, per: number, unit: string): Promise<void> {
  await Promise.all(servers.map((s) => postLoad(s.url + path, body, CONNECTIONS, 2))); // warm-up: the JIT, the caches
  const ratios: number[] = [];
  const mine: number[] = [];
  const theirs: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const [a, b] = (await round(servers, path, body, r % 2 === 1)).map((cpu) => cpu / per) as [number, number];
    mine.push(a);
    theirs.push(b);
    ratios.push(a / b);
  }
  console.log(
    `${name.padEnd(20)} this ${fmt(middle(mine), 2)} ${unit}  other ${fmt(middle(theirs), 2)} ${unit}  ` +
      `this/other ${fmt(middle(ratios), 3)} [${ratios.map((x) => fmt(x, 3)).join(' ')}]`,
  );
}

console.log(`bench:compare  this ${ROOT}  other ${resolve(other)}  ${ROUNDS} rounds of ${DURATION}s, ${CONNECTIONS} connections each, node ${process.version}`);
const servers = [await spawnHerald(), await spawnHerald({}, resolve(other))];
await compare('single publish', servers, '/v1/channels/bench/events', single, 1, 'µs/req');
await compare(`batch of ${BATCH}`, servers, '/v1/events', batch, BATCH, 'µs/event');
for (const s of servers) await s.stop();

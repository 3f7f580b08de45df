import { spawn, type ChildProcess } from 'node:child_process';
import autocannon from 'autocannon';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const BENCH_ADMIN_KEY = 'bench-admin-key-0123456789abcdef';

/** Node flags for measured servers: a SIGUSR2 handler that runs the GC, so memory readings hold live objects only. */
const MEASURED = ['--expose-gc', '--import', join(ROOT, 'bench', 'gc-on-signal.js')];
/**
 * BENCH_HERALD_NODE_OPTIONS, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`: more Node flags for the Herald processes
 * only, on the command line (NODE_OPTIONS refuses `--cpu-prof`).
 */
const PROFILING = (process.env.BENCH_HERALD_NODE_OPTIONS ?? '').split(' ').filter(Boolean);

export interface Spawned {
  url: string;
  child: ChildProcess;
  /** Runs a full GC in the server and returns its memory usage (see gc-on-signal.js). */
  memory(): Promise<NodeJS.MemoryUsage>;
  stop(): Promise<void>;
}

function memoryProbe(child: ChildProcess, file: string): () => Promise<NodeJS.MemoryUsage> {
  return async () => {
    rmSync(file, { force: true });
    child.kill('SIGUSR2');
    for (let i = 0; i < 200 && !existsSync(file); i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 20));
    return JSON.parse(readFileSync(file, 'utf8')) as NodeJS.MemoryUsage;
  };
}

function waitForLine(stream: NodeJS.ReadableStream, pattern: RegExp, child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: stream });
    lines.on('line', (line) => {
      const m = pattern.exec(line);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`process exited early with ${code}`)));
  });
}

/**
 * Every server a bench started and has not stopped: killed when the bench process exits, however it exits (a
 * server that failed to start made the bench throw, and left the servers started before it running).
 */
const running = new Map<ChildProcess, NodeJS.Signals>();
process.on('exit', () => {
  for (const [child, signal] of running) child.kill(signal);
});

/** Keeps `child` in {@link running} until it exits; `signal` is what ends it (nginx's master ends its workers on SIGTERM). */
export function tracked<T extends ChildProcess>(child: T, signal: NodeJS.Signals = 'SIGKILL'): T {
  running.set(child, signal);
  child.once('exit', () => running.delete(child));
  return child;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

/** The built Herald CLI in its own process, on a fresh data directory: this checkout's, or the one at `root`. */
export async function spawnHerald(env: Record<string, string> = {}, root = ROOT): Promise<Spawned> {
  const dir = mkdtempSync(join(tmpdir(), 'herald-bench-'));
  const child = tracked(
    spawn(process.execPath, [...MEASURED, ...PROFILING, join(root, 'bin/herald.js'), 'serve', '--port', '0', '--data', dir, '--log-level', 'warn'], {
      env: { ...process.env, HERALD_ADMIN_KEY: BENCH_ADMIN_KEY, BENCH_MEM_FILE: join(dir, 'memory.json'), ...env },
      stdio: ['ignore', 'inherit', 'pipe'],
    }),
  );
  const url = await waitForLine(child.stderr!, /^Herald is listening on (\S+)/, child);
  child.stderr!.resume();
  return {
    url,
    child,
    memory: memoryProbe(child, join(dir, 'memory.json')),
    async stop() {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A TypeScript baseline server from bench/, in its own process; it prints its URL first. */
export async function spawnBaseline(script: string): Promise<Spawned> {
  const dir = mkdtempSync(join(tmpdir(), 'herald-baseline-'));
  const memFile = join(dir, 'memory.json');
  const child = tracked(
    spawn(process.execPath, [...MEASURED, '--import', 'tsx', join(ROOT, 'bench', script)], {
      env: { ...process.env, BENCH_MEM_FILE: memFile },
      stdio: ['ignore', 'pipe', 'inherit'],
    }),
  );
  const url = await waitForLine(child.stdout!, /^(http\S+)/, child);
  return {
    url,
    child,
    memory: memoryProbe(child, memFile),
    async stop() {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

const CLK_TCK = 100;

/** CPU time (user + system) a process has used so far, in ms, from /proc/<pid>/stat. */
export function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
}

/**
 * The whole machine's idle and total CPU time so far (all cores, clock ticks), from /proc/stat. Its first 8 fields
 * only: the last two (guest, guest_nice) are counted in user and nice already.
 */
export function machineTicks(): { idle: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  return { idle: fields[3]! + fields[4]!, total: fields.reduce((a, b) => a + b, 0) };
}

export interface LoadResult {
  rps: number;
  p99: number;
  errors: number;
}

/** autocannon POSTing one JSON body as the admin, as hard as `connections` connections can for `duration` s. */
export async function postLoad(url: string, body: string, connections: number, duration: number): Promise<LoadResult> {
  const result = await autocannon({
    url,
    method: 'POST',
    connections,
    duration,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${BENCH_ADMIN_KEY}` },
    body,
  });
  return { rps: result.requests.average, p99: result.latency.p99, errors: result.non2xx + result.errors + result.timeouts };
}

import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { promisify } from 'node:util';

const run = promisify(execFile);
const START_TIMEOUT_MS = 10_000;

/**
 * Throwaway redis-server processes for tests and benches. Each one gets its
 * own free port and temporary directory and is stopped by its PID: never
 * touch a shared Redis (6379) or kill processes by name.
 */
export interface RedisProcess {
  url: string;
  port: number;
  /** SIGKILL, as a crash or a network loss would look to clients; resolves once the process is gone. */
  kill(): Promise<void>;
  /** Starts redis-server again on the same port (and, for cluster nodes, the same cluster config). */
  restart(): Promise<void>;
  /** Stops it for good and removes its directory. */
  stop(): Promise<void>;
}

export interface RedisCluster {
  /** `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,…`, the form `createBus` takes. */
  url: string;
  ports: number[];
  nodes: RedisProcess[];
  kill(): Promise<void>;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export { freePort } from './ports.js';

const running = new Set<ChildProcess>();
// A test that crashes must not leave servers behind; each is ours, ended by its own PID.
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** Runs redis-cli against one of our servers; resolves with its output. */
export async function redisCli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 10_000 });
  return stdout.trim();
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = START_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

async function startProcess(port: number, dir: string, extra: string[]): Promise<ChildProcess> {
  return spawnRedis(port, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...extra]);
}

/** Starts `redis-server args` and resolves once it answers PING on `port`. */
async function spawnRedis(port: number, args: string[]): Promise<ChildProcess> {
  const child = spawn('redis-server', args, { stdio: 'ignore' });
  running.add(child);
  child.once('exit', () => running.delete(child));
  await waitFor(`redis-server on ${port}`, async () => {
    if (child.exitCode !== null) throw new Error(`redis-server on ${port} exited with ${child.exitCode}`);
    return (await redisCli(port, 'PING')) === 'PONG';
  });
  return child;
}

async function startNode(extra: string[] = [], clusterConfig = false): Promise<RedisProcess> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), `herald-redis-${port}-`));
  const args = clusterConfig
    ? [...extra, '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf'), '--cluster-node-timeout', '2000']
    : extra;
  return managed(port, dir, () => startProcess(port, dir, args));
}

/** A process on `port` that `start` (re)starts, with the kill/restart/stop every test helper here offers. */
async function managed(port: number, dir: string, start: () => Promise<ChildProcess>): Promise<RedisProcess> {
  let child: ChildProcess | undefined = await start();
  const kill = async () => {
    if (!child) return;
    const dying = child;
    child = undefined;
    dying.kill('SIGKILL');
    await exited(dying);
  };
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    kill,
    async restart() {
      await kill();
      child = await start();
    },
    async stop() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One standalone redis-server. */
export function startRedis(extra: string[] = []): Promise<RedisProcess> {
  return startNode(extra);
}

async function clusterOk(port: number): Promise<boolean> {
  return (await redisCli(port, 'CLUSTER', 'INFO')).includes('cluster_state:ok');
}

/** A Redis Cluster of `masters` masters and no replicas, every slot assigned and the state ok on each node. */
export async function startRedisCluster(masters = 3): Promise<RedisCluster> {
  const nodes: RedisProcess[] = [];
  try {
    for (let i = 0; i < masters; i += 1) nodes.push(await startNode([], true));
    const addresses = nodes.map((n) => `127.0.0.1:${n.port}`);
    await run('redis-cli', ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'], { timeout: 30_000 });
    await waitFor('cluster_state:ok', async () => (await Promise.all(nodes.map((n) => clusterOk(n.port)))).every(Boolean), 20_000);
  } catch (error) {
    await Promise.all(nodes.map((n) => n.stop()));
    throw error;
  }
  const ports = nodes.map((n) => n.port);
  return {
    url: `redis+cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`,
    ports,
    nodes,
    async kill() {
      await Promise.all(nodes.map((n) => n.kill()));
    },
    async restart() {
      // Each node reloads its nodes.conf, so the cluster comes back with the same slots.
      await Promise.all(nodes.map((n) => n.restart()));
      await waitFor('cluster_state:ok after restart', async () => (await Promise.all(ports.map(clusterOk))).every(Boolean), 20_000);
    },
    async stop() {
      await Promise.all(nodes.map((n) => n.stop()));
    },
  };
}

export interface RedisSentinelSetup {
  /** `redis+sentinel://127.0.0.1:S/herald`, the form `createBus` takes. */
  url: string;
  masterName: string;
  master: RedisProcess;
  replicas: RedisProcess[];
  sentinel: RedisProcess;
  /** The port Sentinel names as the master now. */
  masterPort(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * A master, `replicas` replicas and one Sentinel watching them (quorum 1,
 * down after 1 s, so a killed master fails over within a few seconds).
 */
export async function startRedisSentinel(replicas = 0, masterName = 'herald'): Promise<RedisSentinelSetup> {
  const started: RedisProcess[] = [];
  try {
    const master = await startNode();
    started.push(master);
    const replicaProcesses: RedisProcess[] = [];
    for (let i = 0; i < replicas; i += 1) {
      const replica = await startNode(['--replicaof', '127.0.0.1', String(master.port)]);
      started.push(replica);
      replicaProcesses.push(replica);
    }
    const sentinel = await startSentinel(master.port, masterName);
    started.push(sentinel);
    const masterPort = async () => Number((await redisCli(sentinel.port, 'SENTINEL', 'get-master-addr-by-name', masterName)).split('\n')[1]);
    await waitFor('Sentinel to know the master', async () => (await masterPort()) === master.port);
    if (replicas > 0) {
      await waitFor(
        'Sentinel to see the replicas',
        async () => Number((await redisCli(sentinel.port, 'SENTINEL', 'master', masterName)).match(/num-slaves\n(\d+)/)?.[1] ?? 0) === replicas,
        20_000,
      );
    }
    return {
      url: `redis+sentinel://127.0.0.1:${sentinel.port}/${masterName}`,
      masterName,
      master,
      replicas: replicaProcesses,
      sentinel,
      masterPort,
      async stop() {
        await Promise.all(started.map((p) => p.stop()));
      },
    };
  } catch (error) {
    await Promise.all(started.map((p) => p.stop()));
    throw error;
  }
}

/** `redis-server --sentinel` needs a config file it may rewrite; it lives in the process's own directory. */
async function startSentinel(masterPort: number, masterName: string): Promise<RedisProcess> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), `herald-sentinel-${port}-`));
  const config = join(dir, 'sentinel.conf');
  writeFileSync(
    config,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor ${masterName} 127.0.0.1 ${masterPort} 1`,
      `sentinel down-after-milliseconds ${masterName} 1000`,
      `sentinel failover-timeout ${masterName} 3000`,
      '',
    ].join('\n'),
  );
  return managed(port, dir, () => spawnRedis(port, [config, '--sentinel']));
}

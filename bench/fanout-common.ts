// What bench/fanout.ts and bench/fanout-scale.ts share: the peers (Herald, the bare Node floor, Nchan), the
// publisher, and the forked load generators (bench/fanout-load.ts) with their merged results.
import { fork, type ChildProcess } from 'node:child_process';
import { request, Agent } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH_ADMIN_KEY, cpuMs, ROOT, spawnBaseline, spawnHerald, tracked, type Spawned } from './harness.js';
import { spawnNchan, type NchanPeer } from './nchan.js';
import { percentiles, type LoadPlan, type LoadReport, type PeerKind, type ToChild, type ToParent, type Transport } from './fanout-load.js';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.timeOrigin + performance.now();

export interface Memory {
  rss: number;
  /** JS heap after a full GC; Node peers only. */
  heap?: number;
}

/** How a bench names each peer in its lines. */
export const PEER_LABEL: Record<PeerKind, string> = { bare: 'bare node:http + ws', nchan: 'nchan (nginx, C)', herald: 'herald' };

export interface Peer {
  kind: PeerKind;
  url: string;
  /** Every process whose CPU counts: the Node server, or nginx's master and worker. */
  pids(): number[];
  memory(): Promise<Memory>;
  stop(): Promise<void>;
}

function nodePeer(kind: PeerKind, spawned: Spawned): Peer {
  return {
    kind,
    url: spawned.url,
    pids: () => [spawned.child.pid!],
    memory: async () => {
      const m = await spawned.memory();
      return { rss: m.rss, heap: m.heapUsed };
    },
    stop: () => spawned.stop(),
  };
}

function rssOf(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m);
  return Number(line?.[1] ?? 0) * 1024;
}

function nchanPeer(nchan: NchanPeer): Peer {
  return {
    kind: 'nchan',
    url: nchan.url,
    pids: () => nchan.pids(),
    memory: async () => ({ rss: nchan.pids().reduce((sum, pid) => sum + rssOf(pid), 0) }),
    stop: () => nchan.stop(),
  };
}

export async function startPeer(kind: PeerKind, maxConnections: number, env: Record<string, string> = {}): Promise<Peer> {
  if (kind === 'herald') return nodePeer(kind, await spawnHerald(env));
  if (kind === 'bare') return nodePeer(kind, await spawnBaseline('bare-broadcast-server.ts'));
  return nchanPeer(await spawnNchan(maxConnections));
}

export const cpuOf = (peer: Peer): number => peer.pids().reduce((sum, pid) => sum + cpuMs(pid), 0);

const publishAgent = new Agent({ keepAlive: true, maxSockets: 32 });

function post(url: string, body: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(
      url,
      { method: 'POST', agent: publishAgent, headers: { 'content-type': 'application/json', authorization: `Bearer ${BENCH_ADMIN_KEY}` } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

/** Publishes one event carrying its publish stamp; resolves true when the peer accepted it. */
export async function publishOne(peer: Peer, channel: string, i: number): Promise<boolean> {
  const stamp = { t: now(), i };
  const url =
    peer.kind === 'herald' ? `${peer.url}/v1/channels/${channel}/events` : peer.kind === 'nchan' ? `${peer.url}/pub/${channel}` : `${peer.url}/publish`;
  const status = await post(url, JSON.stringify(peer.kind === 'herald' ? { data: stamp } : stamp));
  return status >= 200 && status < 300;
}

/** Herald only: one `POST /v1/events` with an event per channel given. */
export async function publishBatch(peer: Peer, channels: readonly string[], i: number): Promise<boolean> {
  const t = now();
  const status = await post(`${peer.url}/v1/events`, JSON.stringify({ events: channels.map((channel) => ({ channel, data: { t, i } })) }));
  return status >= 200 && status < 300;
}

export const closePublisher = () => publishAgent.destroy();

/** Several forked load generators sharing one plan's sockets between them. */
export class LoadGroup {
  private readonly children: ChildProcess[] = [];
  private readonly progress: number[] = [];
  private readonly plans: LoadPlan[] = [];

  constructor(plan: LoadPlan, processes: number) {
    const per = Math.ceil(plan.sockets.length / processes);
    for (let p = 0; p < processes; p++) {
      const sockets = plan.sockets.slice(p * per, (p + 1) * per);
      if (sockets.length === 0) break;
      const child = tracked(fork(join(ROOT, 'bench', 'fanout-load.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
      this.progress.push(0);
      const index = this.children.length;
      child.on('message', (m: ToParent) => {
        if (m.type === 'progress') this.progress[index] = m.received;
      });
      this.children.push(child);
      this.plans.push({ ...plan, sockets });
    }
  }

  private ask<T extends ToParent['type']>(child: ChildProcess, message: ToChild, answer: T): Promise<Extract<ToParent, { type: T }>> {
    return new Promise((resolve, reject) => {
      const onMessage = (m: ToParent) => {
        if (m.type === 'failed') reject(new Error(m.message));
        if (m.type !== answer) return;
        child.off('message', onMessage);
        resolve(m as Extract<ToParent, { type: T }>);
      };
      child.on('message', onMessage);
      child.send(message);
    });
  }

  /** Opens the sockets from `from` to `to` (fractions of each child's share; for Herald, waits for every `subscribed`). */
  async connect(from = 0, to = 1): Promise<void> {
    await Promise.all(this.children.map((child, i) => this.ask(child, { type: 'connect', plan: this.plans[i]!, from, to }, 'connected')));
  }

  get received(): number {
    return this.progress.reduce((a, b) => a + b, 0);
  }

  /** CPU the load generators have used so far, ms: when they are busy, what they measure includes their own queueing. */
  cpuMs(): number {
    return this.children.reduce((sum, child) => sum + (child.pid === undefined || child.exitCode !== null ? 0 : cpuMs(child.pid)), 0);
  }

  /** Waits until `total` events have arrived (or `timeoutMs` passed), from the children's progress reports. */
  async waitFor(total: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.received < total && Date.now() < deadline) await sleep(20);
  }

  /** Forgets the latencies measured so far (a warm-up's) in every child. */
  async resetLatency(): Promise<void> {
    await Promise.all(this.children.map((child) => this.ask(child, { type: 'reset' }, 'reset')));
  }

  async report(expected: Record<string, number>): Promise<LoadReport & { p50: number; p99: number; histograms: Array<LoadReport['histogram']> }> {
    const reports = (await Promise.all(this.children.map((child) => this.ask(child, { type: 'report', expected }, 'report')))).map((r) => r.report);
    const histograms = reports.map((r) => r.histogram);
    const [p50, p99] = percentiles(histograms, [0.5, 0.99]);
    return {
      received: reports.reduce((sum, r) => sum + r.received, 0),
      short: reports.reduce((sum, r) => sum + r.short, 0),
      over: reports.reduce((sum, r) => sum + r.over, 0),
      disorder: reports.reduce((sum, r) => sum + r.disorder, 0),
      histogram: {},
      histograms,
      p50: p50!,
      p99: p99!,
    };
  }

  async close(): Promise<void> {
    await Promise.all(
      this.children.map((child) => {
        const exited = new Promise((r) => child.once('exit', r));
        child.send({ type: 'close' } satisfies ToChild);
        return exited;
      }),
    );
  }
}

export type { PeerKind, Transport };

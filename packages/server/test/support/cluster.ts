// Real `herald serve` nodes sharing one PostgreSQL database and one bus, and
// the test clients (SSE, WebSocket, long poll) that follow a channel through
// them. Every process is started here and stopped by its own PID.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { Agent, fetch } from 'undici';
import { CLI_ADMIN_KEY, sleep, spawnHerald, until, type Running } from '../helpers.js';
import { WsTestClient } from '../ws-client.js';

export interface CallResult<T = any> {
  status: number;
  body: T;
}

export interface CallOptions {
  body?: unknown;
  raw?: string;
  token?: string | null;
  headers?: Record<string, string>;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface NodeOptions {
  id: string;
  store: string;
  bus?: string | undefined;
  env?: Record<string, string>;
}

/** One `herald serve` process. */
export class HeraldNode {
  private constructor(
    readonly id: string,
    readonly url: string,
    private readonly running: Running,
    private readonly dataDir: string,
    private readonly agent: Agent,
    private readonly logs: () => string,
  ) {}

  static async spawn(options: NodeOptions): Promise<HeraldNode> {
    const dataDir = mkdtempSync(join(tmpdir(), `herald-${options.id}-`));
    const args = ['serve', '--port', '0', '--data', dataDir, '--store', options.store, '--node-id', options.id, '--log-level', options.env?.HERALD_LOG_LEVEL ?? 'warn'];
    if (options.bus) args.push('--bus', options.bus);
    let running: Running;
    try {
      running = await spawnHerald(args, { HERALD_DELIVERY_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8', ...options.env });
    } catch (error) {
      rmSync(dataDir, { recursive: true, force: true });
      throw error;
    }
    // The JSON log (warnings and errors, unless HERALD_LOG_LEVEL says more), kept for failure messages and checks.
    let stdout = '';
    running.child.stdout!.on('data', (d: Buffer) => (stdout = (stdout + d.toString()).slice(-20_000)));
    return new HeraldNode(options.id, running.url, running, dataDir, new Agent(), () => stdout + running.stderr());
  }

  get pid(): number {
    return this.running.child.pid!;
  }

  get alive(): boolean {
    return this.running.child.exitCode === null && this.running.child.signalCode === null;
  }

  get wsUrl(): string {
    return this.url.replace(/^http/, 'ws') + '/v1/ws';
  }

  log(): string {
    return this.logs();
  }

  async call<T = any>(method: string, path: string, options: CallOptions = {}): Promise<CallResult<T>> {
    const headers: Record<string, string> = { ...options.headers };
    const token = options.token === undefined ? CLI_ADMIN_KEY : options.token;
    if (token !== null) headers.authorization = `Bearer ${token}`;
    let body = options.raw;
    if (options.body !== undefined) body = JSON.stringify(options.body);
    if (body !== undefined) headers['content-type'] ??= 'application/json';
    const res = await fetch(this.url + path, {
      method,
      headers,
      body,
      dispatcher: this.agent,
      signal: AbortSignal.any([AbortSignal.timeout(options.timeoutMs ?? 10_000), ...(options.signal ? [options.signal] : [])]),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  }

  publish(channel: string, data: unknown, options: { type?: string; headers?: Record<string, string>; token?: string } = {}): Promise<CallResult> {
    return this.call('POST', `/v1/channels/${channel}/events`, {
      body: { type: options.type ?? 'test', data },
      ...(options.headers ? { headers: options.headers } : {}),
      ...(options.token ? { token: options.token } : {}),
    });
  }

  /** The whole channel from the log, read through this node. */
  async readAll(channel: string): Promise<any[]> {
    const events: any[] = [];
    let after = 0;
    for (;;) {
      const res = await this.call('GET', `/v1/channels/${channel}/events?after=${after}&limit=1000`);
      if (res.status !== 200) throw new Error(`read ${channel}: ${res.status} ${JSON.stringify(res.body)}`);
      events.push(...res.body.events);
      if (res.body.events.length === 0) return events;
      after = res.body.next;
    }
  }

  /** kill -9: no shutdown, no lease release, sockets reset. */
  async kill(): Promise<void> {
    if (this.alive) this.running.child.kill('SIGKILL');
    await this.running.exited;
    await this.cleanup();
  }

  /** A clean stop (SIGTERM), SIGKILL after 10 s. */
  async stop(): Promise<void> {
    if (this.alive) {
      this.running.child.kill('SIGTERM');
      const timer = setTimeout(() => this.running.child.kill('SIGKILL'), 10_000);
      await this.running.exited;
      clearTimeout(timer);
    }
    await this.cleanup();
  }

  private async cleanup(): Promise<void> {
    await this.agent.close().catch(() => {});
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** Starts nodes one first (it builds the CLI if sources changed, and migrates), then the rest at once. */
export async function spawnNodes(count: number, options: Omit<NodeOptions, 'id'> & { prefix?: string }): Promise<HeraldNode[]> {
  const prefix = options.prefix ?? 'n';
  const first = await HeraldNode.spawn({ ...options, id: `${prefix}1` });
  const rest = await Promise.allSettled(Array.from({ length: count - 1 }, (_, i) => HeraldNode.spawn({ ...options, id: `${prefix}${i + 2}` })));
  const nodes = [first, ...rest.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))];
  const failed = rest.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await Promise.all(nodes.map((n) => n.kill()));
    throw failed.reason;
  }
  return nodes;
}

/** Checks that `events` are exactly seqs from..to, each once, in order; returns a message for the first defect. */
export function contiguity(events: Array<{ seq: number }>, from: number, to: number): string | undefined {
  if (events.length !== to - from + 1) return `expected ${to - from + 1} events (${from}..${to}), got ${events.length}: ${events.map((e) => e.seq).join(',')}`;
  for (let i = 0; i < events.length; i++) {
    if (events[i]!.seq !== from + i) return `position ${i}: expected seq ${from + i}, got ${events[i]!.seq} (${events.map((e) => e.seq).join(',')})`;
  }
  return undefined;
}

/** A single-channel Server-Sent Events stream, kept open, parsing every event as it comes. */
export class SseFollower {
  readonly events: any[] = [];
  /** Receive time per seq. */
  readonly receivedAt = new Map<number, number>();
  ended = false;
  status: number | undefined;
  private readonly controller = new AbortController();
  readonly opened: Promise<void>;
  readonly done: Promise<void>;

  constructor(node: HeraldNode, channel: string, token: string, lastEventId?: number) {
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    if (lastEventId !== undefined) headers['last-event-id'] = String(lastEventId);
    let opened!: () => void;
    let failed!: (error: unknown) => void;
    this.opened = new Promise((resolve, reject) => ((opened = resolve), (failed = reject)));
    this.done = (async () => {
      try {
        const res = await fetch(`${node.url}/v1/channels/${channel}/stream`, { headers, signal: this.controller.signal });
        this.status = res.status;
        if (res.status !== 200 || !res.body) throw new Error(`SSE ${res.status}: ${await res.text()}`);
        let buffer = '';
        const decoder = new TextDecoder();
        let first = true;
        for await (const chunk of res.body) {
          buffer += decoder.decode(chunk as Uint8Array, { stream: true });
          if (first) {
            first = false;
            opened();
          }
          let end: number;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const lines = block.split('\n');
            if (lines.some((l) => l.startsWith('event:'))) continue;
            const data = lines.filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart());
            if (data.length === 0) continue;
            const event = JSON.parse(data.join('\n'));
            this.events.push(event);
            this.receivedAt.set(event.seq, Date.now());
          }
        }
      } catch (error) {
        failed(error);
      } finally {
        this.ended = true;
      }
    })();
  }

  get last(): number {
    return this.events.at(-1)?.seq ?? 0;
  }

  close(): void {
    this.controller.abort();
  }
}

/** A WebSocket subscribed to one channel; `events` are the live and backlog `event` frames. */
export class WsFollower {
  readonly client: WsTestClient;
  readonly receivedAt = new Map<number, number>();

  private constructor(client: WsTestClient) {
    this.client = client;
    client.ws.on('message', (data) => {
      const frame = JSON.parse(data.toString());
      if (frame.op === 'event') this.receivedAt.set(frame.seq, Date.now());
    });
  }

  static async open(node: HeraldNode, channel: string, token: string, after?: number): Promise<WsFollower> {
    const client = new WsTestClient(`${node.wsUrl}?token=${encodeURIComponent(token)}`);
    await client.opened;
    const follower = new WsFollower(client);
    client.send({ op: 'subscribe', channel, ref: 's', ...(after !== undefined ? { after } : {}) });
    await client.next('subscribed', 1, 5000).catch((error: unknown) => {
      client.ws.terminate();
      throw new Error(`${String(error)}: ${JSON.stringify(client.frames)}`);
    });
    return follower;
  }

  get events(): any[] {
    return this.client.ops('event');
  }

  get last(): number {
    return this.events.at(-1)?.seq ?? 0;
  }

  get closed(): boolean {
    return this.client.closed !== undefined;
  }

  close(): void {
    this.client.ws.terminate();
  }
}

/** A long-poll loop on one channel (`wait` seconds per request), until stopped or the node fails it. */
export class PollFollower {
  readonly events: any[] = [];
  readonly receivedAt = new Map<number, number>();
  error: unknown;
  private stopped = false;
  private readonly controller = new AbortController();
  readonly done: Promise<void>;

  constructor(
    private readonly node: HeraldNode,
    channel: string,
    token: string,
    private after = 0,
  ) {
    this.done = (async () => {
      while (!this.stopped) {
        try {
          const res = await this.node.call('GET', `/v1/channels/${channel}/events?after=${this.after}&wait=2&limit=1000`, { token, timeoutMs: 5000, signal: this.controller.signal });
          if (res.status !== 200) throw new Error(`poll ${res.status} ${JSON.stringify(res.body)}`);
          for (const event of res.body.events) {
            this.events.push(event);
            this.receivedAt.set(event.seq, Date.now());
          }
          this.after = res.body.next;
        } catch (error) {
          if (!this.stopped) this.error = error;
          return;
        }
      }
    })();
  }

  get last(): number {
    return this.after;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.controller.abort();
    await this.done;
  }
}

export { sleep, until };

/** Polls `check` every 50 ms until it returns true; fails with `what` after `timeoutMs`. */
export async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The node holding lease `name` now (an unexpired row of the `leases` table), read straight from PostgreSQL. */
export async function leaseHolder(sql: Pick<pg.Client, 'query'>, name: string): Promise<string | undefined> {
  const { rows } = await sql.query<{ holder: string; expires_at: string }>('SELECT holder, expires_at FROM leases WHERE name = $1', [name]);
  return rows.find((r) => Number(r.expires_at) > Date.now())?.holder;
}

import { after } from 'node:test';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, fetch } from 'undici';
import { loadConfig } from '../src/config/load.js';
import { startServer, type HeraldServer, type StartOptions } from '../src/server.js';
import type { WsTestClient } from './ws-client.js';
import { sleep } from './support/wait.js';

export const ADMIN_KEY = 'test-admin-key-0123456789abcdef';

export interface CallResult<T = any> {
  status: number;
  body: T;
  headers: { get(name: string): string | null };
}

export interface TestServer extends HeraldServer {
  dataDir: string;
  call<T = any>(method: string, path: string, options?: { body?: unknown; raw?: string; token?: string | null; headers?: Record<string, string> }): Promise<CallResult<T>>;
  /** Creates an API key with the admin key and returns the secret. */
  createKey(scopes: string[], channels: string[]): Promise<string>;
  stop(): Promise<void>;
}

/** A real Herald on an ephemeral port, with a temporary data directory; `options.logger` to read its log. */
export async function startTestServer(settings: Record<string, unknown> = {}, dataDir?: string, options: StartOptions = {}): Promise<TestServer> {
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), 'herald-e2e-'));
  const config = loadConfig({
    env: {},
    cwd: dir,
    flags: { port: 0, dataDir: dir, logLevel: 'silent', adminKey: ADMIN_KEY, ...settings },
  });
  const server = await startServer(config, options);
  // A pool of its own, so no request reuses a connection to an earlier server on the same port.
  const agent = new Agent();
  const call: TestServer['call'] = async (method, path, options = {}) => {
    const headers: Record<string, string> = { ...options.headers };
    const token = options.token === undefined ? ADMIN_KEY : options.token;
    if (token !== null) headers.authorization = `Bearer ${token}`;
    let body: string | undefined = options.raw;
    if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers['content-type'] ??= 'application/json';
    } else if (body !== undefined) {
      headers['content-type'] ??= 'application/json';
    }
    const res = await fetch(server.url + path, { method, headers, body, dispatcher: agent });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
  };
  return Object.assign(server, {
    dataDir: dir,
    call,
    async createKey(scopes: string[], channels: string[]) {
      const res = await call('POST', '/v1/keys', { body: { name: 'test', scopes, channels } });
      if (res.status !== 201) throw new Error(`key creation failed: ${JSON.stringify(res.body)}`);
      return res.body.key as string;
    },
    async stop() {
      await server.close();
      await agent.close();
      if (!dataDir) rmSync(dir, { recursive: true, force: true });
    },
  });
}

/**
 * The servers and WebSocket clients of one suite, all closed after it (call inside `describe`). Every server
 * gets `defaults`, then the settings its `start` is given.
 */
export function suiteServers(defaults: Record<string, unknown> = {}): {
  start(settings?: Record<string, unknown>): Promise<TestServer>;
  /** Keeps a client to terminate after the suite; returns it. */
  track<C extends WsTestClient>(client: C): C;
} {
  const servers: TestServer[] = [];
  const clients: WsTestClient[] = [];
  after(async () => {
    for (const c of clients) c.ws.terminate();
    for (const s of servers) await s.stop();
  });
  return {
    async start(settings = {}) {
      const s = await startTestServer({ ...defaults, ...settings });
      servers.push(s);
      return s;
    },
    track(client) {
      clients.push(client);
      return client;
    },
  };
}

export { sleep, until } from './support/wait.js';

/** A raw TCP connection to a test server, once connected, with what it has received so far as text. */
export async function rawConnection(url: string): Promise<{ socket: Socket; received(): string }> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  await once(socket, 'connect');
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
  return { socket, received: () => received };
}

/** Retries an async check until it stops throwing; rethrows its last failure after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(20);
    }
  }
}

/** A metric without labels as `/metrics` at `url` shows it, read with `adminKey`; undefined when it is not there. */
export async function metricValue(url: string, adminKey: string, name: string): Promise<number | undefined> {
  const text = await (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${adminKey}` } })).text();
  const line = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return line ? Number(line[1]) : undefined;
}

/** An endpoint's deliveries (the latest 1,000), their attempts summed, and the statuses among them. */
export async function deliveriesOf(server: { call(method: string, path: string): Promise<{ body: any }> }, endpointId: string) {
  const list = (await server.call('GET', `/v1/endpoints/${endpointId}/deliveries?limit=1000`)).body.deliveries as Array<{ id: string; status: string; attempts: number }>;
  return { list, attempts: list.reduce((n, d) => n + d.attempts, 0), statuses: new Set(list.map((d) => d.status)) };
}

export const BIN = fileURLToPath(new URL('../../../bin/herald.js', import.meta.url));
export const CLI_ADMIN_KEY = 'cli-admin-key-0123456789abcdef';

export interface Running {
  child: ChildProcess;
  url: string;
  stderr: () => string;
  /** The first {@link KEPT_LOG_BYTES} of its log (JSON lines on stdout): what it said at start-up. */
  logs: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Log kept per spawned server: enough for its start-up lines, bounded for servers that log every request. */
const KEPT_LOG_BYTES = 64 * 1024;

/**
 * Spawns the built `herald` CLI and waits for its "listening" log line. `wrap` runs it through another
 * command (`['ip', 'netns', 'exec', ns]`), which must exec it so the child's PID is the server's.
 */
export async function spawnHerald(args: string[], env: Record<string, string> = {}, wrap: string[] = []): Promise<Running> {
  const [command, ...prefix] = [...wrap, process.execPath];
  const child = spawn(command!, [...prefix, BIN, ...args], {
    env: { ...process.env, HERALD_ADMIN_KEY: CLI_ADMIN_KEY, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  let logs = '';
  child.stdout!.on('data', (d: Buffer) => {
    if (logs.length < KEPT_LOG_BYTES) logs += d.toString('utf8', 0, KEPT_LOG_BYTES - logs.length);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const url = await new Promise<string>((resolve, reject) => {
    // The banner goes to stderr whatever the log level.
    const lines = createInterface({ input: child.stderr! });
    lines.on('line', (line) => {
      const match = /^Herald is listening on (\S+)/.exec(line);
      if (match) resolve(match[1]!);
    });
    void exited.then(({ code }) => reject(new Error(`herald exited with ${code}: ${stderr}`)));
  });
  return { child, url, stderr: () => stderr, logs: () => logs, exited };
}


import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/load.js';
import { startServer, type HeraldServer } from '../src/server.js';

export const ADMIN_KEY = 'test-admin-key-0123456789abcdef';

export interface CallResult<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export interface TestServer extends HeraldServer {
  dataDir: string;
  call<T = any>(method: string, path: string, options?: { body?: unknown; raw?: string; token?: string | null; headers?: Record<string, string> }): Promise<CallResult<T>>;
  /** Creates an API key with the admin key and returns the secret. */
  createKey(scopes: string[], channels: string[]): Promise<string>;
  stop(): Promise<void>;
}

/** A real Herald on an ephemeral port, with a temporary data directory. */
export async function startTestServer(settings: Record<string, unknown> = {}, dataDir?: string): Promise<TestServer> {
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), 'herald-e2e-'));
  const config = loadConfig({
    env: {},
    cwd: dir,
    flags: { port: 0, dataDir: dir, logLevel: 'silent', adminKey: ADMIN_KEY, ...settings },
  });
  const server = await startServer(config);
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
    const res = await fetch(server.url + path, { method, headers, body });
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
      if (!dataDir) rmSync(dir, { recursive: true, force: true });
    },
  });
}

// Nchan (the nginx pub/sub module, in C) as a fan-out peer: started from Debian's nginx-light and
// libnginx-mod-nchan when both are installed, on a temporary prefix and a free port, stopped by PID.
// The bench installs nothing: `apt-get install nginx-light libnginx-mod-nchan` (see README, Benchmarks).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tracked } from './harness.js';

const NGINX = '/usr/sbin/nginx';
const MODULE = '/usr/lib/nginx/modules/ngx_nchan_module.so';

export const nchanAvailable = (): boolean => existsSync(NGINX) && existsSync(MODULE);

export interface NchanPeer {
  /** http://127.0.0.1:port; `/pub/<channel>` publishes, `/sse/<channel>` and `/ws/<channel>` subscribe. */
  url: string;
  /** The master and its worker: CPU and memory are summed over both. */
  pids(): number[];
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * Nchan holds a second connection per WebSocket subscriber that has no file descriptor (nginx warns "worker_connections
 * are not enough" at 19,000 subscribers with 19,900), so worker_connections is twice the subscribers while the open
 * files stay under this machine's limit of 20,000 (nginx warns at start that the connections exceed it).
 */
function config(dir: string, port: number, maxConnections: number): string {
  return `load_module ${MODULE};
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile ${Math.min(19_950, maxConnections * 2 + 1000)};
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections ${maxConnections * 2 + 1000}; multi_accept on; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  nchan_message_buffer_length 1000;
  nchan_message_timeout 5m;
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location ~ ^/pub/(\\w+)$ { nchan_publisher; nchan_channel_id $1; }
    location ~ ^/sse/(\\w+)$ { nchan_subscriber eventsource; nchan_channel_id $1; }
    location ~ ^/ws/(\\w+)$ { nchan_subscriber websocket; nchan_channel_id $1; }
  }
}
`;
}

function workerPids(master: number): number[] {
  try {
    return readFileSync(`/proc/${master}/task/${master}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Starts nginx with Nchan in the foreground; resolves once the port answers. */
export async function spawnNchan(maxConnections: number): Promise<NchanPeer> {
  const dir = mkdtempSync(join(tmpdir(), 'herald-nchan-'));
  const port = await freePort();
  writeFileSync(join(dir, 'nginx.conf'), config(dir, port, maxConnections));
  const child: ChildProcess = tracked(
    spawn(NGINX, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], { stdio: ['ignore', 'ignore', 'inherit'] }),
    'SIGTERM',
  );
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}: ${readFileSync(join(dir, 'error.log'), 'utf8')}`);
    const up = await fetch(`${url}/pub/probe`).then(
      () => true,
      () => false,
    );
    if (up && workerPids(child.pid!).length > 0) break;
    if (Date.now() > deadline) throw new Error('nginx did not start within 10 s');
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    pids: () => [child.pid!, ...workerPids(child.pid!)],
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, CLI_ADMIN_KEY as ADMIN, spawnHerald, until } from './helpers.js';

/** Runs the CLI until it exits; one still running after 20 s (a server that should have refused to start) is killed. */
async function runToEnd(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const deadline = setTimeout(() => child.kill('SIGKILL'), 20_000);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearTimeout(deadline);
  return { code, stdout, stderr };
}

const auth = { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' };

// The bound is the whole suite's: five tests that each start servers and CLIs took 60 s in all on a CI machine
// with other work on it, and the last was cancelled part way.
describe('the herald CLI', { timeout: 180_000 }, () => {
  const dirs: string[] = [];
  const tempDir = () => {
    const d = mkdtempSync(join(tmpdir(), 'herald-cli-'));
    dirs.push(d);
    return d;
  };
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('prints help and refuses unknown commands and config keys with a clear message', async () => {
    const help = await runToEnd(['serve', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Usage: herald serve/);
    const unknown = await runToEnd(['frobnicate']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command "frobnicate"/);
    const badFlag = await runToEnd(['serve', '--prot', '1']);
    assert.equal(badFlag.code, 2);
    assert.match(badFlag.stderr, /--prot/);
    // A flag's bad value is named as the flag, not as the environment variable with "got null".
    const badPort = await runToEnd(['serve', '--port', 'abc', '--data', tempDir()]);
    assert.equal(badPort.code, 2);
    assert.match(badPort.stderr, /--port takes a port number .*got "abc"/);
    assert.doesNotMatch(badPort.stderr, /HERALD_PORT|null/);
    const highPort = await runToEnd(['serve', '--port', '70000', '--data', tempDir()]);
    assert.equal(highPort.code, 2);
    assert.match(highPort.stderr, /--port takes a port number .*got "70000"/);
    const badEnv = await runToEnd(['serve', '--data', tempDir()], { HERALD_PORT: 'x' });
    assert.equal(badEnv.code, 2);
    assert.match(badEnv.stderr, /HERALD_PORT/);
  });

  it('prints the URL, a generated admin key once, and curl lines; stops cleanly on SIGTERM', async () => {
    const data = tempDir();
    const first = await spawnHerald(['serve', '--port', '0', '--data', data], { HERALD_ADMIN_KEY: '' });
    // The banner's last line: everything before it has been read too.
    await until(() => first.stderr().includes('/v1/channels/demo/events?after=0&wait=30'), 5000, 'the whole banner');
    const key = /Admin key \(shown once; only its hash is stored\): (hk_\S+)/.exec(first.stderr())?.[1];
    assert.ok(key, first.stderr());
    assert.ok(first.stderr().includes(`curl -X POST ${first.url}/v1/channels/demo/events`));
    const pub = await fetch(`${first.url}/v1/channels/demo/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: '{"data":1}',
    });
    assert.equal(pub.status, 201);
    first.child.kill('SIGTERM');
    assert.deepEqual(await first.exited, { code: 0, signal: null });

    const second = await spawnHerald(['serve', '--port', '0', '--data', data], { HERALD_ADMIN_KEY: '' });
    await until(() => second.stderr().includes('/v1/channels/demo/events?after=0&wait=30'), 5000, 'the whole banner');
    assert.ok(!second.stderr().includes(key!), 'the admin key is printed only on the first start');
    assert.ok(second.stderr().includes('herald admin-key reset'), 'later starts say how to get back in');
    const read = await fetch(`${second.url}/v1/channels/demo/events`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal(((await read.json()) as { events: unknown[] }).events.length, 1);
    second.child.kill('SIGINT');
    assert.equal((await second.exited).code, 0);
  });

  it('prints the admin key a failed first start generated, which no later start shows', async () => {
    const data = tempDir();
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const port = (taken.address() as AddressInfo).port;
      const failed = await runToEnd(['serve', '--port', String(port), '--data', data], { HERALD_ADMIN_KEY: '' });
      assert.equal(failed.code, 1);
      assert.match(failed.stderr, new RegExp(`port ${port} is in use`));
      const key = /Admin key: (hk_\S+)/.exec(failed.stderr)?.[1];
      assert.ok(key, failed.stderr);
      const next = await spawnHerald(['serve', '--port', '0', '--data', data], { HERALD_ADMIN_KEY: '' });
      try {
        await until(() => next.stderr().includes('/v1/channels/demo/events?after=0&wait=30'), 5000, 'the whole banner');
        assert.ok(!next.stderr().includes(key!), 'not generated again');
        const read = await fetch(`${next.url}/v1/channels/demo/events`, { headers: { authorization: `Bearer ${key}` } });
        assert.equal(read.status, 200, 'the key printed with the failure is the store\'s');
      } finally {
        next.child.kill('SIGTERM');
        await next.exited;
      }
    } finally {
      taken.close();
    }
  });

  it('refuses a second server on a data directory another one is serving, and starts once that one is gone, killed or not', async () => {
    const data = tempDir();
    const first = await spawnHerald(['serve', '--port', '0', '--data', data]);
    try {
      await until(() => first.stderr().includes('wait=30'), 5000, 'the first banner');
      // Before, the second started; then the first answered 500 to every publish to a channel the second wrote to.
      const second = await runToEnd(['serve', '--port', '0', '--data', data]);
      assert.equal(second.code, 1, second.stderr);
      assert.match(second.stderr, /another Herald server \(node node-[0-9a-f]+\) is running on this data directory: stop it first/);
      const pub = await fetch(`${first.url}/v1/channels/one/events`, { method: 'POST', headers: auth, body: '{"data":1}' });
      assert.equal(pub.status, 201, 'the first goes on');
    } finally {
      first.child.kill('SIGKILL');
      await first.exited;
    }
    // Killed: its heartbeat stops, which the next start waits to see (at most 3 s), and then it serves.
    const next = await spawnHerald(['serve', '--port', '0', '--data', data]);
    try {
      await until(() => next.stderr().includes('wait=30'), 10_000, 'the next banner');
      const read = await fetch(`${next.url}/v1/channels/one/events`, { headers: auth });
      assert.equal(((await read.json()) as { head: number }).head, 1);
    } finally {
      next.child.kill('SIGTERM');
      await next.exited;
    }
  });

  for (const appendThread of [false, true]) {
    it(`loses no acknowledged publish to kill -9 under load${appendThread ? ', with the event store on its own thread' : ''}`, async () => {
      const env = { HERALD_STORE_APPEND_THREAD: String(appendThread) };
      const data = tempDir();
      const first = await spawnHerald(['serve', '--port', '0', '--data', data, '--log-level', 'warn'], env);
      const acked: Array<{ channel: string; seq: number; id: string; data: unknown }> = [];
      let stop = false;
      const worker = async (w: number) => {
        for (let i = 0; !stop; i++) {
          const channel = `crash-${w % 4}`;
          try {
            const res = await fetch(`${first.url}/v1/channels/${channel}/events`, {
              method: 'POST',
              headers: auth,
              body: JSON.stringify({ data: { w, i } }),
            });
            if (res.status === 201) {
              const event = (await res.json()) as { seq: number; id: string; data: unknown };
              acked.push({ channel, seq: event.seq, id: event.id, data: event.data });
            }
          } catch {
            return; // the server is gone
          }
        }
      };
      const workers = Array.from({ length: 24 }, (_, w) => worker(w));
      await until(() => acked.length >= 400, 30_000, '400 acknowledged publishes');
      first.child.kill('SIGKILL');
      stop = true;
      await Promise.all(workers);
      assert.equal((await first.exited).signal, 'SIGKILL');

      const second = await spawnHerald(['serve', '--port', '0', '--data', data, '--log-level', 'warn'], env);
      try {
        const stored = new Map<string, { seq: number; id: string; data: unknown }[]>();
        for (let c = 0; c < 4; c++) {
          const res = await fetch(`${second.url}/v1/channels/crash-${c}/events?limit=1000`, { headers: auth });
          const page = (await res.json()) as { events: Array<{ seq: number; id: string; data: unknown }> };
          stored.set(`crash-${c}`, page.events);
          assert.deepEqual(page.events.map((e) => e.seq), page.events.map((_, i) => i + 1), 'seqs stay gapless');
        }
        for (const ack of acked) {
          const event = stored.get(ack.channel)![ack.seq - 1];
          assert.ok(event, `acknowledged ${ack.channel}#${ack.seq} is missing after restart`);
          assert.equal(event.id, ack.id);
          assert.deepEqual(event.data, ack.data);
        }
      } finally {
        second.child.kill('SIGTERM');
        await second.exited;
      }
    });
  }
});

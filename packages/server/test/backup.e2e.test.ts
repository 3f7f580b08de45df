// `herald backup`: a consistent, private copy of a running SQLite deployment, which restores as documented, with a
// new epoch on every channel so clients resync rather than skip the events that take the lost ones' seqs.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, CLI_ADMIN_KEY, spawnHerald } from './helpers.js';

const herald = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { env: { ...process.env, HERALD_STORE_URL: '' }, encoding: 'utf8' });

it('backs up a running server to a 0600 file that restores with every event up to it, under a new epoch', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-backup-'));
  const data = join(dir, 'data');
  const file = join(dir, 'herald-backup.db');
  const admin = { authorization: `Bearer ${CLI_ADMIN_KEY}`, 'content-type': 'application/json' };
  try {
    let server = await spawnHerald(['serve', '--port', '0', '--data', data]);
    const publish = (n: number) => fetch(`${server.url}/v1/channels/kept/events`, { method: 'POST', headers: admin, body: JSON.stringify({ data: n }) });
    const page = async () => (await (await fetch(`${server.url}/v1/channels/kept/events?after=0`, { headers: admin })).json()) as { events: Array<{ seq: number; data: number }>; epoch: string };
    let before: { epoch: string };
    try {
      for (const n of [1, 2, 3]) assert.equal((await publish(n)).status, 201);
      before = await page();
      const run = herald(['backup', '--data', data, '--to', file]);
      assert.equal(run.status, 0, run.stderr);
      assert.equal(statSync(file).mode & 0o777, 0o600, 'it holds every secret');
      assert.equal(existsSync(`${file}-wal`), false, 'one file');
      assert.equal(herald(['backup', '--data', data, '--to', file]).status, 1, 'never overwrites');
      assert.equal((await publish(4)).status, 201, 'lost by the restore');
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
    // The restore, as the help says.
    for (const name of ['herald.db', 'herald.db-wal', 'herald.db-shm']) rmSync(join(data, name), { force: true });
    copyFileSync(file, join(data, 'herald.db'));
    server = await spawnHerald(['serve', '--port', '0', '--data', data]);
    try {
      const restored = await page();
      assert.deepEqual(restored.events.map((e) => e.data), [1, 2, 3]);
      assert.notEqual(restored.epoch, before!.epoch, 'a new epoch: seq 4 is about to mean another event');
      assert.equal((await publish(5)).status, 201);
      assert.deepEqual((await page()).events.map((e) => [e.seq, e.data]), [[1, 1], [2, 2], [3, 3], [4, 5]]);
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
    const none = herald(['backup', '--data', join(dir, 'nothing'), '--to', join(dir, 'x.db')]);
    assert.equal(none.status, 1);
    assert.match(none.stderr, /holds no Herald data/);
    assert.equal(herald(['backup', '--data', data]).status, 2, '--to is required');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// `herald admin-key reset --store`: the built CLI against PostgreSQL. It writes a key only into a database a Herald
// has written to: pointed at any other (a mistyped URL), it once created Herald's whole schema there and printed a
// key that no node would ever read.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { BIN, spawnHerald, until, type Running } from './helpers.js';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';

const reset = (url: string) =>
  spawnSync(process.execPath, [BIN, 'admin-key', 'reset', '--store', url], { env: { ...process.env, HERALD_ADMIN_KEY: '', HERALD_STORE_URL: '' }, encoding: 'utf8' });

async function tables(url: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<{ tablename: string }>("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).rows.map((r) => r.tablename);
  } finally {
    await client.end();
  }
}

describe('herald admin-key reset --store', { timeout: 60_000 }, () => {
  let db: TestDatabase;
  const dirs: string[] = [];
  before(async () => {
    db = await createTestDatabase('herald_adminkey');
  });
  after(async () => {
    await db.drop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('refuses a database no Herald has written to, and creates nothing there', async () => {
    const run = reset(db.url);
    assert.equal(run.status, 1, run.stderr);
    assert.equal(run.stdout, '');
    assert.match(run.stderr, /holds no Herald data/);
    assert.deepEqual(await tables(db.url), []);
  });

  it("stores a new key in a cluster's store, which its nodes then take", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-adminkey-'));
    dirs.push(dir);
    const env = { HERALD_ADMIN_KEY: '', HERALD_TOKEN_SECRET: '' };
    // store.appendThread is SQLite's: on PostgreSQL it changes nothing, and the start says so.
    const first = await spawnHerald(['serve', '--port', '0', '--data', dir, '--store', db.url], { ...env, HERALD_STORE_APPEND_THREAD: 'true' });
    try {
      await until(() => first.stderr().includes('wait=30'), 10_000, 'the banner');
      await until(() => first.logs().includes('store.appendThread applies to SQLite only: it changes nothing on PostgreSQL'), 5000, 'the warning');
    } finally {
      first.child.kill('SIGTERM');
      await first.exited;
    }

    const run = reset(db.url);
    assert.equal(run.status, 0, run.stderr);
    const key = run.stdout.trim();
    const next = await spawnHerald(['serve', '--port', '0', '--data', dir, '--store', db.url], env);
    try {
      await until(() => next.stderr().includes('wait=30'), 10_000, 'the banner');
      const read = await fetch(`${next.url}/v1/channels/demo/events`, { headers: { authorization: `Bearer ${key}` } });
      assert.equal(read.status, 200);
    } finally {
      next.child.kill('SIGTERM');
      await next.exited;
    }
  });

  it('a reset reaches the running nodes within seconds: the new key works on each, the old one on none', async () => {
    const cluster = await createTestDatabase('herald_adminkey_live');
    const env = { HERALD_ADMIN_KEY: '', HERALD_TOKEN_SECRET: '' };
    const nodes: Running[] = [];
    try {
      nodes.push(await spawnHerald(['serve', '--port', '0', '--store', cluster.url, '--node-id', 'a'], env));
      const generated = /Admin key \(shown once[^)]*\): (\S+)/;
      await until(() => generated.test(nodes[0]!.stderr()), 10_000, 'the generated key');
      const old = generated.exec(nodes[0]!.stderr())![1]!;
      nodes.push(await spawnHerald(['serve', '--port', '0', '--store', cluster.url, '--node-id', 'b'], env));
      const status = async (url: string, key: string) => (await fetch(`${url}/v1/keys`, { headers: { authorization: `Bearer ${key}` } })).status;
      for (const node of nodes) assert.equal(await status(node.url, old), 200);

      const run = reset(cluster.url);
      assert.equal(run.status, 0, run.stderr);
      const fresh = run.stdout.trim();
      // Unfixed, each node kept the key it started with until its restart: two keys in one cluster.
      for (const node of nodes) {
        await until(async () => (await status(node.url, fresh)) === 200, 10_000, 'the new key taken');
        assert.equal(await status(node.url, old), 401, 'the old key refused');
      }
    } finally {
      for (const node of nodes) {
        node.child.kill('SIGTERM');
        await node.exited;
      }
      await cluster.drop();
    }
  });
});

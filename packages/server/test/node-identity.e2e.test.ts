// What a node says of itself: every log line carries the node id, a PostgreSQL node's connections are named after
// it in pg_stat_activity, and a start that upgraded the store's schema says so.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { pino } from 'pino';
import { BIN, startTestServer, until } from './helpers.js';
import { migrate, SCHEMA_VERSION } from '../src/store/sqlite/schema.js';
import { createTestDatabase } from './support/postgres.js';

it("names its node in every log line and in its PostgreSQL sessions' application_name", { timeout: 60_000 }, async () => {
  const db = await createTestDatabase('herald_identity');
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--store', db.url, '--node-id', 'node-ident-a'], {
    env: { ...process.env, HERALD_ADMIN_KEY: 'identity-admin-key-0123456789', HERALD_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const exited = once(child, 'exit');
  let stdout = '';
  child.stdout!.on('data', (d) => (stdout += d));
  const client = new pg.Client({ connectionString: db.url });
  try {
    await until(() => stdout.includes('"msg":"herald listening"'), 20_000, 'the node up');
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as { nodeId?: string; msg: string });
    assert.ok(lines.length >= 2);
    for (const line of lines) assert.equal(line.nodeId, 'node-ident-a', line.msg);
    await client.connect();
    const { rows } = await client.query<{ name: string }>('SELECT DISTINCT application_name AS name FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()');
    assert.deepEqual(rows.map((r) => r.name), ['herald:node-ident-a']);
    await client.end();
    child.kill('SIGTERM');
    await exited;
    const last = JSON.parse(stdout.trim().split('\n').at(-1)!) as { msg: string; nodeId: string };
    assert.deepEqual([last.msg, last.nodeId], ['herald stopped', 'node-ident-a'], 'the log says the stop finished');
  } finally {
    await client.end().catch(() => {});
    child.kill('SIGTERM');
    await exited;
    await db.drop();
  }
});

it('says when its start upgraded the store schema, and says nothing of a new store', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-upgrade-'));
  try {
    const old = join(dir, 'old');
    mkdirSync(old, { mode: 0o700 });
    const db = new BetterSqlite3(join(old, 'herald.db'));
    migrate(db, 9);
    db.close();
    for (const [data, expected] of [
      [old, [`store schema upgraded from 9 to ${SCHEMA_VERSION}`]],
      [join(dir, 'new'), []],
    ] as const) {
      const lines: Array<{ msg: string }> = [];
      const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
      const h = await startTestServer({}, data, { logger });
      await h.stop();
      assert.deepEqual(lines.map((l) => l.msg).filter((m) => m.startsWith('store schema')), expected, data);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

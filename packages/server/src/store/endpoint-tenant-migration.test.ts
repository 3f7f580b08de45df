import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { openSqliteStorage } from './sqlite/open.js';
import { openPostgresStorage } from './postgres/open.js';
import { migrate as migrateSqlite } from './sqlite/schema.js';
import { buildSchema as buildPostgresSchema } from './postgres/schema.js';
import { createTestDatabase } from '../../test/support/postgres.js';
import type { EndpointRecord } from './types.js';

const endpoint = (id: string, tenant?: string): EndpointRecord => ({
  id, url: `https://example.com/${id}`, channels: ['acme:*'], types: [], scheme: 'standard',
  secrets: [{ secret: 'whsec_1' }], headers: {}, maxConcurrency: 4, enabled: true, createdAt: 1000, ...(tenant ? { tenant } : {}),
});

/**
 * Endpoints written before the `tenant` column existed (their record may
 * already hold a tenant, as an endpoint's JSON keeps every field): each case
 * builds the database as the last version without the column left it, with
 * the older migrations only, then opens the store, which migrates the rest.
 */
describe('the endpoint tenant column migration', () => {
  const rows = [endpoint('ep_a', 'acme'), endpoint('ep_none')].map((e) => [e.id, JSON.stringify(e)]);

  it('SQLite (schema 5) fills the column from the records', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-tenant-'));
    try {
      const old = new BetterSqlite3(join(dir, 'herald.db'));
      migrateSqlite(old, 4);
      for (const [id, record] of rows) old.prepare('INSERT INTO endpoints (id, record) VALUES (?, ?)').run(id, record);
      old.close();

      const storage = await openSqliteStorage({ dataDir: dir });
      assert.deepEqual((await storage.deliveries.listEndpoints({ tenant: 'acme' })).map((e) => e.id), ['ep_a']);
      await storage.close();
      const check = new BetterSqlite3(join(dir, 'herald.db'), { readonly: true });
      assert.deepEqual(check.prepare('SELECT id, tenant FROM endpoints ORDER BY id').all(), [{ id: 'ep_a', tenant: 'acme' }, { id: 'ep_none', tenant: null }]);
      check.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('PostgreSQL (schema 2) fills the column from the records, and lists by it', async () => {
    const database = await createTestDatabase();
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      await buildPostgresSchema(client, 1);
      for (const [id, record] of rows) await client.query('INSERT INTO endpoints (id, record) VALUES ($1, $2)', [id, record]);

      const storage = await openPostgresStorage({ url: database.url });
      // The PostgreSQL store filters in SQL, on the column: only a filled column finds ep_a.
      assert.deepEqual((await storage.deliveries.listEndpoints({ tenant: 'acme' })).map((e) => e.id), ['ep_a']);
      await storage.close();
      const { rows: stored } = await client.query('SELECT id, tenant FROM endpoints ORDER BY id');
      assert.deepEqual(stored, [{ id: 'ep_a', tenant: 'acme' }, { id: 'ep_none', tenant: null }]);
    } finally {
      await client.end();
      await database.drop();
    }
  });
});

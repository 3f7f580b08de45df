import { after, before } from 'node:test';
import pg from 'pg';
import { describeEventStoreConformance } from '../event-store.conformance.js';
import { describeKeyStoreConformance } from '../key-store.conformance.js';
import { describeSourceStoreConformance } from '../source-store.conformance.js';
import { describeDeliveryStoreConformance } from '../delivery-store.conformance.js';
import { describeClusterStoreConformance } from '../cluster-store.conformance.js';
import type { OpenStorage } from '../storage-harness.js';
import { createTestDatabase, type TestDatabase } from '../../../test/support/postgres.js';
import { openPostgresStorage } from './open.js';
import type { Storage } from '../types.js';

let database: TestDatabase;
before(async () => {
  database = await createTestDatabase();
});
after(async () => {
  await database.drop();
});

/**
 * A store on an empty log: every test starts from nothing, as with a new
 * SQLite directory, but the database (migrated once) and its epoch stay.
 */
async function openEmpty(): Promise<Storage> {
  const storage = await openPostgresStorage({ url: database.url });
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  try {
    const { rows } = await client.query<{ tablename: string }>(
      "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename NOT IN ('schema_versions', 'settings')",
    );
    await client.query(`TRUNCATE ${rows.map((r) => r.tablename).join(', ')} RESTART IDENTITY`);
  } finally {
    await client.end();
  }
  return storage;
}

describeEventStoreConformance('postgres', async () => {
  let storage = await openEmpty();
  return {
    store: storage.events,
    async reopen() {
      await storage.close();
      storage = await openPostgresStorage({ url: database.url });
      return storage.events;
    },
    async cleanup() {
      await storage.close();
    },
  };
});

const openStorage: OpenStorage = async () => {
  const storage = await openEmpty();
  return { storage, cleanup: () => storage.close() };
};

describeKeyStoreConformance('postgres', openStorage);
describeSourceStoreConformance('postgres', openStorage);
describeDeliveryStoreConformance('postgres', openStorage);
describeClusterStoreConformance('postgres', openStorage);

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeEventStoreConformance } from '../event-store.conformance.js';
import { describeKeyStoreConformance } from '../key-store.conformance.js';
import { describeSourceStoreConformance } from '../source-store.conformance.js';
import { describeDeliveryStoreConformance } from '../delivery-store.conformance.js';
import { describeClusterStoreConformance } from '../cluster-store.conformance.js';
import type { OpenStorage } from '../storage-harness.js';
import { openSqliteStorage } from './open.js';
import type { Storage } from '../types.js';

describeEventStoreConformance('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-store-'));
  let storage: Storage = await openSqliteStorage({ dataDir: dir });
  return {
    store: storage.events,
    async reopen() {
      await storage.close();
      storage = await openSqliteStorage({ dataDir: dir });
      return storage.events;
    },
    async cleanup() {
      await storage.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

// On disk rather than in memory: the delivery store then uses its second connection, as in production.
const openOnDisk: OpenStorage = async () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-store-'));
  const storage = await openSqliteStorage({ dataDir: dir });
  return {
    storage,
    async cleanup() {
      await storage.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
};

describeKeyStoreConformance('sqlite', openOnDisk);
describeSourceStoreConformance('sqlite', openOnDisk);
describeDeliveryStoreConformance('sqlite', openOnDisk);
describeClusterStoreConformance('sqlite', openOnDisk);

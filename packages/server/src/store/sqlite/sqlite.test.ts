import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeEventStoreConformance } from '../event-store.conformance.js';
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

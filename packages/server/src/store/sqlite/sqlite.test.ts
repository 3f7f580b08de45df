import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, truncateSync } from 'node:fs';
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

test('a database too big for a full check at start-up still opens, WITHOUT ROWID tables and all', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-store-'));
  try {
    const first = await openSqliteStorage({ dataDir: dir });
    await first.events.append({ events: [{ channel: 'c', id: 'evt_big_file', type: 't', data: { n: 1 }, time: 1 }] });
    await first.settings.set('kept', 'yes');
    await first.close();
    // Past the full-check size, sparsely: start-up then reads the first and last row of every table instead.
    truncateSync(join(dir, 'herald.db'), 600 * 1024 * 1024);
    const again = await openSqliteStorage({ dataDir: dir });
    assert.deepEqual((await again.events.read('c', 0, 10)).events.map((e) => e.id), ['evt_big_file']);
    assert.equal(await again.settings.get('kept'), 'yes');
    await again.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

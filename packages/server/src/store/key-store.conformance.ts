import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ApiKeyRecord } from './types.js';
import { useStorage, type OpenStorage } from './storage-harness.js';

function key(id: string, createdAt: number, extra: Partial<ApiKeyRecord> = {}): ApiKeyRecord {
  return { id, name: `key ${id}`, scopes: ['publish', 'subscribe'], channels: ['orders', 'user:*'], prefix: `hk_${id}`, hash: `hash-${id}`, createdAt, ...extra };
}

/** The contract of KeyStore and SettingsStore, for every backend. */
export function describeKeyStoreConformance(name: string, open: OpenStorage): void {
  describe(`KeyStore and SettingsStore conformance: ${name}`, () => {
    const storage = useStorage(open);

    it('finds a key by id and by hash, with every field', async () => {
      const record = key('k1', 1000);
      await storage().keys.insert(record);
      assert.deepEqual(await storage().keys.get('k1'), { ...record, revokedAt: undefined });
      assert.deepEqual(await storage().keys.findByHash('hash-k1'), { ...record, revokedAt: undefined });
      assert.equal(await storage().keys.get('nope'), undefined);
      assert.equal(await storage().keys.findByHash('nope'), undefined);
    });

    it('refuses a second key with the same id or hash', async () => {
      await storage().keys.insert(key('k1', 1000));
      await assert.rejects(storage().keys.insert(key('k1', 2000, { hash: 'other' })));
      await assert.rejects(storage().keys.insert(key('k2', 2000, { hash: 'hash-k1' })));
      assert.equal((await storage().keys.list()).length, 1);
    });

    it('lists keys oldest first, ties by id', async () => {
      await storage().keys.insert(key('b', 2000));
      await storage().keys.insert(key('c', 1000));
      await storage().keys.insert(key('a', 2000));
      assert.deepEqual((await storage().keys.list()).map((k) => k.id), ['c', 'a', 'b']);
    });

    it('revokes once, and keeps the first revocation time', async () => {
      await storage().keys.insert(key('k1', 1000));
      assert.equal(await storage().keys.revoke('k1', 5000), true);
      assert.equal(await storage().keys.revoke('k1', 6000), false);
      assert.equal(await storage().keys.revoke('nope', 6000), false);
      assert.equal((await storage().keys.get('k1'))!.revokedAt, 5000);
      assert.equal((await storage().keys.findByHash('hash-k1'))!.revokedAt, 5000);
    });

    it('sets a setting only once, even when raced', async () => {
      assert.equal(await storage().settings.get('admin'), undefined);
      const values = await Promise.all(['a', 'b', 'c'].map((v) => storage().settings.setIfAbsent('admin', v)));
      assert.equal(new Set(values).size, 1, 'every caller sees the one stored value');
      assert.equal(await storage().settings.get('admin'), values[0]);
      assert.equal(await storage().settings.setIfAbsent('admin', 'later'), values[0]);
    });
  });
}

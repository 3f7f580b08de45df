import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { SourceRecord } from './types.js';
import { useStorage, type OpenStorage } from './storage-harness.js';

function source(name: string, extra: Partial<SourceRecord> = {}): SourceRecord {
  return { name, provider: 'stripe', channel: `in:${name}`, tolerance: 300, secrets: [{ secret: `whsec_${name}` }], createdAt: 1000, ...extra };
}

/** The contract of SourceStore, for every backend. */
export function describeSourceStoreConformance(name: string, open: OpenStorage): void {
  describe(`SourceStore conformance: ${name}`, () => {
    const storage = useStorage(open);

    it('inserts a source once and reads it back exactly', async () => {
      const record = source('stripe-live', { provider: 'github', secrets: [{ secret: 'new' }, { secret: 'old', expiresAt: 99_000 }] });
      assert.equal(await storage().sources.insert(record), true);
      assert.equal(await storage().sources.insert(source('stripe-live', { channel: 'other' })), false);
      assert.deepEqual(await storage().sources.get('stripe-live'), record);
      assert.equal(await storage().sources.get('nope'), undefined);
    });

    it('lists sources by name', async () => {
      for (const n of ['b', 'C', 'a']) await storage().sources.insert(source(n));
      assert.deepEqual((await storage().sources.list()).map((s) => s.name), ['C', 'a', 'b']);
    });

    it('replaces the secrets of an existing source only', async () => {
      await storage().sources.insert(source('s'));
      const secrets = [{ secret: 'rotated' }, { secret: 'whsec_s', expiresAt: 5000 }];
      assert.equal(await storage().sources.setSecrets('s', secrets), true);
      assert.equal(await storage().sources.setSecrets('nope', secrets), false);
      assert.deepEqual((await storage().sources.get('s'))!.secrets, secrets);
    });

    it('deletes a source once', async () => {
      await storage().sources.insert(source('s'));
      assert.equal(await storage().sources.delete('s'), true);
      assert.equal(await storage().sources.delete('s'), false);
      assert.equal(await storage().sources.get('s'), undefined);
      assert.equal(await storage().sources.insert(source('s')), true, 'the name is free again');
    });
  });
}

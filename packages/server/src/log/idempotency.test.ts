import { it } from 'node:test';
import assert from 'node:assert/strict';
import { idempotencyStoreKey, principalScope } from './idempotency.js';
import type { Principal } from '../auth/principal.js';

const principal = (p: Partial<Principal> & Pick<Principal, 'kind' | 'id'>): Principal => ({ admin: false, subscribe: [], publish: [], ...p });

it('keys no two different lists of parts alike, however the parts are cut', () => {
  assert.equal(idempotencyStoreKey('ingest', 'stripe-live', 'evt_1'), '["ingest","stripe-live","evt_1"]');
  const keys = [
    idempotencyStoreKey('pub', '42:k1'),
    idempotencyStoreKey('pub:42', 'k1'),
    idempotencyStoreKey('pub', '42', 'k1'),
    idempotencyStoreKey('ingest', 'a', 'evt_1'),
    idempotencyStoreKey('ingest', 'b', 'evt_1'),
    idempotencyStoreKey('ingest', 'a","evt_1'),
  ];
  assert.equal(new Set(keys).size, keys.length);
});

it('scopes an Idempotency-Key to the API key, or to the token subject under its minting key', () => {
  assert.deepEqual(principalScope(principal({ kind: 'key', id: 'key_1' })), ['key', 'key_1']);
  assert.deepEqual(principalScope(principal({ kind: 'admin', id: 'admin', admin: true })), ['admin', 'admin']);
  assert.deepEqual(principalScope(principal({ kind: 'token', id: 'user-1', keyId: 'key_1' })), ['token', 'key_1', 'user-1']);
  assert.deepEqual(principalScope(principal({ kind: 'token', id: 'user-1' })), ['token', '', 'user-1'], 'an offline-minted token');
  // The same subject under two minting keys, and a key whose id equals a token subject, are all apart.
  const scopes = [
    principalScope(principal({ kind: 'token', id: 'u', keyId: 'k1' })),
    principalScope(principal({ kind: 'token', id: 'u', keyId: 'k2' })),
    principalScope(principal({ kind: 'key', id: 'u' })),
  ].map((parts) => idempotencyStoreKey(...parts));
  assert.equal(new Set(scopes).size, 3);
});

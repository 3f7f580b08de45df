import { it } from 'node:test';
import assert from 'node:assert/strict';
import { openSqliteStorage } from '../store/sqlite/open.js';
import { StartupError } from '../startup-error.js';
import { Authenticator } from './authenticator.js';
import { generateApiKey } from './secrets.js';

const ADMIN_KEY = 'configured-admin-key-0123456789abcdef';
const SECRET = 'configured-token-secret-0123456789abcdef';

it('a node started without the admin key and token secret its peers were given takes their admin key, and refuses to start rather than sign other tokens', async () => {
  const storage = await openSqliteStorage({ dataDir: ':memory:' });
  try {
    const warnings: string[] = [];
    const warn = (message: string) => warnings.push(message);
    const configured = await Authenticator.create({ adminKey: ADMIN_KEY, tokenSecret: SECRET }, storage.keys, storage.settings, warn);
    assert.equal(configured.generatedAdminKey, undefined);
    assert.deepEqual(warnings, [], 'the first configured start replaces nothing');

    // Before, this node generated an admin key and a token secret of its own, and served: the cluster's admin key got
    // 401 on it, and so did the tokens minted on the others.
    await assert.rejects(Authenticator.create({}, storage.keys, storage.settings, warn), (e: unknown) => e instanceof StartupError && /HERALD_TOKEN_SECRET/.test(e.message));
    assert.equal(await storage.settings.get('token_secret'), undefined, 'the refused start generated no secret');
    const withSecretOnly = await Authenticator.create({ tokenSecret: SECRET }, storage.keys, storage.settings, warn);
    assert.equal(withSecretOnly.generatedAdminKey, undefined, 'no admin key of its own');
    assert.equal((await withSecretOnly.authenticator.authenticate(ADMIN_KEY))?.kind, 'admin', "the cluster's admin key");
    const { token } = await configured.authenticator.tokens.mint({ sub: 'u', channels: ['a'] }, 60);
    assert.equal((await withSecretOnly.authenticator.authenticate(token))?.id, 'u');
    assert.deepEqual(warnings, []);

    // A rotation (or a node given another key) is said once, when it replaces what the store held.
    await Authenticator.create({ adminKey: `${ADMIN_KEY}-new`, tokenSecret: `${SECRET}-new` }, storage.keys, storage.settings, warn);
    assert.equal(warnings.length, 2);
    assert.match(warnings[0]!, /HERALD_ADMIN_KEY replaced the admin key the store held/);
    assert.match(warnings[1]!, /HERALD_TOKEN_SECRET replaced the token secret/);
    await Authenticator.create({ adminKey: `${ADMIN_KEY}-new`, tokenSecret: `${SECRET}-new` }, storage.keys, storage.settings, warn);
    assert.equal(warnings.length, 2, 'nothing to say at the next start');
    const afterRotation = await Authenticator.create({ tokenSecret: `${SECRET}-new` }, storage.keys, storage.settings, warn);
    await assert.rejects(afterRotation.authenticator.authenticate(ADMIN_KEY), /not valid/, 'the old admin key');
    assert.equal((await afterRotation.authenticator.authenticate(`${ADMIN_KEY}-new`))?.kind, 'admin');
  } finally {
    await storage.close();
  }
});

it('nodes started without either share what the first generated, as before', async () => {
  const storage = await openSqliteStorage({ dataDir: ':memory:' });
  try {
    const first = await Authenticator.create({}, storage.keys, storage.settings);
    assert.ok(first.generatedAdminKey);
    const second = await Authenticator.create({}, storage.keys, storage.settings);
    assert.equal(second.generatedAdminKey, undefined);
    assert.equal((await second.authenticator.authenticate(first.generatedAdminKey))?.kind, 'admin');
    const { token } = await first.authenticator.tokens.mint({ sub: 'u', channels: ['a'] }, 60);
    assert.equal((await second.authenticator.authenticate(token))?.id, 'u');
  } finally {
    await storage.close();
  }
});

it('one node started once with a token secret and then without it is refused, and told how to go on', async () => {
  const storage = await openSqliteStorage({ dataDir: ':memory:' });
  try {
    await Authenticator.create({}, storage.keys, storage.settings);
    await Authenticator.create({ tokenSecret: SECRET }, storage.keys, storage.settings);
    // The message once spoke of "the other nodes of this store", on a store that never had another.
    await assert.rejects(Authenticator.create({}, storage.keys, storage.settings), (e: unknown) => {
      assert.ok(e instanceof StartupError);
      assert.match(e.message, /was started with a HERALD_TOKEN_SECRET \(by this node or another of its nodes\)/);
      assert.match(e.message, /start with the same one, or with a new one to replace it/);
      return true;
    });
    const again = await Authenticator.create({ tokenSecret: SECRET }, storage.keys, storage.settings);
    const { token } = await again.authenticator.tokens.mint({ sub: 'u', channels: ['a'] }, 60);
    assert.equal((await again.authenticator.authenticate(token))?.id, 'u');
  } finally {
    await storage.close();
  }
});

it('a key seen before is not hashed again, and is still refused the moment it is revoked', async () => {
  const storage = await openSqliteStorage({ dataDir: ':memory:' });
  try {
    const { authenticator } = await Authenticator.create({ adminKey: ADMIN_KEY, tokenSecret: SECRET }, storage.keys, storage.settings);
    const publisher = generateApiKey();
    await storage.keys.insert({ id: 'key_pub', name: 'pub', scopes: ['publish'], channels: ['orders:*'], prefix: publisher.prefix, hash: publisher.hash, createdAt: Date.now() });
    // Each twice: the second answer comes from what the first remembered, and must be the same.
    for (let i = 0; i < 2; i++) {
      assert.equal((await authenticator.authenticate(ADMIN_KEY))?.kind, 'admin');
      const principal = await authenticator.authenticate(publisher.key);
      assert.deepEqual({ kind: principal?.kind, admin: principal?.admin, publish: principal?.publish }, { kind: 'key', admin: false, publish: ['orders:*'] });
      await assert.rejects(authenticator.authenticate(`${publisher.key}x`), /not valid/, 'a made-up key, every time');
      await assert.rejects(authenticator.authenticate(`${ADMIN_KEY}x`), /not valid/);
    }
    assert.ok(await storage.keys.revoke('key_pub', Date.now()));
    await assert.rejects(authenticator.authenticate(publisher.key), /not valid/, 'revoked: refused at once');
    assert.equal((await authenticator.authenticate(ADMIN_KEY))?.kind, 'admin');
    // More keys than are remembered: each still authenticates as itself.
    const many = Array.from({ length: 1100 }, (_, i) => ({ ...generateApiKey(), id: `key_${i}` }));
    for (const k of many) await storage.keys.insert({ id: k.id, name: k.id, scopes: ['subscribe'], channels: [k.id], prefix: k.prefix, hash: k.hash, createdAt: Date.now() });
    for (const k of [...many, ...many.slice(0, 50)]) assert.equal((await authenticator.authenticate(k.key))?.id, k.id);
    assert.equal((await authenticator.authenticate(ADMIN_KEY))?.kind, 'admin', 'the admin key after the others pushed it out');
  } finally {
    await storage.close();
  }
});

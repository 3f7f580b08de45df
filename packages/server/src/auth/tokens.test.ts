import { it } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT, decodeJwt, decodeProtectedHeader } from 'jose';
import { HeraldError } from '@herald/protocol';
import { looksLikeJwt, MAX_TOKEN_PATTERNS, TokenService } from './tokens.js';

const SECRET = 'a-test-secret-of-enough-length-0123456789';
const service = new TokenService(SECRET);
const key = new TextEncoder().encode(SECRET);

/** A token signed with the service's secret but with claims a well-behaved `mint` would never write. */
async function handMade(payload: Record<string, unknown>, options: { alg?: string; exp?: number | null; sub?: string | null; secret?: Uint8Array } = {}) {
  let jwt = new SignJWT(payload).setProtectedHeader({ alg: options.alg ?? 'HS256' }).setIssuedAt();
  if (options.sub !== null) jwt = jwt.setSubject(options.sub ?? 'user-1');
  if (options.exp !== null) jwt = jwt.setExpirationTime(options.exp ?? Math.floor(Date.now() / 1000) + 60);
  return jwt.sign(options.secret ?? key);
}

const refusedWith = (message: RegExp) => (e: unknown) => e instanceof HeraldError && e.code === 'unauthorized' && message.test(e.message);

it('mints an HS256 JWT that verifies to the same subject, channels, publish patterns, expiry and key', async () => {
  const before = Math.floor(Date.now() / 1000);
  const { token, expiresAt } = await service.mint({ sub: 'user-1', channels: ['user:1', 'news.*'], publish: ['chat:1'] }, 120, 'key_abc');
  const after = Math.floor(Date.now() / 1000);
  assert.ok(expiresAt >= before + 120 && expiresAt <= after + 120, 'expiresAt is now plus the ttl, in unix seconds');
  assert.deepEqual(decodeProtectedHeader(token), { alg: 'HS256', typ: 'JWT' });
  const claims = decodeJwt(token);
  assert.equal(claims.exp, expiresAt);
  assert.equal(typeof claims.iat, 'number');
  assert.deepEqual(await service.verify(token), {
    kind: 'token',
    id: 'user-1',
    admin: false,
    subscribe: ['user:1', 'news.*'],
    publish: ['chat:1'],
    expiresAt: expiresAt * 1000,
    keyId: 'key_abc',
  });
});

it('leaves out publish and kid when there are none, and verifies them as empty and absent', async () => {
  const { token } = await service.mint({ sub: 'reader', channels: ['a'] }, 60);
  const claims = decodeJwt(token);
  assert.equal('publish' in claims, false);
  assert.equal('kid' in claims, false);
  const principal = await service.verify(token);
  assert.deepEqual(principal.publish, []);
  assert.equal(principal.keyId, undefined);
});

it('takes missing channels as none', async () => {
  const principal = await service.verify(await handMade({}));
  assert.deepEqual(principal.subscribe, []);
  assert.deepEqual(principal.publish, []);
});

it('refuses an expired token, saying it expired', async () => {
  const token = await handMade({ channels: ['a'] }, { exp: Math.floor(Date.now() / 1000) - 10 });
  await assert.rejects(service.verify(token), refusedWith(/^The token has expired\.$/));
});

it('refuses a token signed with another secret, another algorithm, or altered', async () => {
  const invalid = refusedWith(/^The token is not valid\.$/);
  await assert.rejects(service.verify(await handMade({ channels: ['a'] }, { secret: new TextEncoder().encode('another secret of enough length 0123') })), invalid);
  await assert.rejects(service.verify(await handMade({ channels: ['a'] }, { alg: 'HS512' })), invalid, 'only HS256 is accepted');
  const { token } = await service.mint({ sub: 'user-1', channels: ['user:1'] }, 60);
  const [header, , signature] = token.split('.');
  const widened = Buffer.from(JSON.stringify({ ...decodeJwt(token), channels: ['*'] })).toString('base64url');
  await assert.rejects(service.verify(`${header}.${widened}.${signature}`), invalid);
  await assert.rejects(service.verify('not a token'), invalid);
});

it('requires sub and exp', async () => {
  const invalid = refusedWith(/^The token is not valid\.$/);
  await assert.rejects(service.verify(await handMade({ channels: ['a'] }, { sub: null })), invalid);
  await assert.rejects(service.verify(await handMade({ channels: ['a'] }, { exp: null })), invalid);
});

it('refuses channels or publish that are not lists of valid patterns, or too many of them', async () => {
  const badClaims = refusedWith(/must be lists of at most 100 valid channel patterns/);
  const many = Array.from({ length: MAX_TOKEN_PATTERNS }, (_, i) => `c${i}`);
  assert.equal((await service.verify(await handMade({ channels: many, publish: many }))).subscribe.length, MAX_TOKEN_PATTERNS);
  for (const claim of ['channels', 'publish']) {
    for (const value of ['a', { a: 1 }, ['ok', 'bad name'], [''], [7], [...many, 'one-more']]) {
      await assert.rejects(service.verify(await handMade({ [claim]: value })), badClaims, `${claim}: ${JSON.stringify(value).slice(0, 40)}`);
    }
  }
});

it('refuses a kid that is not a string', async () => {
  await assert.rejects(service.verify(await handMade({ channels: ['a'], kid: 42 })), refusedWith(/`kid` must be a key id/));
  assert.equal((await service.verify(await handMade({ channels: ['a'], kid: 'key_1' }))).keyId, 'key_1');
});

it('refuses a sub that is not a string (jose checks only that it is there)', async () => {
  for (const sub of [42, null, ['a', 'b'], { id: 'x' }]) {
    await assert.rejects(service.verify(await handMade({ channels: ['a'], sub }, { sub: null })), refusedWith(/`sub` must be a string/), JSON.stringify(sub));
  }
});

it('makes secrets of 32 random bytes', () => {
  const a = TokenService.generateSecret();
  assert.match(a, /^[A-Za-z0-9_-]{43}$/);
  assert.notEqual(a, TokenService.generateSecret());
});

it('tells a JWT from an API key by its shape', () => {
  assert.equal(looksLikeJwt('eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln'), true);
  assert.equal(looksLikeJwt('eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0'), false, 'two parts');
  assert.equal(looksLikeJwt('eyJa.b.c.d'), false, 'four parts');
  assert.equal(looksLikeJwt('hk_live.abc.def'), false, 'not a JSON header');
});

it('mints portal session tokens that grant their tenant’s endpoints and no channel, whatever else they claim', async () => {
  const scope = { tenant: 'acme', channels: ['acme:*'], eventTypes: ['order.created'] };
  const { token, expiresAt } = await service.mintPortal(scope, 300, 'key_portal');
  const claims = decodeJwt(token);
  assert.equal(claims.sub, 'portal:acme');
  assert.equal(claims.exp, expiresAt);
  assert.deepEqual(await service.verify(token), {
    kind: 'portal',
    id: 'portal:acme',
    admin: false,
    subscribe: [],
    publish: [],
    expiresAt: expiresAt * 1000,
    keyId: 'key_portal',
    portal: scope,
  });
  // A hand-made token with both a portal claim and channels is still only a portal session.
  const both = await handMade({ portal: { tenant: 'acme', channels: ['acme:*'] }, channels: ['*'], publish: ['*'] });
  const principal = await service.verify(both);
  assert.equal(principal.kind, 'portal');
  assert.deepEqual([principal.subscribe, principal.publish], [[], []]);
  await assert.rejects(service.verify(await handMade({ portal: { tenant: 'a:b', channels: [] } })), (e: unknown) => e instanceof HeraldError);
});

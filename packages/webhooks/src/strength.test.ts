import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { generateSecret, secretWeakness, type Scheme } from './index.js';

const strong = (scheme: Scheme, secret: string) => assert.equal(secretWeakness(scheme, secret), undefined, `${scheme}: ${secret}`);
const weak = (scheme: Scheme, secret: string) => assert.ok(secretWeakness(scheme, secret), `${scheme}: ${secret} should be weak`);

it("accepts every provider's real secret format, and every secret Herald generates", () => {
  strong('standard', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'); // the Standard Webhooks test vector: 24 bytes
  strong('standard', 'MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'); // the same without the prefix
  strong('standard', `whpk_${randomBytes(32).toString('base64')}`);
  strong('stripe', 'whsec_oZ8nus9PHnoltEtWZ3pGITZdeHWHoqnL'); // as `stripe listen` prints it: 32 after the prefix
  strong('stripe', `whsec_${randomBytes(32).toString('hex')}`);
  strong('github', "It's a Secret to Everybody"); // GitHub's docs
  // 16 hex characters, the minimum: a fixed one, since 16 drawn at random show fewer than six distinct characters about
  // once in 30,000 draws (and are refused as too predictable).
  strong('github', '3f9a0c7be41d6528');
  strong('shopify', randomBytes(16).toString('hex')); // an app's client secret
  strong('shopify', `shpss_${randomBytes(16).toString('hex')}`);
  strong('shopify', randomBytes(32).toString('hex')); // a webhook made in the admin
  strong('slack', '8f742231b10e8888abcd99yyyzzz85a5'); // Slack's docs
  for (const scheme of ['standard', 'stripe', 'github', 'shopify', 'slack'] as const) strong(scheme, generateSecret());
  // The published vectors of each provider with a real-looking secret.
  const { vectors } = JSON.parse(readFileSync(new URL('../test-vectors/webhook-signatures.json', import.meta.url), 'utf8')) as { vectors: Array<{ scheme: string; secret: string }> };
  for (const v of vectors) if (['standard', 'slack'].includes(v.scheme) || v.secret.length >= 16) strong(v.scheme as Scheme, v.secret);
});

it('refuses short, malformed and repetitive secrets, without echoing them', () => {
  weak('standard', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2La'); // 21 bytes
  weak('standard', `whsec_${randomBytes(23).toString('base64')}`);
  weak('standard', `whsec_${Buffer.alloc(32, 9).toString('base64')}`);
  weak('standard', 'whsec_not base64');
  weak('standard', '');
  weak('stripe', 'whsec_kill');
  weak('stripe', `whsec_${randomBytes(11).toString('hex')}x`); // 23 after the prefix
  weak('stripe', `whsec_${'ab'.repeat(30)}`);
  weak('github', 'mysecret');
  weak('github', 'fifteen-chars!!');
  weak('github', 'x'.repeat(100));
  weak('shopify', randomBytes(15).toString('hex') + 'a');
  weak('slack', 'slack-signing-secret');
  const secret = 'whsec_' + 'Zq'.repeat(40);
  assert.ok(!secretWeakness('stripe', secret)!.includes('ZqZq'));
});

it('draws each line exactly at the minimum length and at six distinct characters, and says which line was crossed', () => {
  const varied = (n: number) => 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ'.repeat(3).slice(0, n);
  assert.equal(secretWeakness('github', varied(16)), undefined);
  assert.equal(secretWeakness('github', varied(15)), 'A github secret must have at least 16 characters; this one has 15.');
  assert.equal(secretWeakness('slack', varied(31)), 'A slack secret must have at least 32 characters; this one has 31.');
  assert.equal(secretWeakness('shopify', varied(32)), undefined);
  assert.equal(secretWeakness('stripe', `whsec_${varied(24)}`), undefined);
  assert.equal(secretWeakness('stripe', `whsec_${varied(23)}`), 'A stripe secret must have at least 24 characters after `whsec_`; this one has 23.');
  assert.equal(secretWeakness('stripe', varied(24)), undefined, 'without the prefix the whole secret counts');
  assert.equal(secretWeakness('stripe', `whsec${varied(19)}`), undefined, 'whsec without the underscore is not the prefix');
  assert.equal(secretWeakness('github', `whsec_${varied(10)}`), undefined, 'only Stripe secrets have the prefix taken off');
  // Six distinct characters pass, five do not, whatever the length.
  assert.equal(secretWeakness('github', 'abcdef'.repeat(3)), undefined);
  assert.equal(secretWeakness('github', 'abcde'.repeat(4)), 'The secret is too predictable: its characters barely vary.');
  // Characters, not UTF-16 units: 16 emoji are 16 characters.
  assert.equal(secretWeakness('github', '😀😁😂🤣😃😄'.repeat(3).slice(0, 32)), undefined);
  assert.equal(secretWeakness('github', '😀😁😂🤣😃😄😅'.slice(0, 14)), 'A github secret must have at least 16 characters; this one has 7.');
  assert.equal(secretWeakness('github', ''), 'The secret is empty.');
  assert.equal(secretWeakness('nope' as Scheme, 'x'.repeat(40)), 'Unknown scheme "nope".');
  assert.equal(secretWeakness('github', 42 as unknown as string), 'The secret is empty.');
});

it('judges Standard Webhooks secrets by the bytes behind the base64', () => {
  const bytes = (n: number, distinct = 256) => Buffer.from(Array.from({ length: n }, (_, i) => i % distinct));
  assert.equal(secretWeakness('standard', `whsec_${bytes(24).toString('base64')}`), undefined);
  assert.equal(secretWeakness('standard', bytes(24).toString('base64')), undefined, 'plain base64');
  assert.equal(secretWeakness('standard', `whsec_${bytes(23).toString('base64')}`), 'A Standard Webhooks secret must decode to at least 24 bytes; this one has 23.');
  assert.equal(secretWeakness('standard', `whsec_${bytes(24, 6).toString('base64')}`), undefined, 'six distinct bytes');
  assert.equal(secretWeakness('standard', `whsec_${bytes(24, 5).toString('base64')}`), 'The secret is too predictable: its bytes barely vary.');
  assert.equal(secretWeakness('standard', 'whsec_!!'), 'A Standard Webhooks secret is `whsec_` followed by base64.');
  // Junk before or after good base64 is still not base64 (a decoder would skip it silently).
  assert.equal(secretWeakness('standard', `whsec_!!${bytes(24).toString('base64')}`), 'A Standard Webhooks secret is `whsec_` followed by base64.');
  assert.equal(secretWeakness('standard', `whsec_${bytes(24).toString('base64')}!!`), 'A Standard Webhooks secret is `whsec_` followed by base64.');
});

it('refuses Ed25519 keys that do not parse, which would fail every verification, the other secrets of a rotation included', () => {
  assert.equal(secretWeakness('standard', `whsk_${randomBytes(32).toString('base64')}`), undefined, 'a 32-byte seed');
  assert.equal(secretWeakness('standard', `whsk_${randomBytes(64).toString('base64')}`), undefined, "libsodium's seed and public key");
  assert.equal(secretWeakness('standard', 'whpk_AAAA'), 'A whpk_ key holds 32 bytes.', 'a truncated public key');
  assert.equal(secretWeakness('standard', `whsk_${randomBytes(31).toString('base64')}`), 'A whsk_ key holds 32 or 64 bytes.');
  assert.equal(secretWeakness('standard', 'whsk_not base64!'), 'A whsk_ secret is base64 after the prefix.');
});

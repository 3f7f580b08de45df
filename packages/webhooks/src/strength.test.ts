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
  strong('github', randomBytes(8).toString('hex')); // 16 hex characters, the minimum
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

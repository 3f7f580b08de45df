// The edges of each scheme and of the package's entry points: what each header must look like, what each
// refusal says, and where the id and timestamp of a verified request come from.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { DEFAULT_TOLERANCE_SECONDS, generateSecret, SCHEME_NAMES, sign, verify, verifyWebhook, WebhookVerificationError, type Scheme } from './index.js';
import { MAX_ASYMMETRIC_SIGNATURES } from './schemes/standard.js';

const NOW = 1_700_000_000;
const BODY = '{"ok":true}';
const STANDARD = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

const failsWith = (code: string, message?: string | RegExp) => (e: unknown) =>
  e instanceof WebhookVerificationError &&
  e.code === code &&
  (message === undefined || (typeof message === 'string' ? e.message === message : message.test(e.message)));

it('lists its schemes, and refuses an unknown one by name', () => {
  assert.deepEqual(SCHEME_NAMES, ['standard', 'stripe', 'github', 'shopify', 'slack']);
  assert.equal(DEFAULT_TOLERANCE_SECONDS, 300);
  assert.equal(verifyWebhook, verify);
  const unknown = 'nope' as Scheme;
  const message = 'Unknown scheme "nope"; use one of standard, stripe, github, shopify, slack.';
  assert.throws(() => sign(unknown, { secret: 's', body: BODY }), failsWith('invalid_secret', message));
  assert.throws(() => verify(unknown, { secret: 's', headers: {}, body: BODY }), failsWith('invalid_secret', message));
});

it('signs with a random msg_ id and the current time when none is given, and verifies against now by default', () => {
  const before = Math.floor(Date.now() / 1000);
  const headers = sign('standard', { secret: STANDARD, body: BODY });
  const after = Math.floor(Date.now() / 1000);
  assert.match(headers['webhook-id']!, /^msg_[A-Za-z0-9_-]{22}$/);
  assert.notEqual(sign('standard', { secret: STANDARD, body: BODY })['webhook-id'], headers['webhook-id']);
  const ts = Number(headers['webhook-timestamp']);
  assert.ok(ts >= before && ts <= after);
  assert.deepEqual(verify('standard', { secret: STANDARD, headers, body: BODY }), { ok: true, scheme: 'standard', id: headers['webhook-id'], timestamp: ts });
  // A Date is read in whole seconds, and the default tolerance is 300 s.
  assert.equal(verify('standard', { secret: STANDARD, headers, body: BODY, now: new Date((ts + 300) * 1000 + 999) }).ok, true);
  assert.throws(() => verify('standard', { secret: STANDARD, headers, body: BODY, now: new Date((ts + 301) * 1000) }), failsWith('timestamp_outside_tolerance'));
  assert.throws(() => verify('standard', { secret: STANDARD, headers, body: BODY, now: ts + 301 }), failsWith('timestamp_outside_tolerance'));
  assert.equal(verify('standard', { secret: STANDARD, headers, body: BODY, now: ts + 301, tolerance: 301 }).ok, true);
  const stale = sign('stripe', { secret: 'whsec_x', body: BODY, timestamp: Math.floor(Date.now() / 1000) - 400 });
  assert.throws(() => verify('stripe', { secret: 'whsec_x', headers: stale, body: BODY }), failsWith('timestamp_outside_tolerance'), 'now by default');
});

it('makes Standard Webhooks secrets of 32 random bytes', () => {
  const secret = generateSecret();
  assert.match(secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
  assert.equal(Buffer.from(secret.slice(6), 'base64').length, 32);
  assert.notEqual(generateSecret(), secret);
});

it('github and shopify: the signature header is trimmed, needs its prefix, and the delivery id is returned when present', () => {
  const gh = sign('github', { secret: 'gh', id: 'd-0', body: BODY });
  assert.match(gh['x-hub-signature-256']!, /^sha256=[0-9a-f]{64}$/);
  // The delivery id goes with the signature, as GitHub and Shopify send it; a random one when none is given.
  assert.equal(gh['x-github-delivery'], 'd-0');
  assert.match(sign('github', { secret: 'gh', body: BODY })['x-github-delivery']!, /^msg_[A-Za-z0-9_-]{22}$/);
  assert.equal(verify('github', { secret: 'gh', headers: gh, body: BODY }).id, 'd-0');
  assert.deepEqual(verify('github', { secret: 'gh', headers: { 'x-hub-signature-256': ` ${gh['x-hub-signature-256']} ` }, body: BODY }), { ok: true, scheme: 'github' });
  assert.deepEqual(verify('github', { secret: 'gh', headers: { ...gh, 'x-github-delivery': 'd-1' }, body: BODY }), { ok: true, scheme: 'github', id: 'd-1' });
  const hex = gh['x-hub-signature-256']!.slice('sha256='.length);
  assert.throws(() => verify('github', { secret: 'gh', headers: { 'x-hub-signature-256': hex }, body: BODY }), failsWith('malformed_header', 'x-hub-signature-256 must start with "sha256=".'));
  assert.throws(() => verify('github', { secret: 'gh', headers: { 'x-hub-signature-256': `sha1=${hex}` }, body: BODY }), failsWith('malformed_header'));
  assert.throws(() => verify('github', { secret: 'gh', headers: { 'x-hub-signature-256': `sha256=${hex.slice(0, 62)}` }, body: BODY }), failsWith('no_matching_signature', 'The signature matched none of the secrets.'), 'a truncated signature');
  assert.throws(() => verify('github', { secret: 'gh', headers: { 'x-hub-signature-256': 'sha256=' }, body: BODY }), failsWith('no_matching_signature'));
  const shop = sign('shopify', { secret: 'shop', id: 'w-0', body: BODY });
  assert.match(shop['x-shopify-hmac-sha256']!, /^[A-Za-z0-9+/]{43}=$/);
  assert.equal(shop['x-shopify-webhook-id'], 'w-0');
  assert.deepEqual(verify('shopify', { secret: 'shop', headers: { ...shop, 'x-shopify-webhook-id': 'w-9' }, body: BODY }), { ok: true, scheme: 'shopify', id: 'w-9' });
  assert.deepEqual(verify('shopify', { secret: 'shop', headers: { 'x-shopify-hmac-sha256': shop['x-shopify-hmac-sha256']! }, body: BODY }), { ok: true, scheme: 'shopify' });
  assert.throws(() => verify('shopify', { secret: 'shop', headers: {}, body: BODY }), failsWith('missing_header', 'The x-shopify-hmac-sha256 header is missing.'));
  // One signature per request: the first secret signs, any secret verifies.
  assert.deepEqual(sign('github', { secrets: ['gh', 'old'], id: 'd-0', body: BODY }), gh);
  assert.equal(verify('github', { secrets: ['old', 'gh'], headers: gh, body: BODY }).ok, true);
});

it('slack: v0= of v0:{timestamp}:{body} with the timestamp header as sent', () => {
  const headers = sign('slack', { secret: 'sl', body: BODY, timestamp: NOW });
  assert.equal(headers['x-slack-request-timestamp'], String(NOW));
  assert.match(headers['x-slack-signature']!, /^v0=[0-9a-f]{64}$/);
  assert.deepEqual(verify('slack', { secret: 'sl', headers, body: BODY, now: NOW }), { ok: true, scheme: 'slack', timestamp: NOW });
  assert.deepEqual(verify('slack', { secret: 'sl', headers: { ...headers, 'x-slack-signature': ` ${headers['x-slack-signature']}` }, body: BODY, now: NOW }).timestamp, NOW);
  const hex = headers['x-slack-signature']!.slice(3);
  assert.throws(() => verify('slack', { secret: 'sl', headers: { ...headers, 'x-slack-signature': `v1=${hex}` }, body: BODY, now: NOW }), failsWith('malformed_header', 'X-Slack-Signature must start with "v0=".'));
  assert.throws(() => verify('slack', { secret: 'sl', headers: { 'x-slack-signature': headers['x-slack-signature']! }, body: BODY, now: NOW }), failsWith('missing_header', 'The x-slack-request-timestamp header is missing.'));
  assert.throws(() => verify('slack', { secret: 'sl', headers: { 'x-slack-request-timestamp': String(NOW) }, body: BODY, now: NOW }), failsWith('missing_header', 'The x-slack-signature header is missing.'));
  // The timestamp is part of what is signed: another one (still in tolerance) does not verify.
  assert.throws(() => verify('slack', { secret: 'sl', headers: { ...headers, 'x-slack-request-timestamp': String(NOW + 1) }, body: BODY, now: NOW }), failsWith('no_matching_signature', 'The signature matched none of the secrets.'));
  assert.throws(() => verify('slack', { secret: 'sl', headers: { ...headers, 'x-slack-request-timestamp': `0${NOW}` }, body: BODY, now: NOW }), failsWith('no_matching_signature'), 'signed as sent, not as parsed');
  assert.throws(() => verify('slack', { secret: 'sl', headers: { ...headers, 'x-slack-request-timestamp': String(NOW + 400) }, body: BODY, now: NOW }), failsWith('timestamp_outside_tolerance'));
  assert.throws(() => verify('slack', { secret: 'sl', headers: { ...headers, 'x-slack-signature': `v0=${hex.slice(2)}` }, body: BODY, now: NOW }), failsWith('no_matching_signature'));
});

it('stripe: t= and v1= items in any order and spacing; other items ignored; the message names what is missing', () => {
  const headers = sign('stripe', { secrets: ['whsec_a', 'whsec_b'], body: BODY, timestamp: NOW });
  const [t, v1a, v1b] = headers['stripe-signature']!.split(',') as [string, string, string];
  assert.match(t, /^t=\d+$/);
  assert.match(v1a, /^v1=[0-9a-f]{64}$/);
  assert.match(v1b, /^v1=[0-9a-f]{64}$/, 'one v1 per secret');
  assert.deepEqual(verify('stripe', { secret: 'whsec_b', headers, body: BODY, now: NOW }), { ok: true, scheme: 'stripe', timestamp: NOW });
  assert.equal(verify('stripe', { secret: 'whsec_a', headers: { 'stripe-signature': ` ${v1a} , ${t} ` }, body: BODY, now: NOW }).ok, true, 'trimmed, t last');
  assert.equal(verify('stripe', { secret: 'whsec_a', headers: { 'stripe-signature': `junk,${t},v1,${v1a}` }, body: BODY, now: NOW }).ok, true, 'items without = are skipped');
  const missing = 'Stripe-Signature needs t= and at least one v1=.';
  assert.throws(() => verify('stripe', { secret: 'whsec_a', headers: { 'stripe-signature': t }, body: BODY, now: NOW }), failsWith('malformed_header', missing));
  assert.throws(() => verify('stripe', { secret: 'whsec_a', headers: { 'stripe-signature': v1a }, body: BODY, now: NOW }), failsWith('malformed_header', missing));
  assert.throws(() => verify('stripe', { secret: 'whsec_a', headers: { 'stripe-signature': `${t},v0=${v1a.slice(3)}` }, body: BODY, now: NOW }), failsWith('malformed_header', missing), 'v0 is not v1');
  assert.throws(() => verify('stripe', { secret: 'whsec_a', headers: { 'stripe-signature': `${t},v1x` }, body: BODY, now: NOW }), failsWith('malformed_header', missing), 'an item without = is no v1');
  assert.throws(() => verify('stripe', { secret: 'whsec_c', headers, body: BODY, now: NOW }), failsWith('no_matching_signature', 'No v1 signature matched any of the secrets.'));
  assert.throws(() => verify('stripe', { secret: 'whsec_a', headers: { 'stripe-signature': `t=${NOW + 1},${v1a}` }, body: BODY, now: NOW }), failsWith('no_matching_signature'), 'the timestamp is signed');
  assert.throws(() => verify('stripe', { secret: 'whsec_a', headers: { 'stripe-signature': `${t},${v1a.slice(0, -2)}` }, body: BODY, now: NOW }), failsWith('no_matching_signature'), 'truncated');
});

it('standard: the headers, the id rule, and several signatures', () => {
  const headers = sign('standard', { secrets: [STANDARD, generateSecret()], id: 'msg_1', timestamp: NOW, body: BODY });
  assert.deepEqual(Object.keys(headers), ['webhook-id', 'webhook-timestamp', 'webhook-signature']);
  assert.equal(headers['webhook-id'], 'msg_1');
  assert.equal(headers['webhook-timestamp'], String(NOW));
  assert.match(headers['webhook-signature']!, /^v1,[A-Za-z0-9+/]{43}= v1,[A-Za-z0-9+/]{43}=$/);
  assert.throws(() => sign('standard', { secret: STANDARD, id: 'msg.1', body: BODY }), failsWith('invalid_secret', 'A Standard Webhooks id may not contain a full stop.'));
  // The id and the timestamp text are signed.
  assert.throws(() => verify('standard', { secret: STANDARD, headers: { ...headers, 'webhook-id': 'msg_2' }, body: BODY, now: NOW }), failsWith('no_matching_signature', 'No signature matched any of the secrets.'));
  assert.throws(() => verify('standard', { secret: STANDARD, headers: { ...headers, 'webhook-timestamp': `0${NOW}` }, body: BODY, now: NOW }), failsWith('no_matching_signature'));
  for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) {
    const { [name]: _dropped, ...rest } = headers;
    assert.throws(() => verify('standard', { secret: STANDARD, headers: rest, body: BODY, now: NOW }), failsWith('missing_header', `The ${name} header is missing.`));
  }
  const sig = headers['webhook-signature']!.split(' ')[0]!;
  assert.equal(verify('standard', { secret: STANDARD, headers: { ...headers, 'webhook-signature': `  ${sig}  ` }, body: BODY, now: NOW }).ok, true, 'extra spaces');
  assert.throws(() => verify('standard', { secret: STANDARD, headers: { ...headers, 'webhook-signature': 'v1 v1a' }, body: BODY, now: NOW }), failsWith('malformed_header', 'webhook-signature holds no version,signature pair.'));
  assert.throws(() => verify('standard', { secret: STANDARD, headers: { ...headers, 'webhook-signature': `v1a,${sig.slice(3)}` }, body: BODY, now: NOW }), failsWith('no_matching_signature'), 'an HMAC key reads v1 only');
  assert.throws(() => verify('standard', { secret: STANDARD, headers: { ...headers, 'webhook-signature': `,${sig.slice(3)}` }, body: BODY, now: NOW }), failsWith('malformed_header'), 'an empty version is no version');
});

it('standard: Svix names are read only when the webhook- ones are absent', () => {
  const h = sign('standard', { secret: STANDARD, id: 'msg_s', timestamp: NOW, body: BODY });
  const svix = { 'svix-id': h['webhook-id']!, 'svix-timestamp': h['webhook-timestamp']!, 'svix-signature': h['webhook-signature']! };
  assert.equal(verify('standard', { secret: STANDARD, headers: svix, body: BODY, now: NOW }).id, 'msg_s');
  assert.throws(() => verify('standard', { secret: STANDARD, headers: { 'svix-id': 'msg_s' }, body: BODY, now: NOW }), failsWith('missing_header', 'The svix-timestamp header is missing.'));
  // Both present: the webhook- names win, so a wrong webhook-id fails even with good svix- headers beside it.
  assert.throws(() => verify('standard', { secret: STANDARD, headers: { ...svix, 'webhook-id': 'msg_other' }, body: BODY, now: NOW }), failsWith('missing_header', 'The webhook-timestamp header is missing.'));
});

it('standard: secrets with and without whsec_, and refusals of keys that are not', () => {
  const raw = STANDARD.slice('whsec_'.length);
  const headers = sign('standard', { secret: raw, id: 'msg_1', timestamp: NOW, body: BODY });
  assert.deepEqual(headers, sign('standard', { secret: STANDARD, id: 'msg_1', timestamp: NOW, body: BODY }), 'plain base64 is the same key');
  assert.throws(() => sign('standard', { secret: 'whsec_not base64!', body: BODY }), failsWith('invalid_secret', 'A whsec_ secret is base64 after the prefix.'));
  assert.throws(() => sign('standard', { secret: 'not base64!', body: BODY }), failsWith('invalid_secret', 'The secret is not base64 (nor whsec_, whsk_ or whpk_ followed by base64).'));
  assert.throws(() => sign('standard', { secret: 'whsec_', body: BODY }), failsWith('invalid_secret'));
  assert.throws(() => sign('standard', { secret: 'whsk_AAAA', body: BODY }), failsWith('invalid_secret', 'A whsk_ key holds 32 or 64 bytes.'));
  assert.throws(() => verify('standard', { secret: 'whpk_AAAA', headers, body: BODY, now: NOW }), failsWith('invalid_secret', 'A whpk_ key holds 32 bytes.'));
  assert.throws(() => verify('standard', { secret: 'whpk_!!', headers, body: BODY, now: NOW }), failsWith('invalid_secret', 'A whpk_ secret is base64 after the prefix.'));
  assert.throws(() => sign('standard', { secret: 'whsk_!!', body: BODY }), failsWith('invalid_secret', 'A whsk_ secret is base64 after the prefix.'));
  // Junk before good base64 is refused, not skipped as a lenient decoder would.
  assert.throws(() => sign('standard', { secret: `whsec_!!${raw}`, body: BODY }), failsWith('invalid_secret', 'A whsec_ secret is base64 after the prefix.'));
  // One base64 character is not even a byte.
  assert.throws(() => sign('standard', { secret: 'whsec_A', body: BODY }), failsWith('invalid_secret', 'The whsec_ secret is empty.'));
  assert.throws(() => sign('standard', { secret: `whpk_${Buffer.alloc(32, 7).toString('base64')}`, body: BODY }), failsWith('invalid_secret', 'A whpk_ public key can verify but not sign.'));
});

it('standard v1a: a 32-byte seed or libsodium’s 64-byte key signs; the private key verifies too; only 64-byte v1a signatures count', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const seed = privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(-32);
  const pub = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  const whsk = `whsk_${seed.toString('base64')}`;
  const sodium = `whsk_${Buffer.concat([seed, pub]).toString('base64')}`;
  const whpk = `whpk_${pub.toString('base64')}`;
  const headers = sign('standard', { secret: whsk, id: 'msg_a', timestamp: NOW, body: BODY });
  assert.deepEqual(sign('standard', { secret: sodium, id: 'msg_a', timestamp: NOW, body: BODY }), headers, 'the seed is the first 32 bytes');
  assert.match(headers['webhook-signature']!, /^v1a,[A-Za-z0-9+/]{86}==$/);
  assert.deepEqual(verify('standard', { secret: whpk, headers, body: BODY, now: NOW }), { ok: true, scheme: 'standard', id: 'msg_a', timestamp: NOW });
  assert.equal(verify('standard', { secret: whsk, headers, body: BODY, now: NOW }).ok, true, 'the holder of the private key verifies with it');
  const signature = headers['webhook-signature']!.slice(4);
  const asV1 = { ...headers, 'webhook-signature': `v1,${signature}` };
  assert.throws(() => verify('standard', { secret: whpk, headers: asV1, body: BODY, now: NOW }), failsWith('no_matching_signature'), 'an Ed25519 key reads v1a only');
  const short = Buffer.from(signature, 'base64').subarray(0, 63).toString('base64');
  assert.throws(() => verify('standard', { secret: whpk, headers: { ...headers, 'webhook-signature': `v1a,${short}` }, body: BODY, now: NOW }), failsWith('no_matching_signature'));
  assert.throws(() => verify('standard', { secret: whpk, headers: { ...headers, 'webhook-signature': 'v1a,!!!' }, body: BODY, now: NOW }), failsWith('no_matching_signature'));
  // Mixed: an HMAC secret and an Ed25519 key side by side, each finds its own signature.
  const both = sign('standard', { secrets: [STANDARD, whsk], id: 'msg_b', timestamp: NOW, body: BODY });
  assert.equal(verify('standard', { secrets: [whpk], headers: both, body: BODY, now: NOW }).ok, true);
  assert.equal(verify('standard', { secrets: [STANDARD], headers: both, body: BODY, now: NOW }).ok, true);
});

it('standard v1a: a header may carry a few different signatures, each checked against the whole body; more is refused before any is checked', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const whsk = `whsk_${privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(-32).toString('base64')}`;
  const whpk = `whpk_${publicKey.export({ format: 'der', type: 'spki' }).subarray(-32).toString('base64')}`;
  const headers = sign('standard', { secret: whsk, id: 'msg_many', timestamp: NOW, body: BODY });
  const junk = (i: number) => `v1a,${Buffer.alloc(64, i + 1).toString('base64')}`;
  const withOthers = (n: number) => ({ ...headers, 'webhook-signature': [...Array.from({ length: n }, (_, i) => junk(i)), headers['webhook-signature']].join(' ') });
  assert.equal(MAX_ASYMMETRIC_SIGNATURES, 4);
  assert.equal(verify('standard', { secret: whpk, headers: withOthers(MAX_ASYMMETRIC_SIGNATURES - 1), body: BODY, now: NOW }).ok, true, 'the last of four still counts');
  assert.throws(
    () => verify('standard', { secret: whpk, headers: withOthers(MAX_ASYMMETRIC_SIGNATURES), body: BODY, now: NOW }),
    failsWith('malformed_header', 'webhook-signature holds more than 4 different v1a signatures.'),
  );
  const repeated = { ...headers, 'webhook-signature': [...Array.from({ length: 200 }, () => junk(0)), headers['webhook-signature']].join(' ') };
  assert.equal(verify('standard', { secret: whpk, headers: repeated, body: BODY, now: NOW }).ok, true, 'copies of one signature count once toward the cap');
  const hmac = sign('standard', { secret: STANDARD, id: 'msg_many', timestamp: NOW, body: BODY });
  const hmacWithOthers = { ...hmac, 'webhook-signature': [...Array.from({ length: 10 }, (_, i) => junk(i)), hmac['webhook-signature']].join(' ') };
  assert.equal(verify('standard', { secret: STANDARD, headers: hmacWithOthers, body: BODY, now: NOW }).ok, true, 'a verifier with HMAC secrets alone ignores v1a entries, however many');
});

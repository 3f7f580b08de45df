import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import { sign, verify, generateSecret, WebhookVerificationError, type Scheme } from './index.js';
import { hmacSha256 } from './bytes.js';

interface Vector {
  scheme: string;
  source: string;
  secret: string;
  id?: string;
  timestamp?: number;
  body?: string;
  expected?: Record<string, string>;
  cases?: Array<{ body: string; hex: string }>;
}
const { vectors } = JSON.parse(readFileSync(new URL('../test-vectors/webhook-signatures.json', import.meta.url), 'utf8')) as { vectors: Vector[] };

const rejects = (fn: () => unknown, code: string) =>
  assert.throws(fn, (e: unknown) => e instanceof WebhookVerificationError && e.code === code);

describe('published vectors, byte for byte', () => {
  for (const v of vectors) {
    if (v.scheme === 'stripe-hmac-primitive') {
      it(`stripe HMAC primitive (${v.source})`, () => {
        for (const c of v.cases!) assert.equal(hmacSha256(v.secret, c.body).toString('hex'), c.hex);
      });
      continue;
    }
    it(`${v.scheme}: ${v.source}`, () => {
      const scheme = v.scheme as Scheme;
      const headers = sign(scheme, { secret: v.secret, body: v.body!, ...(v.id ? { id: v.id } : {}), ...(v.timestamp ? { timestamp: v.timestamp } : {}) });
      for (const [name, value] of Object.entries(v.expected!)) assert.equal(headers[name], value);
      const now = v.timestamp ?? 0;
      const result = verify(scheme, { secret: v.secret, headers: { ...headers, ...v.expected }, body: v.body!, now });
      assert.equal(result.ok, true);
      if (v.id) assert.equal(result.id, v.id);
    });
  }
});

// Vectors computed independently with OpenSSL (`openssl dgst -sha256 -hmac`, `openssl pkeyutl -sign -rawin`).
describe('OpenSSL-computed vectors', () => {
  it('shopify: base64 HMAC of the raw body', () => {
    const headers = sign('shopify', { secret: 'shpss_secret_value', id: 'wh-1', body: '{"id":123,"email":"a@b.c"}' });
    assert.equal(headers['x-shopify-hmac-sha256'], 'dfoSdUz82C/0JFOyv0CJcgbafDin0EEei0eMFE6M9tw=');
    const ok = verify('shopify', { secret: 'shpss_secret_value', body: '{"id":123,"email":"a@b.c"}', headers });
    assert.equal(ok.id, 'wh-1');
  });

  it('stripe: t=…,v1=HMAC of {t}.{body} keyed with the whole secret string', () => {
    const body = '{"id":"evt_1","type":"charge.succeeded"}';
    const headers = sign('stripe', { secret: 'whsec_stripe_test_secret', body, timestamp: 1700000000 });
    assert.equal(headers['stripe-signature'], 't=1700000000,v1=fb22ffbfe8f82e398afe03ad6d385a59a0083f46bbd8b0ffad81467124cf7673');
    assert.equal(verify('stripe', { secret: 'whsec_stripe_test_secret', body, headers, now: 1700000100 }).timestamp, 1700000000);
  });

  it('standard v1a: ed25519 with whsk_ / whpk_ keys', () => {
    const whsk = 'whsk_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=';
    const whpk = 'whpk_ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ=';
    const body = '{"hello":"world"}';
    const headers = sign('standard', { secret: whsk, id: 'msg_v1a', timestamp: 1700000000, body });
    assert.equal(headers['webhook-signature'], 'v1a,Mk9B+7Bw6IVHnr7XgqCt3sIh05tp8wPBxFG5IEPRgzhS2x7XPjevf93GTSWPzEHxESwx6cWHWzzV1XnFYCFICg==');
    assert.equal(verify('standard', { secret: whpk, headers, body, now: 1700000000 }).id, 'msg_v1a');
    rejects(() => verify('standard', { secret: whpk, headers, body: body + ' ', now: 1700000000 }), 'no_matching_signature');
    rejects(() => sign('standard', { secret: whpk, body }), 'invalid_secret');
  });
});

describe('refusals', () => {
  const now = 1_800_000_000;
  const body = Buffer.from('{"amount":1000,"currency":"eur"}');
  const cases: Array<{ scheme: Scheme; secret: string; wrong: string }> = [
    { scheme: 'standard', secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', wrong: 'whsec_' + Buffer.from('another secret!!').toString('base64') },
    { scheme: 'stripe', secret: 'whsec_abc', wrong: 'whsec_abd' },
    { scheme: 'github', secret: 'gh-secret', wrong: 'gh-secreT' },
    { scheme: 'shopify', secret: 'shop-secret', wrong: 'shop-secreT' },
    { scheme: 'slack', secret: 'slack-secret', wrong: 'slack-secreT' },
  ];
  for (const { scheme, secret, wrong } of cases) {
    it(`${scheme}: tampered body, one changed byte, wrong secret, missing header`, () => {
      const headers = sign(scheme, { secret, body, timestamp: now, id: 'msg_1' });
      assert.equal(verify(scheme, { secret, headers, body, now }).ok, true);
      rejects(() => verify(scheme, { secret, headers, body: Buffer.from('{"amount":9999,"currency":"eur"}'), now }), 'no_matching_signature');
      const flipped = Buffer.from(body);
      flipped[5] = flipped[5]! ^ 1;
      rejects(() => verify(scheme, { secret, headers, body: flipped, now }), 'no_matching_signature');
      rejects(() => verify(scheme, { secret: wrong, headers, body, now }), 'no_matching_signature');
      // Rotation: any of several secrets may match.
      assert.equal(verify(scheme, { secrets: [wrong, secret], headers, body, now }).ok, true);
      rejects(() => verify(scheme, { secret, headers: {}, body, now }), 'missing_header');
    });
  }

  it('timestamps too old or too far in the future, for every timestamped scheme', () => {
    for (const { scheme, secret } of cases.filter((c) => c.scheme === 'standard' || c.scheme === 'stripe' || c.scheme === 'slack')) {
      const headers = sign(scheme, { secret, body, timestamp: now, id: 'msg_1' });
      rejects(() => verify(scheme, { secret, headers, body, now: now + 301 }), 'timestamp_outside_tolerance');
      rejects(() => verify(scheme, { secret, headers, body, now: now - 301 }), 'timestamp_outside_tolerance');
      assert.equal(verify(scheme, { secret, headers, body, now: now + 300 }).ok, true);
      assert.equal(verify(scheme, { secret, headers, body, now: now + 1000, tolerance: 1000 }).ok, true);
    }
  });

  it('ignores unknown versions and accepts duplicated signatures', () => {
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const headers = sign('standard', { secret, body, timestamp: now, id: 'msg_1' });
    const sig = headers['webhook-signature']!;
    const mixed = { ...headers, 'webhook-signature': `v2,abc v1,bm90LWEtc2lnbmF0dXJl ${sig} ${sig} garbage` };
    assert.equal(verify('standard', { secret, headers: mixed, body, now }).ok, true);
    rejects(() => verify('standard', { secret, headers: { ...headers, 'webhook-signature': 'v2,abc' }, body, now }), 'no_matching_signature');
    rejects(() => verify('standard', { secret, headers: { ...headers, 'webhook-signature': 'nonsense' }, body, now }), 'malformed_header');

    const stripeHeaders = sign('stripe', { secret: 'whsec_abc', body, timestamp: now });
    const [t, v1] = stripeHeaders['stripe-signature']!.split(',');
    const stripeMixed = `${t},v0=deadbeef,v1=00,${v1},${v1},v9=x`;
    assert.equal(verify('stripe', { secret: 'whsec_abc', headers: { 'Stripe-Signature': stripeMixed }, body, now }).ok, true);
    rejects(() => verify('stripe', { secret: 'whsec_abc', headers: { 'stripe-signature': `v1=${v1}` }, body, now }), 'malformed_header');
    rejects(() => verify('stripe', { secret: 'whsec_abc', headers: { 'stripe-signature': `t=abc,${v1}` }, body, now }), 'malformed_header');
  });

  it('reads Svix header names as Standard Webhooks', () => {
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const h = sign('standard', { secret, body, timestamp: now, id: 'msg_svix' });
    const svix = { 'svix-id': h['webhook-id'], 'svix-timestamp': h['webhook-timestamp'], 'svix-signature': h['webhook-signature'] };
    assert.equal(verify('standard', { secret, headers: svix, body, now }).id, 'msg_svix');
  });

  it('signs with several secrets during rotation', () => {
    const next = generateSecret();
    const old = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const headers = sign('standard', { secrets: [next, old], body, timestamp: now, id: 'msg_1' });
    assert.equal(headers['webhook-signature']!.split(' ').length, 2);
    assert.equal(verify('standard', { secret: old, headers, body, now }).ok, true);
    assert.equal(verify('standard', { secret: next, headers, body, now }).ok, true);
  });

  it('refuses huge headers quickly and handles non-ASCII payloads as bytes', () => {
    const secret = 'gh-secret';
    const huge = { 'x-hub-signature-256': 'sha256=' + 'a'.repeat(1_000_000) };
    const started = performance.now();
    rejects(() => verify('github', { secret, headers: huge, body, now }), 'malformed_header');
    assert.ok(performance.now() - started < 200);
    const manyEntries = { 'webhook-id': 'm', 'webhook-timestamp': String(now), 'webhook-signature': 'v1,AAAA '.repeat(5000) };
    rejects(() => verify('standard', { secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', headers: manyEntries, body, now }), 'no_matching_signature');

    const text = '{"name":"Zoë – 東京 🚀"}';
    const headers = sign('github', { secret, body: text });
    assert.equal(verify('github', { secret, headers, body: Buffer.from(text, 'utf8') }).ok, true);
    assert.equal(verify('github', { secret, headers, body: new Uint8Array(Buffer.from(text, 'utf8')) }).ok, true);
    // The same characters in another encoding are other bytes, and do not verify.
    rejects(() => verify('github', { secret, headers, body: Buffer.from(text, 'utf16le') }), 'no_matching_signature');
  });

  it('reads fetch Headers objects too', () => {
    const headers = sign('slack', { secret: 's', body, timestamp: now });
    const fetchHeaders = new Headers(headers);
    assert.equal(verify('slack', { secret: 's', headers: fetchHeaders, body, now: new Date(now * 1000) }).timestamp, now);
  });

  it('passes over a key that does not parse when another secret is there to verify (a slip made before keys were checked)', () => {
    const hmac = `whsec_${Buffer.from('0123456789abcdefghijklmnopqrstuv').toString('base64')}`;
    const headers = sign('standard', { secret: hmac, body, timestamp: now, id: 'msg_3' });
    assert.equal(verify('standard', { secrets: ['whpk_AAAA', hmac], headers, body, now }).ok, true);
    assert.equal(verify('standard', { secrets: [`whsk_${'A'.repeat(40)}`, hmac], headers, body, now }).ok, true);
    rejects(() => verify('standard', { secrets: ['whpk_AAAA'], headers, body, now }), 'invalid_secret');
    rejects(() => verify('standard', { secrets: ['whpk_AAAA', 'whsk_AAAA'], headers, body, now }), 'invalid_secret');
  });

  it('verifies v1a with a generated key pair in the spec serialization', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const seed = privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(-32);
    const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
    const headers = sign('standard', { secret: `whsk_${seed.toString('base64')}`, body, timestamp: now, id: 'msg_2' });
    assert.equal(verify('standard', { secret: `whpk_${raw.toString('base64')}`, headers, body, now }).ok, true);
  });
});

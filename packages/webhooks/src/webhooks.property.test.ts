// Property-based tests (fast-check) for every signature-header parser and verifier in the package.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { sign, verify, WebhookVerificationError, type Scheme } from './index.js';

const NOW = 1_700_000_000;
const RUNS = { numRuns: 300 };

/** Where each scheme keeps its signature: the header, the text just before the signature, and its encoding. */
const LAYOUT: Record<Scheme, { header: string; marker: string; encoding: 'hex' | 'base64' }> = {
  standard: { header: 'webhook-signature', marker: 'v1,', encoding: 'base64' },
  stripe: { header: 'stripe-signature', marker: 'v1=', encoding: 'hex' },
  github: { header: 'x-hub-signature-256', marker: 'sha256=', encoding: 'hex' },
  shopify: { header: 'x-shopify-hmac-sha256', marker: '', encoding: 'base64' },
  slack: { header: 'x-slack-signature', marker: 'v0=', encoding: 'hex' },
};
const SCHEMES = Object.keys(LAYOUT) as Scheme[];
/** Headers a scheme sends that its signature does not cover: GitHub's and Shopify's delivery ids (as the providers sign them). */
const UNSIGNED = new Set(['x-github-delivery', 'x-shopify-webhook-id']);
const HEX = '0123456789abcdef';
const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Any secret the scheme can sign with: `whsec_` base64 keys for Standard Webhooks, any non-empty string otherwise. */
function secretFor(scheme: Scheme): fc.Arbitrary<string> {
  if (scheme === 'standard') return fc.uint8Array({ minLength: 1, maxLength: 64 }).map((b) => `whsec_${Buffer.from(b).toString('base64')}`);
  return fc.string({ unit: 'binary', minLength: 1, maxLength: 80 });
}
const body = fc.oneof(fc.uint8Array({ maxLength: 600 }), fc.string({ unit: 'binary', maxLength: 300 }).map((s) => Buffer.from(s, 'utf8')));
const nonEmptyBody = body.filter((b) => b.length > 0);
const msgId = fc.stringMatching(/^[A-Za-z0-9_-]{1,40}$/);
const timestamp = fc.integer({ min: NOW - 300, max: NOW + 300 });

/** A verification that must fail, and fail only with the package's typed error. */
function refused(fn: () => unknown): boolean {
  try {
    fn();
  } catch (error) {
    if (error instanceof WebhookVerificationError) return true;
    throw error;
  }
  return false;
}

function signed(scheme: Scheme, secret: string, payload: Uint8Array, id: string, ts: number) {
  const headers = sign(scheme, { secret, body: payload, id, timestamp: ts });
  const { header, marker } = LAYOUT[scheme];
  const value = headers[header]!;
  const start = marker === '' ? 0 : value.lastIndexOf(marker) + marker.length;
  return { headers, header, value, start };
}

for (const scheme of SCHEMES) {
  describe(`${scheme}: signatures`, () => {
    const input = fc.record({ secret: secretFor(scheme), payload: body, id: msgId, ts: timestamp });

    it('a correctly signed payload always verifies', () => {
      fc.assert(
        fc.property(input, ({ secret, payload, id, ts }) => {
          const { headers } = signed(scheme, secret, payload, id, ts);
          assert.equal(verify(scheme, { secret, headers, body: payload, now: NOW }).ok, true);
        }),
        RUNS,
      );
    });

    it('flipping any byte of the body makes it fail', () => {
      fc.assert(
        fc.property(input, nonEmptyBody, fc.nat(), fc.integer({ min: 1, max: 255 }), ({ secret, id, ts }, payload, at, xor) => {
          const { headers } = signed(scheme, secret, payload, id, ts);
          const tampered = Buffer.from(payload);
          tampered[at % tampered.length]! ^= xor;
          assert.ok(refused(() => verify(scheme, { secret, headers, body: tampered, now: NOW })));
        }),
        RUNS,
      );
    });

    it('changing any character of the signature makes it fail', () => {
      const alphabet = LAYOUT[scheme].encoding === 'hex' ? HEX : BASE64;
      fc.assert(
        fc.property(input, fc.nat(), fc.nat(), ({ secret, payload, id, ts }, at, pick) => {
          const { headers, header, value, start } = signed(scheme, secret, payload, id, ts);
          const i = start + (at % (value.length - start));
          const others = alphabet.replace(value[i]!, '');
          const changed = value.slice(0, i) + others[pick % others.length] + value.slice(i + 1);
          assert.ok(refused(() => verify(scheme, { secret, headers: { ...headers, [header]: changed }, body: payload, now: NOW })));
        }),
        RUNS,
      );
    });

    it('a truncated signature (any proper prefix) fails', () => {
      fc.assert(
        fc.property(input, fc.nat(), ({ secret, payload, id, ts }, cut) => {
          const { headers, header, value, start } = signed(scheme, secret, payload, id, ts);
          const truncated = value.slice(0, start + (cut % (value.length - start)));
          assert.ok(refused(() => verify(scheme, { secret, headers: { ...headers, [header]: truncated }, body: payload, now: NOW })));
        }),
        RUNS,
      );
    });

    it('another secret never verifies it', () => {
      fc.assert(
        fc.property(input, secretFor(scheme), ({ secret, payload, id, ts }, other) => {
          fc.pre(other !== secret);
          const { headers } = signed(scheme, secret, payload, id, ts);
          assert.ok(refused(() => verify(scheme, { secret: other, headers, body: payload, now: NOW })));
        }),
        RUNS,
      );
    });
  });
}

/** Header text made of the pieces these parsers split on, so the generator reaches their corners. */
const headerText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 120 }),
  fc
    .array(fc.constantFrom('t=', 'v1=', 'v0=', 'v1,', 'v1a,', 'v2,', ',', ' ', '  ', '=', '==', 'sha256=', String(NOW), '-1', '1e9', 'ab', 'ff', '+/', 'AAAA', 'whsec_', '\t', '\u0000', '\r\n', '😀', '\ud800'), { maxLength: 40 })
    .map((parts) => parts.join('')),
);
const HEADER_NAMES = [
  'webhook-id', 'webhook-timestamp', 'webhook-signature', 'svix-id', 'svix-timestamp', 'svix-signature', 'stripe-signature',
  'x-hub-signature-256', 'x-shopify-hmac-sha256', 'x-slack-signature', 'x-slack-request-timestamp', 'Webhook-Signature',
];
const headerRecord = fc.dictionary(fc.constantFrom(...HEADER_NAMES), fc.oneof(headerText, fc.array(headerText, { maxLength: 3 })), { maxKeys: HEADER_NAMES.length });

describe('arbitrary headers', () => {
  for (const scheme of SCHEMES) {
    it(`${scheme}: never throws anything but WebhookVerificationError, and never verifies`, () => {
      fc.assert(
        fc.property(headerRecord, secretFor(scheme), body, (headers, secret, payload) => {
          assert.ok(refused(() => verify(scheme, { secret, headers, body: payload, now: NOW })), 'random headers verified');
        }),
        { numRuns: 1000 },
      );
    });

    it(`${scheme}: a signed request with any one of its signed headers replaced by arbitrary text never verifies`, () => {
      fc.assert(
        fc.property(secretFor(scheme), body, msgId, fc.nat(), headerText, (secret, payload, id, which, text) => {
          const headers = sign(scheme, { secret, body: payload, id, timestamp: NOW });
          const names = Object.keys(headers).filter((name) => !UNSIGNED.has(name));
          const name = names[which % names.length]!;
          fc.pre(text.trim() !== headers[name]);
          assert.ok(refused(() => verify(scheme, { secret, headers: { ...headers, [name]: text }, body: payload, now: NOW })));
        }),
        { numRuns: 1000 },
      );
    });
  }

  it('standard: the right signature anywhere in a list of garbage entries verifies; garbage alone does not', () => {
    fc.assert(
      fc.property(secretFor('standard'), body, msgId, fc.array(headerText.map((t) => t.replace(/ /g, '')), { maxLength: 6 }), fc.nat(), (secret, payload, id, junk, at) => {
        const headers = sign('standard', { secret, body: payload, id, timestamp: NOW });
        const list = [...junk];
        list.splice(at % (list.length + 1), 0, headers['webhook-signature']!);
        assert.equal(verify('standard', { secret, headers: { ...headers, 'webhook-signature': list.join(' ') }, body: payload, now: NOW }).ok, true);
        if (junk.some((j) => j.length > 0)) {
          assert.ok(refused(() => verify('standard', { secret, headers: { ...headers, 'webhook-signature': junk.join(' ') }, body: payload, now: NOW })));
        }
      }),
      RUNS,
    );
  });

  it('stripe: the right v1 among other items (t first or last, unknown schemes) verifies', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 40 }), body, fc.array(fc.constantFrom('v0=abc', 'v1=00', 'x=1', 'v2=ff', ' '), { maxLength: 4 }), fc.boolean(), (secret, payload, extra, tLast) => {
        const header = sign('stripe', { secret, body: payload, timestamp: NOW })['stripe-signature']!;
        const [t, v1] = header.split(',');
        const items = tLast ? [...extra, v1!, t!] : [t!, ...extra, v1!];
        assert.equal(verify('stripe', { secret, headers: { 'stripe-signature': items.join(',') }, body: payload, now: NOW }).ok, true);
      }),
      RUNS,
    );
  });
});

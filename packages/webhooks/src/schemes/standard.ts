import { createPrivateKey, createPublicKey, sign as edSign, verify as edVerify, type KeyObject } from 'node:crypto';
import { decodeSignature, checkTimestamp, header, hmacSha256, requireHeader, sameBytes } from '../bytes.js';
import { fail } from '../errors.js';
import type { SchemeImpl } from '../types.js';

// DER prefixes that wrap a raw 32-byte Ed25519 key as PKCS#8 (private) and SPKI (public) for node:crypto.
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');

type Key = { kind: 'hmac'; key: Buffer } | { kind: 'ed25519-private'; key: KeyObject } | { kind: 'ed25519-public'; key: KeyObject };

function base64Key(text: string, prefix: string): Buffer {
  const raw = text.slice(prefix.length);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(raw)) {
    fail('invalid_secret', prefix ? `A ${prefix} secret is base64 after the prefix.` : 'The secret is not base64 (nor whsec_, whsk_ or whpk_ followed by base64).');
  }
  return Buffer.from(raw, 'base64');
}

/** `whsec_` (HMAC), `whsk_` (Ed25519 secret key) or `whpk_` (Ed25519 public key), as the spec serializes them. */
/** node:crypto's own refusal of a key, as the scheme's error (a caller's 4xx, not a crash). */
function ed25519Key(prefix: string, make: () => KeyObject): KeyObject {
  try {
    return make();
  } catch {
    return fail('invalid_secret', `This ${prefix} key is not an Ed25519 key.`);
  }
}

function parseKey(secret: string): Key {
  if (secret.startsWith('whsk_')) {
    const bytes = base64Key(secret, 'whsk_');
    // 32 bytes is the seed; 64 is libsodium's seed followed by the public key.
    if (bytes.length !== 32 && bytes.length !== 64) fail('invalid_secret', 'A whsk_ key holds 32 or 64 bytes.');
    return { kind: 'ed25519-private', key: ed25519Key('whsk_', () => createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, bytes.subarray(0, 32)]), format: 'der', type: 'pkcs8' })) };
  }
  if (secret.startsWith('whpk_')) {
    const bytes = base64Key(secret, 'whpk_');
    if (bytes.length !== 32) fail('invalid_secret', 'A whpk_ key holds 32 bytes.');
    return { kind: 'ed25519-public', key: ed25519Key('whpk_', () => createPublicKey({ key: Buffer.concat([SPKI_ED25519, bytes]), format: 'der', type: 'spki' })) };
  }
  // Like the reference libraries, a secret without the prefix is taken as plain base64.
  const key = base64Key(secret, secret.startsWith('whsec_') ? 'whsec_' : '');
  if (key.length === 0) fail('invalid_secret', 'The whsec_ secret is empty.');
  return { kind: 'hmac', key };
}

/** Why a `whsk_` or `whpk_` key cannot be used (not base64, the wrong size, not a key), or undefined when it can. */
export function ed25519KeyProblem(secret: string): string | undefined {
  try {
    parseKey(secret);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/**
 * Asymmetric (`v1a`) signatures a request may carry. Each check of one hashes the whole body again (Ed25519 signs
 * the message, not a digest of it), before anything is authenticated, so the count must stay small: a sender
 * signs once per active key, twice while it rotates.
 */
export const MAX_ASYMMETRIC_SIGNATURES = 4;

function signedContent(id: string, timestamp: number | string, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${id}.${timestamp}.`), body]);
}

/** Standard Webhooks (standardwebhooks.com): `webhook-*` headers, also read under Svix's `svix-*` names. */
export const standard: SchemeImpl = {
  sign({ secrets, id, timestamp, body }) {
    if (id.includes('.')) fail('invalid_secret', 'A Standard Webhooks id may not contain a full stop.');
    const content = signedContent(id, timestamp, body);
    const signatures = secrets.map((secret) => {
      const key = parseKey(secret);
      if (key.kind === 'hmac') return `v1,${hmacSha256(key.key, content).toString('base64')}`;
      if (key.kind === 'ed25519-private') return `v1a,${edSign(null, content, key.key).toString('base64')}`;
      return fail('invalid_secret', 'A whpk_ public key can verify but not sign.');
    });
    return { 'webhook-id': id, 'webhook-timestamp': String(timestamp), 'webhook-signature': signatures.join(' ') };
  },

  verify({ secrets, headers, body, tolerance, now }) {
    const svix = header(headers, 'webhook-id') === undefined && header(headers, 'svix-id') !== undefined;
    const name = (suffix: string) => `${svix ? 'svix' : 'webhook'}-${suffix}`;
    const id = requireHeader(headers, name('id'));
    const timestampText = requireHeader(headers, name('timestamp'));
    const signatureHeader = requireHeader(headers, name('signature'));
    const timestamp = checkTimestamp(timestampText, now, tolerance);
    const content = signedContent(id, timestampText, body);

    const presented = signatureHeader.split(' ').filter(Boolean).map((entry) => {
      const comma = entry.indexOf(',');
      return comma < 0 ? { version: '', value: '' } : { version: entry.slice(0, comma), value: entry.slice(comma + 1) };
    });
    if (presented.every((p) => p.version === '')) fail('malformed_header', `${name('signature')} holds no version,signature pair.`);
    // Only an Ed25519 key reads v1a entries: a verifier with HMAC secrets alone ignores them, however many.
    const edKey = secrets.some((secret) => secret.startsWith('whsk_') || secret.startsWith('whpk_'));
    const asymmetric = edKey ? [...new Set(presented.filter((p) => p.version === 'v1a').map((p) => p.value))] : [];
    if (asymmetric.length > MAX_ASYMMETRIC_SIGNATURES) {
      fail('malformed_header', `${name('signature')} holds more than ${MAX_ASYMMETRIC_SIGNATURES} different v1a signatures.`);
    }
    const edSignatures = asymmetric
      .map((value) => decodeSignature(value, 'base64'))
      .filter((signature): signature is Buffer => signature?.length === 64);

    // A key that does not parse (stored before keys were checked at registration) is passed over, so the other
    // secrets of a rotation still verify; only when none parses is the configuration the error.
    const keys = secrets.flatMap((secret) => {
      try {
        return [parseKey(secret)];
      } catch (error) {
        if (secrets.length === 1) throw error;
        return [];
      }
    });
    if (keys.length === 0) fail('invalid_secret', 'None of the secrets is a usable Standard Webhooks key.');
    for (const key of keys) {
      if (key.kind === 'hmac') {
        const expected = hmacSha256(key.key, content);
        for (const p of presented) if (p.version === 'v1' && sameBytes(expected, decodeSignature(p.value, 'base64'))) return { id, timestamp };
      } else {
        const publicKey = key.kind === 'ed25519-public' ? key.key : createPublicKey(key.key);
        for (const signature of edSignatures) if (edVerify(null, content, publicKey, signature)) return { id, timestamp };
      }
    }
    return fail('no_matching_signature', 'No signature matched any of the secrets.');
  },
};

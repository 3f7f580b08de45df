import type { Scheme } from './types.js';
import { ed25519KeyProblem } from './schemes/standard.js';

/**
 * The least a secret must hold, per scheme. Each minimum is one that every
 * secret the real provider issues meets, with room to spare:
 * - standard: the key behind `whsec_` (or plain base64) is ≥ 24 bytes, the
 *   Standard Webhooks minimum (its own test vector's key is exactly 24);
 *   `whsk_`/`whpk_` Ed25519 keys must parse (32 random bytes by construction; 64 for a libsodium secret key).
 * - stripe: ≥ 24 characters after `whsec_` (Stripe issues 32, or 64 hex
 *   from `stripe listen`).
 * - github: ≥ 16 characters (the user picks it; GitHub asks for a random,
 *   high-entropy string).
 * - shopify: ≥ 32 characters (app client secrets are 32 hex, `shpss_` + 32
 *   hex, and secrets of webhooks made in the admin are 64 hex).
 * - slack: ≥ 32 characters (Slack signing secrets are 32 hex).
 * Beyond length, the material must use at least 6 distinct characters (or
 * bytes), which refuses `aaaa…` and `abab…` whatever their length.
 */
export const SECRET_MINIMUMS: Readonly<Record<Scheme, number>> = { standard: 24, stripe: 24, github: 16, shopify: 32, slack: 32 };
const MIN_DISTINCT = 6;

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

function distinct(values: Iterable<string | number>): number {
  return new Set(values).size;
}

/** Why `secret` is too weak for `scheme`, or undefined when it is strong enough. Never echoes the secret. */
export function secretWeakness(scheme: Scheme, secret: string): string | undefined {
  if (typeof secret !== 'string' || secret.length === 0) return 'The secret is empty.';
  const min = SECRET_MINIMUMS[scheme];
  if (min === undefined) return `Unknown scheme ${JSON.stringify(scheme)}.`;
  if (scheme === 'standard') {
    // Ed25519 keys are random bytes by construction: what matters is that they parse.
    if (secret.startsWith('whsk_') || secret.startsWith('whpk_')) return ed25519KeyProblem(secret);
    const raw = secret.startsWith('whsec_') ? secret.slice(6) : secret;
    if (!BASE64.test(raw)) return 'A Standard Webhooks secret is `whsec_` followed by base64.';
    const key = Buffer.from(raw, 'base64');
    if (key.length < min) return `A Standard Webhooks secret must decode to at least ${min} bytes; this one has ${key.length}.`;
    if (distinct(key) < MIN_DISTINCT) return 'The secret is too predictable: its bytes barely vary.';
    return undefined;
  }
  const material = scheme === 'stripe' && secret.startsWith('whsec_') ? secret.slice(6) : secret;
  const chars = [...material];
  if (chars.length < min) {
    return `A ${scheme} secret must have at least ${min} characters${scheme === 'stripe' ? ' after `whsec_`' : ''}; this one has ${chars.length}.`;
  }
  if (distinct(chars) < MIN_DISTINCT) return 'The secret is too predictable: its characters barely vary.';
  return undefined;
}

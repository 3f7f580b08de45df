import { hash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Keys are 192 random bits, so a fast hash is enough to store them: there is
 * nothing to brute-force that a slow KDF would protect.
 */
export function hashSecret(secret: string): string {
  // The one-shot hash: every authenticated request runs this, and it costs a third of a Hash object's.
  return hash('sha256', secret, 'hex');
}

/** Constant-time comparison of two hex digests (or any two strings of a fixed length). */
export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

export const API_KEY_PREFIX = 'hk_';

export function generateApiKey(): { key: string; hash: string; prefix: string } {
  const key = API_KEY_PREFIX + randomBytes(24).toString('base64url');
  return { key, hash: hashSecret(key), prefix: key.slice(0, 10) };
}

export function randomId(prefix: string): string {
  return prefix + randomBytes(12).toString('base64url');
}

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Keys are 192 random bits, so a fast hash is enough to store them: there is
 * nothing to brute-force that a slow KDF would protect.
 */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
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

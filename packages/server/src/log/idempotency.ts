import type { Principal } from '../auth/principal.js';

/**
 * The store key of an idempotency scope. The parts are JSON-encoded as one
 * array, which no two different lists of parts share, so no choice of names
 * can make two scopes collide (as `pub` + `42:k1` and `pub:42` + `k1` did
 * when they were joined with colons).
 */
export function idempotencyStoreKey(...parts: string[]): string {
  return JSON.stringify(parts);
}

/**
 * Who an `Idempotency-Key` belongs to, as Stripe scopes them to the account:
 * the API key, or the token's subject under the key that minted it. Another
 * credential reusing the same header value gets its own scope, so it can
 * neither replay nor block someone else's request.
 */
export function principalScope(principal: Principal): string[] {
  if (principal.kind === 'token') return ['token', principal.keyId ?? '', principal.id];
  return [principal.kind, principal.id];
}

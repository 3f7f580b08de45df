import type { SourceSecret } from '../store/types.js';

/** Secrets that still count at `now`: the current one, and older ones inside their grace period. */
export function liveSecrets(secrets: readonly SourceSecret[], now = Date.now()): SourceSecret[] {
  return secrets.filter((s) => s.expiresAt === undefined || s.expiresAt > now);
}

/**
 * Previous secrets kept through their grace period, newest first; older ones lapse at the next rotation. Every
 * request is signed (or checked) with each live secret: without a bound, a portal session rotating in a loop made
 * each delivery compute thousands of HMACs and carry a header of 150 KB, which receivers refused.
 */
export const MAX_PREVIOUS_SECRETS = 3;

/**
 * Puts `next` first; the secrets live now (the newest MAX_PREVIOUS_SECRETS of them) keep working until the grace
 * period ends (never later than they would have), then lapse. A zero grace drops them at once.
 */
export function rotate(secrets: readonly SourceSecret[], next: string, graceSeconds: number, now = Date.now()): SourceSecret[] {
  const until = now + graceSeconds * 1000;
  if (until <= now) return [{ secret: next }];
  const previous = liveSecrets(secrets, now)
    .slice(0, MAX_PREVIOUS_SECRETS)
    .map((s) => ({ secret: s.secret, expiresAt: Math.min(s.expiresAt ?? until, until) }));
  return [{ secret: next }, ...previous];
}

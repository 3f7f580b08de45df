import type { SourceSecret } from '../store/types.js';

/** Secrets that still count at `now`: the current one, and older ones inside their grace period. */
export function liveSecrets(secrets: readonly SourceSecret[], now = Date.now()): SourceSecret[] {
  return secrets.filter((s) => s.expiresAt === undefined || s.expiresAt > now);
}

/**
 * Puts `next` first; the secrets live now keep working until the grace period
 * ends (never later than they would have), then lapse. A zero grace drops them at once.
 */
export function rotate(secrets: readonly SourceSecret[], next: string, graceSeconds: number, now = Date.now()): SourceSecret[] {
  const until = now + graceSeconds * 1000;
  if (until <= now) return [{ secret: next }];
  const previous = liveSecrets(secrets, now).map((s) => ({ secret: s.secret, expiresAt: Math.min(s.expiresAt ?? until, until) }));
  return [{ secret: next }, ...previous];
}

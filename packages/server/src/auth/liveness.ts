import { HeraldError } from '@herald/protocol';
import type { KeyStore } from '../store/types.js';
import type { Principal } from './principal.js';
import type { FailureStreak } from '../util/failure-streak.js';

export type Liveness = 'live' | 'expired' | 'revoked';

/** How long a key's revocation state is trusted before the store is asked again (another node may have revoked it). */
const KEY_STATE_TTL_MS = 1000;
/** What `watch` returns for a connection it does not watch: one function for all of them, not one per socket. */
const NOT_WATCHED = (): void => {};

/**
 * Whether a credential that was valid when it arrived still is: tokens
 * expire, and a key's revocation ends the key and every token it minted.
 * Key states are cached briefly so a busy socket or a sweep over thousands
 * of connections costs one store read per key per second, not one per check.
 */
export class CredentialChecker {
  private readonly keyStates = new Map<string, { revoked: boolean; checkedAt: number }>();

  constructor(private readonly keys: KeyStore) {}

  async check(principal: Principal, now = Date.now()): Promise<Liveness> {
    if (principal.expiresAt !== undefined && now >= principal.expiresAt) return 'expired';
    if (principal.keyId !== undefined && (await this.isRevoked(principal.keyId, now))) return 'revoked';
    return 'live';
  }

  /** Throws `unauthorized` for a credential that expired or was revoked since it was presented. */
  async assertLive(principal: Principal | undefined): Promise<void> {
    if (!principal) return;
    const state = await this.check(principal);
    if (state === 'expired') throw new HeraldError('unauthorized', 'The token has expired.');
    if (state === 'revoked') throw new HeraldError('unauthorized', 'The credential was revoked.');
  }

  /** Called on this node's own revocation, so it takes effect here at once rather than after the cache expires. */
  forget(keyId: string): void {
    this.keyStates.delete(keyId);
  }

  private async isRevoked(keyId: string, now: number): Promise<boolean> {
    const cached = this.keyStates.get(keyId);
    if (cached && now - cached.checkedAt < KEY_STATE_TTL_MS) return cached.revoked;
    const record = await this.keys.get(keyId);
    // A key that no longer exists cannot vouch for anything.
    const revoked = !record || record.revokedAt !== undefined;
    if (this.keyStates.size > 10_000) this.keyStates.clear();
    this.keyStates.set(keyId, { revoked, checkedAt: now });
    return revoked;
  }
}

interface Watched {
  principal: Principal;
  end: (reason: Exclude<Liveness, 'live'>) => void;
}

/**
 * Every open stream and socket whose credential can die (a token that
 * expires, a key that can be revoked), swept by one timer: a revoked or
 * expired credential loses its live connections within a sweep plus the key
 * cache's lifetime, on every node, because the check reads the shared store.
 */
export class ConnectionWatch {
  private readonly watched = new Set<Watched>();
  private readonly timer: NodeJS.Timeout;
  private sweeping = false;

  constructor(
    private readonly checker: CredentialChecker,
    intervalMs: number,
    /** Each sweep's outcome: a store outage fails every sweep, and is logged as one streak. */
    private readonly outcomes: Pick<FailureStreak, 'failed' | 'succeeded'>,
  ) {
    this.timer = setInterval(() => void this.sweep(), intervalMs);
    this.timer.unref();
  }

  /** Returns the function that stops watching. Anonymous and admin-key connections need no watch. */
  watch(principal: Principal | undefined, end: Watched['end']): () => void {
    if (!principal || (principal.expiresAt === undefined && principal.keyId === undefined)) return NOT_WATCHED;
    const entry: Watched = { principal, end };
    this.watched.add(entry);
    return () => this.watched.delete(entry);
  }

  get size(): number {
    return this.watched.size;
  }

  async sweep(now = Date.now()): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      const entries = [...this.watched];
      for (const entry of entries) {
        const state = await this.checker.check(entry.principal, now);
        if (state !== 'live' && this.watched.delete(entry)) entry.end(state);
      }
      // A sweep with nothing to check asked the store nothing: it says nothing about an outage's end.
      if (entries.length > 0) this.outcomes.succeeded();
    } catch (error) {
      this.outcomes.failed(error);
    } finally {
      this.sweeping = false;
    }
  }

  stop(): void {
    clearInterval(this.timer);
    this.watched.clear();
  }
}

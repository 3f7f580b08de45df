import { HeraldError } from '@herald/protocol';
import { patternCovered } from './patterns.js';
import type { PortalScope } from '../portal/scope.js';

/** What a credential allows, whatever kind it was. */
export interface Principal {
  /** `portal`: an endpoint-portal session token, good for its tenant's endpoints and nothing else. */
  kind: 'admin' | 'key' | 'token' | 'portal';
  /** The key id, the token's `sub`, or `admin`. */
  id: string;
  admin: boolean;
  /** Channel patterns it may read. */
  subscribe: readonly string[];
  /** Channel patterns it may publish to. */
  publish: readonly string[];
  /** When the credential stops being valid (ms); tokens only. Open connections end then too. */
  expiresAt?: number | undefined;
  /**
   * The API key whose revocation ends this credential: the key itself, or the
   * key that minted the token. Absent for the admin key and offline-minted tokens.
   */
  keyId?: string | undefined;
  /** For `portal` only: the tenant and what its session may do. */
  portal?: PortalScope | undefined;
}

/** Channel rules, the same for every transport (Herald's own channels need a pattern naming them: see patternCovered). */
export class AccessPolicy {
  constructor(private readonly publicPatterns: readonly string[]) {}

  isPublic(channel: string): boolean {
    return patternCovered(this.publicPatterns, channel);
  }

  /** Whether `principal` (or anyone, for a public channel) may read `channel`. */
  mayRead(principal: Principal | undefined, channel: string): boolean {
    // A portal session manages endpoints only: it reads no channel, not even a public one.
    if (principal?.kind === 'portal') return false;
    return this.isPublic(channel) || (principal !== undefined && (principal.admin || patternCovered(principal.subscribe, channel)));
  }

  /** Throws 401 without a credential, 403 when the credential does not cover the channel. */
  assertRead(principal: Principal | undefined, channel: string): void {
    if (this.mayRead(principal, channel)) return;
    if (!principal) throw new HeraldError('unauthorized', `Channel ${channel} is private: send a credential.`);
    // The channel named in details: a client reading many at once (SSE, a multi-channel poll) can leave out the one
    // refused and go on with the others, as a WebSocket subscription refused alone does.
    throw new HeraldError('forbidden', `This credential may not read channel ${channel}.`, { channel });
  }

  assertPublish(principal: Principal | undefined, channel: string): void {
    if (!principal) throw new HeraldError('unauthorized', 'Publishing needs a credential.');
    if (!principal.admin && !patternCovered(principal.publish, channel)) {
      throw new HeraldError('forbidden', `This credential may not publish to channel ${channel}.`);
    }
  }

  assertAdmin(principal: Principal | undefined): asserts principal is Principal {
    if (!principal) throw new HeraldError('unauthorized', 'This route needs an admin credential.');
    if (!principal.admin) throw new HeraldError('forbidden', 'This route needs an admin credential.');
  }
}

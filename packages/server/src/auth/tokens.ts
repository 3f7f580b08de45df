import { randomBytes } from 'node:crypto';
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import { HeraldError, type TokenClaims } from '@herald/protocol';
import type { Principal } from './principal.js';
import { isValidPattern } from './patterns.js';
import { portalClaim, portalScopeFromClaim, type PortalScope } from '../portal/scope.js';

const ALG = 'HS256';

/** Most patterns one token may carry: every auth check walks them, so an offline-minted token must not make that unbounded. */
export const MAX_TOKEN_PATTERNS = 100;

function isPatternList(value: unknown): value is string[] {
  return Array.isArray(value) && value.length <= MAX_TOKEN_PATTERNS && value.every(isValidPattern);
}

/** Subscriber tokens: JWTs an app's backend can also mint offline with the shared secret. */
export class TokenService {
  private readonly key: Uint8Array;

  constructor(secret: string) {
    this.key = new TextEncoder().encode(secret);
  }

  static generateSecret(): string {
    return randomBytes(32).toString('base64url');
  }

  /** `keyId`: the API key minting it; the token dies when that key is revoked. */
  async mint(claims: Omit<TokenClaims, 'exp'>, ttlSeconds: number, keyId?: string): Promise<{ token: string; expiresAt: number }> {
    const payload: Record<string, unknown> = { channels: claims.channels };
    if (claims.publish) payload.publish = claims.publish;
    return this.sign(payload, claims.sub, ttlSeconds, keyId);
  }

  /**
   * An endpoint-portal session: a token whose `portal` claim names a tenant.
   * It reads and publishes nothing (no `channels`, no `publish`).
   */
  async mintPortal(scope: PortalScope, ttlSeconds: number, keyId?: string): Promise<{ token: string; expiresAt: number }> {
    return this.sign({ portal: portalClaim(scope) }, `portal:${scope.tenant}`, ttlSeconds, keyId);
  }

  private async sign(payload: Record<string, unknown>, sub: string, ttlSeconds: number, keyId: string | undefined): Promise<{ token: string; expiresAt: number }> {
    const expiresAt = Math.floor(Date.now() / 1000) + ttlSeconds;
    if (keyId !== undefined) payload.kid = keyId;
    const token = await new SignJWT(payload)
      .setProtectedHeader({ alg: ALG, typ: 'JWT' })
      .setSubject(sub)
      .setIssuedAt()
      .setExpirationTime(expiresAt)
      .sign(this.key);
    return { token, expiresAt };
  }

  async verify(token: string): Promise<Principal> {
    let payload;
    try {
      ({ payload } = await jwtVerify(token, this.key, { algorithms: [ALG], requiredClaims: ['sub', 'exp'] }));
    } catch (error) {
      const expired = error instanceof joseErrors.JWTExpired;
      throw new HeraldError('unauthorized', expired ? 'The token has expired.' : 'The token is not valid.');
    }
    // jose checks that `sub` is there, not that it is a string: it names presence members and direct messages' senders.
    if (typeof payload.sub !== 'string') throw new HeraldError('unauthorized', 'The token claim `sub` must be a string.');
    if (payload.kid !== undefined && typeof payload.kid !== 'string') throw new HeraldError('unauthorized', 'The token claim `kid` must be a key id.');
    if (payload.portal !== undefined) {
      // Whatever else it claims, a portal token grants its tenant's endpoints and nothing more.
      const portal = portalScopeFromClaim(payload.portal);
      return { kind: 'portal', id: payload.sub!, admin: false, subscribe: [], publish: [], expiresAt: payload.exp! * 1000, keyId: payload.kid, portal };
    }
    const channels = payload.channels ?? [];
    const publish = payload.publish ?? [];
    if (!isPatternList(channels) || !isPatternList(publish)) {
      throw new HeraldError(
        'unauthorized',
        `The token claims \`channels\` and \`publish\` must be lists of at most ${MAX_TOKEN_PATTERNS} valid channel patterns.`,
      );
    }
    return {
      kind: 'token',
      id: payload.sub!,
      admin: false,
      subscribe: channels,
      publish,
      expiresAt: payload.exp! * 1000,
      keyId: payload.kid,
    };
  }
}

export function looksLikeJwt(credential: string): boolean {
  return credential.startsWith('eyJ') && credential.split('.').length === 3;
}

import { randomBytes } from 'node:crypto';
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import { HeraldError, type TokenClaims } from '@herald/protocol';
import type { Principal } from './principal.js';

const ALG = 'HS256';

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
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

  async mint(claims: Omit<TokenClaims, 'exp'>, ttlSeconds: number): Promise<{ token: string; expiresAt: number }> {
    const expiresAt = Math.floor(Date.now() / 1000) + ttlSeconds;
    const payload: Record<string, unknown> = { channels: claims.channels };
    if (claims.publish) payload.publish = claims.publish;
    const token = await new SignJWT(payload)
      .setProtectedHeader({ alg: ALG, typ: 'JWT' })
      .setSubject(claims.sub)
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
    const channels = payload.channels ?? [];
    const publish = payload.publish ?? [];
    if (!isStringArray(channels) || !isStringArray(publish)) {
      throw new HeraldError('unauthorized', 'The token claims `channels` and `publish` must be lists of patterns.');
    }
    return { kind: 'token', id: payload.sub!, admin: false, subscribe: channels, publish };
  }
}

export function looksLikeJwt(credential: string): boolean {
  return credential.startsWith('eyJ') && credential.split('.').length === 3;
}

import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Authenticator } from '../auth/authenticator.js';

/** `Authorization: Bearer …` first, then `?token=…` for clients that cannot set headers. */
export function credentialOf(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header) {
    const match = /^Bearer\s+(.+)$/i.exec(header);
    return match ? match[1]!.trim() : header.trim();
  }
  const token = (request.query as Record<string, unknown> | undefined)?.token;
  return typeof token === 'string' ? token : undefined;
}

/**
 * Authenticates in onRequest, before the body is read: a caller without a
 * valid credential never costs a body parse.
 */
export function installAuthentication(app: FastifyInstance, auth: Authenticator): void {
  app.decorateRequest('principal', undefined);
  app.addHook('onRequest', async (request) => {
    request.principal = await auth.authenticate(credentialOf(request));
  });
}

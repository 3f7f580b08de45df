import cors from '@fastify/cors';
import type { FastifyInstance } from 'fastify';
import { HeraldError } from '@herald/protocol';

export function originAllowed(origin: string, allowed: readonly string[]): boolean {
  return allowed.includes('*') || allowed.includes(origin);
}

/**
 * For long-lived responses (SSE): a browser would hide a refused response's
 * body, but the server would still hold the stream open, so refuse it outright
 * with 403, as the WebSocket upgrade does. No Origin header: not a browser's
 * cross-origin request, nothing to check.
 */
export function assertOriginAllowed(origin: string | undefined, allowed: readonly string[]): void {
  if (origin !== undefined && !originAllowed(origin, allowed)) {
    throw new HeraldError('forbidden', `Origin ${origin} is not allowed: add it to cors.origins.`);
  }
}

/**
 * The config's allowed origins apply to the whole HTTP API, SSE included (the
 * WebSocket upgrade checks the same list). With none configured, browsers on
 * other origins are refused.
 */
export function installCors(app: FastifyInstance, origins: readonly string[]): void {
  // Loaded with the app's other plugins at ready(); nothing to await here.
  void app.register(cors, {
    origin: (origin, callback) => callback(null, origin === undefined ? false : originAllowed(origin, origins)),
    credentials: !origins.includes('*'),
    methods: ['GET', 'POST', 'PATCH', 'DELETE', 'OPTIONS'],
    allowedHeaders: ['authorization', 'content-type', 'idempotency-key', 'last-event-id'],
    exposedHeaders: ['retry-after'],
    maxAge: 600,
  });
}

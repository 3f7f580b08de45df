import cors from '@fastify/cors';
import type { FastifyInstance } from 'fastify';

export function originAllowed(origin: string, allowed: readonly string[]): boolean {
  return allowed.includes('*') || allowed.includes(origin);
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

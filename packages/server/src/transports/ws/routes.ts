import type { FastifyInstance } from 'fastify';
import { HeraldError } from '@herald/protocol';
import { WS_PATH } from './gateway.js';

/**
 * `GET /v1/ws` without `Upgrade: websocket` (a browser's address bar, curl, a proxy that dropped the header): the
 * WebSocket gateway only hears upgrades, so this route answers the rest with 426 and the protocol to upgrade to
 * (RFC 9110 §15.5.22), where the path was otherwise a 404 a user could take for a wrong URL. Documented with the
 * handshake in openapi.ts, so hidden here.
 */
export function wsRoutes(app: FastifyInstance): void {
  app.get(WS_PATH, { schema: { hide: true } }, async (_request, reply) => {
    const error = new HeraldError('upgrade_required', `${WS_PATH} is a WebSocket endpoint: open it with a WebSocket handshake (Upgrade: websocket, RFC 6455).`);
    return reply.code(426).header('upgrade', 'websocket').header('connection', 'Upgrade').send(error.toJSON());
  });
}

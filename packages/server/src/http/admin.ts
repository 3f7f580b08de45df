import type { FastifyRequest } from 'fastify';
import type { AppContext } from './context.js';

/** Route options for the admin API: refused before the body is read unless the caller is an admin. */
export function adminOnly(ctx: AppContext): { onRequest: (request: FastifyRequest) => Promise<void> } {
  return {
    onRequest: async (request) => {
      ctx.access.assertAdmin(request.principal);
    },
  };
}

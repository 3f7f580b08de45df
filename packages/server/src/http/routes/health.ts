import type { FastifyInstance } from 'fastify';
import { HeraldError } from '@herald/protocol';
import type { AppContext } from '../context.js';

export function healthRoutes(app: FastifyInstance, ctx: AppContext): void {
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async () => {
    try {
      await ctx.ready();
    } catch (error) {
      throw new HeraldError('unavailable', `Not ready: ${(error as Error).message}`);
    }
    return { status: 'ready' };
  });
}

import type { FastifyInstance } from 'fastify';
import { HeraldError } from '@herald/protocol';
import type { AppContext } from '../context.js';
import { withTimeout } from '../../bus/health.js';

/** A store that has not answered a ping in this long is not ready: a hung server or a lost network, not just a refused connection. */
const READY_TIMEOUT_MS = 2000;

export function healthRoutes(app: FastifyInstance, ctx: AppContext): void {
  app.get('/healthz', async () => ({ status: 'ok' }));
  /**
   * 503 while the store cannot be reached (nothing can be acknowledged). A
   * lost bus still answers 200, since publishes and subscribers keep working
   * from the store, but says `degraded` so the loss is never silent.
   */
  app.get('/readyz', async () => {
    try {
      await withTimeout(ctx.ready(), READY_TIMEOUT_MS, 'store ping');
    } catch (error) {
      throw new HeraldError('unavailable', `Not ready: the store is unreachable (${(error as Error).message}).`, {
        store: 'down',
        bus: ctx.busState(),
      });
    }
    const { writes } = ctx.log;
    if (writes.full) {
      // Out of disk since a write failed: try a small write, so the answer turns 200 as soon as there is room.
      try {
        if (ctx.log.store.probeWrite) {
          await ctx.log.store.probeWrite();
          writes.succeeded();
        }
      } catch (error) {
        writes.failed(error);
      }
      if (writes.full) {
        throw new HeraldError('store_unavailable', 'Not ready: the store is out of disk space; appends fail until there is room again.', {
          reason: 'disk_full',
          store: 'full',
          bus: ctx.busState(),
        });
      }
    }
    const bus = ctx.busState();
    return { status: bus === 'up' ? 'ready' : 'degraded', store: 'up', bus, node: ctx.nodes.id };
  });
}

import type { FastifyInstance } from 'fastify';
import { HeraldError } from '@herald/protocol';
import type { AppContext } from '../context.js';
import { withTimeout } from '../../bus/health.js';
import { sendError } from '../errors.js';

/** A store that has not answered a ping in this long is not ready: a hung server or a lost network, not just a refused connection. */
const READY_TIMEOUT_MS = 2000;

/**
 * Why the ping failed, for the 503's message: the driver's error code (`ECONNREFUSED`, `57P03`…) rather than the
 * `store_unavailable` message, which is about requests ("nothing was written") and would hide the cause. Never the
 * driver's own message: it names the database's address, and `/readyz` answers without a credential.
 */
function unreachableReason(error: unknown): string {
  if (error instanceof HeraldError && error.code === 'store_unavailable') {
    const code = (error.cause as { code?: unknown } | undefined)?.code;
    return typeof code === 'string' ? code : 'no connection';
  }
  return (error as Error).message;
}

export function healthRoutes(app: FastifyInstance, ctx: AppContext): void {
  app.get('/healthz', async () => ({ status: 'ok' }));
  /**
   * 503 while the store cannot be reached (nothing can be acknowledged). A
   * lost bus still answers 200, since publishes and subscribers keep working
   * from the store, but says `degraded` so the loss is never silent. A not-ready answer is sent, not thrown: it is
   * what `/readyz` is for, not a failed request, and the error handler would log each probe's.
   */
  app.get('/readyz', async (_request, reply) => {
    try {
      await withTimeout(ctx.ready(), READY_TIMEOUT_MS, 'store ping');
    } catch (error) {
      return sendError(
        reply,
        new HeraldError('unavailable', `Not ready: the store is unreachable (${unreachableReason(error)}).`, {
          reason: 'store_unreachable',
          store: 'down',
          bus: ctx.busState(),
        }),
      );
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
        return sendError(
          reply,
          new HeraldError('store_unavailable', 'Not ready: the store is out of disk space; appends fail until there is room again.', {
            reason: 'disk_full',
            store: 'full',
            bus: ctx.busState(),
          }),
        );
      }
    }
    const bus = ctx.busState();
    return { status: bus === 'up' ? 'ready' : 'degraded', store: 'up', bus, node: ctx.nodes.id };
  });
}

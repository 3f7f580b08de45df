import type { FastifyInstance } from 'fastify';
import { adminOnly } from '../http/admin.js';
import type { AppContext } from '../http/context.js';

/** `GET /v1/nodes`: the live nodes of the cluster (one on SQLite), for operators. */
export function nodeRoutes(app: FastifyInstance, ctx: AppContext): void {
  app.get('/v1/nodes', adminOnly(ctx), async () => {
    const nodes = await ctx.nodes.live();
    return {
      self: ctx.nodes.id,
      nodes: nodes
        .sort((a, b) => a.id.localeCompare(b.id))
        .map((n) => ({
          id: n.id,
          version: n.version,
          startedAt: new Date(n.startedAt).toISOString(),
          lastHeartbeat: new Date(n.lastSeen).toISOString(),
          connections: n.connections,
          bus: n.bus,
          adminKey: n.adminKey,
        })),
    };
  });
}

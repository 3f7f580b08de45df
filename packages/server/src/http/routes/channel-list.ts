import type { FastifyInstance } from 'fastify';
import { adminOnly } from '../admin.js';
import type { AppContext } from '../context.js';
import { retentionFor } from '../../log/retention.js';

interface ListQuery {
  prefix?: string;
  after?: string;
  limit: number;
}

/**
 * `GET /v1/channels` (admin): every channel that has had an event, by name, a page at a time, with its
 * head seq, epoch, oldest kept seq and the retention that applies to it. For operators and the console;
 * subscribers name their channels and never need the list.
 */
export function channelListRoutes(app: FastifyInstance, ctx: AppContext): void {
  app.get<{ Querystring: ListQuery }>(
    '/v1/channels',
    {
      ...adminOnly(ctx),
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            // Only what a channel name may hold: anything else could match no channel anyway.
            prefix: { type: 'string', maxLength: 128, pattern: '^[A-Za-z0-9_.:-]*$' },
            after: { type: 'string', maxLength: 128, pattern: '^[A-Za-z0-9_.:-]*$' },
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
            // The credential, which every route takes as `?token=` too (authenticate.ts reads it before validation).
            token: { type: 'string' },
          },
        },
      },
    },
    async (request) => {
      const { prefix = '', after, limit } = request.query;
      // One more than the page: whether there is a next one.
      const names = await ctx.log.store.channels({ after, prefix, limit: limit + 1 });
      const page = names.slice(0, limit);
      const channels = await Promise.all(
        page.map(async (name) => {
          const state = await ctx.log.store.head(name);
          return {
            name,
            head: state.head,
            epoch: state.epoch,
            // The oldest seq still readable; above the head when every event was trimmed.
            oldest: state.trimmed + 1,
            retention: retentionFor(ctx.config.retention, name),
          };
        }),
      );
      return { channels, ...(names.length > limit ? { next: page.at(-1) } : {}) };
    },
  );
}

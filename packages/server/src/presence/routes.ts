import type { FastifyInstance } from 'fastify';
import { HeraldError } from '@herald/protocol';
import type { AppContext } from '../http/context.js';
import { assertChannel } from '../http/channels.js';

const memberSchema = {
  type: 'object',
  required: ['client', 'sub', 'info'],
  properties: { client: { type: 'string' }, sub: { type: 'string' }, info: {} },
} as const;

/** `GET /v1/channels/{channel}/presence`: the channel's presence set, cluster-wide, for anyone who may read it. */
export function presenceRoutes(app: FastifyInstance, ctx: AppContext): void {
  app.get<{ Params: { channel: string } }>(
    '/v1/channels/:channel/presence',
    {
      schema: {
        response: { 200: { type: 'object', required: ['members'], properties: { members: { type: 'array', items: memberSchema } } } },
      },
      onRequest: async (request) => {
        assertChannel(request.params.channel);
        ctx.access.assertRead(request.principal, request.params.channel);
      },
    },
    async (request) => {
      const { channel } = request.params;
      if (!ctx.presence.enabled(channel)) throw new HeraldError('not_found', `Channel ${channel} has no presence set (channels.presence).`);
      return { members: ctx.presence.members(channel) };
    },
  );
}

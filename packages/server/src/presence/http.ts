import type { FastifyReply, FastifyRequest } from 'fastify';
import { HeraldError, type EphemeralAck } from '@herald/protocol';
import type { AppContext } from '../http/context.js';

/** The 202 answer of an ephemeral publish, for response serialization. */
export const ephemeralAckSchema = {
  type: 'object',
  required: ['channel', 'type', 'time', 'ephemeral'],
  properties: { channel: { type: 'string' }, type: { type: 'string' }, time: { type: 'string' }, ephemeral: { const: true } },
} as const;

interface EphemeralBody {
  type?: string;
  data: unknown;
  id?: string;
  meta?: unknown;
}

/**
 * `POST /v1/channels/{channel}/events` with `ephemeral: true`: to the current subscribers only, answered
 * `202` with no `seq` or `id`. What only makes sense for a logged event (an id, meta, an idempotency key)
 * is refused rather than ignored.
 */
export async function publishEphemeralOverHttp(ctx: AppContext, request: FastifyRequest<{ Params: { channel: string } }>, body: EphemeralBody, reply: FastifyReply): Promise<FastifyReply> {
  if (body.id !== undefined || body.meta !== undefined || request.headers['idempotency-key'] !== undefined) {
    throw new HeraldError('bad_request', 'An ephemeral publish is not logged: it takes no `id`, `meta` or Idempotency-Key.');
  }
  try {
    const message = await ctx.presence.publishEphemeral(request.principal, request.params.channel, body);
    const ack: EphemeralAck = { channel: message.channel, type: message.type, time: message.time, ephemeral: true };
    return await reply.code(202).send(ack);
  } catch (error) {
    if (error instanceof HeraldError && error.code === 'too_many_requests') void reply.header('retry-after', '1');
    throw error;
  }
}

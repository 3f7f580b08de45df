import type { FastifyRequest } from 'fastify';
import { HeraldError, isValidChannel } from '@herald/protocol';
import type { AppContext } from './context.js';

export function assertChannel(channel: unknown): asserts channel is string {
  if (!isValidChannel(channel)) {
    throw new HeraldError('invalid_channel', `Invalid channel name ${JSON.stringify(channel)}: names match [A-Za-z0-9_.:-]{1,128}, other than . and ..`);
  }
}

/**
 * A WebSocket frame's `channel`: one missing (or no string) makes the frame malformed, `bad_request` like any field
 * missing; a string that breaks the naming rules is `invalid_channel`.
 */
export function frameChannel(frame: Record<string, unknown>): string {
  if (typeof frame.channel !== 'string') throw new HeraldError('bad_request', `\`${String(frame.op)}\` needs a \`channel\`, a string.`);
  assertChannel(frame.channel);
  return frame.channel;
}

/** The distinct `?channel=` values of a request, in order. */
export function channelsOf(query: unknown): string[] {
  const raw = (query as { channel?: unknown }).channel;
  const list = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
  return [...new Set(list.map(String))];
}

/** onRequest check for routes that read `?channel=a&channel=b`: valid names, not too many, all readable. */
export function assertReadableChannels(ctx: AppContext, request: FastifyRequest): void {
  const channels = channelsOf(request.query);
  const max = ctx.config.limits.channelsPerRequest;
  if (channels.length === 0) throw new HeraldError('bad_request', 'Name at least one channel: ?channel=a&channel=b.');
  if (channels.length > max) throw new HeraldError('bad_request', `At most ${max} channels per request.`);
  for (const channel of channels) {
    assertChannel(channel);
    ctx.access.assertRead(request.principal, channel);
  }
}

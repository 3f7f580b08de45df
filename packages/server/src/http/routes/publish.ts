import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HeraldError, type HeraldEvent, type PublishInput } from '@herald/protocol';
import { assertChannel } from '../channels.js';
import type { AppContext } from '../context.js';
import { eventInputProperties, eventSchema } from '../schemas.js';
import type { Principal } from '../../auth/principal.js';
import { idempotencyStoreKey, principalScope } from '../../log/idempotency.js';
import { assertStorablePayload } from '../../log/storable-payload.js';
import { eventJson, eventListJson, type ShownEvent } from '../../log/event-json.js';
import { normalizeTraceparent } from '../../tracing/traceparent.js';
import { ephemeralAckSchema, publishEphemeralOverHttp } from '../../presence/http.js';

export const IDEMPOTENCY_KEY_MAX = 255;
/**
 * Answers are the events' own JSON texts (log/event-json.ts): the same bytes, in the same key order, as their
 * frames, poll pages and outbound deliveries, and made once when the events have subscribers. A string sent with
 * this type goes out as it is (the response schemas document the answer; Fastify's serializer is skipped).
 */
const JSON_TYPE = 'application/json; charset=utf-8';

function idempotencyKeyOf(request: FastifyRequest): string | undefined {
  const key = request.headers['idempotency-key'];
  if (key === undefined) return undefined;
  if (typeof key !== 'string' || key.length === 0 || key.length > IDEMPOTENCY_KEY_MAX) {
    throw new HeraldError('bad_request', `Idempotency-Key must be 1 to ${IDEMPOTENCY_KEY_MAX} characters.`);
  }
  return key;
}

/**
 * An answer that is not the caller's own new event (a replay, or a
 * duplicate id) shows only what the caller may read: a publish-only
 * credential learns that its event is in the log, and where, but never the
 * stored data of an event it cannot read.
 */
function visible(ctx: AppContext, principal: Principal | undefined, event: HeraldEvent): ShownEvent {
  if (ctx.access.mayRead(principal, event.channel)) return event;
  const { data: _data, meta: _meta, ...rest } = event;
  return rest;
}

export function publishRoutes(app: FastifyInstance, ctx: AppContext): void {
  app.post<{ Params: { channel: string }; Body: PublishInput & { meta?: Record<string, unknown>; ephemeral?: boolean } }>(
    '/v1/channels/:channel/events',
    {
      schema: {
        body: { type: 'object', required: ['data'], additionalProperties: false, properties: { ...eventInputProperties, ephemeral: { type: 'boolean' } } },
        response: { 200: eventSchema, 201: eventSchema, 202: ephemeralAckSchema },
      },
      onRequest: async (request) => {
        assertChannel(request.params.channel);
        ctx.access.assertPublish(request.principal, request.params.channel);
      },
    },
    async (request, reply) => {
      const { channel } = request.params;
      const { ephemeral, ...body } = request.body;
      if (ephemeral) return publishEphemeralOverHttp(ctx, request, body, reply);
      assertStorablePayload(ctx.config.limits.jsonDepth, body);
      const key = idempotencyKeyOf(request);
      const result = await ctx.log.publish(
        [{ ...body, channel }],
        key === undefined ? undefined : idempotencyStoreKey('publish', ...principalScope(request.principal!), channel, key),
        { via: 'http', traceparent: normalizeTraceparent(request.headers.traceparent) },
      );
      const fresh = !result.replayed && result.created[0] === true;
      const event = result.events[0];
      // Keys are kept for the longer of retention.maxAge and ingest.dedupeWindow, so a replay can outlive its event.
      if (!event) throw new HeraldError('conflict', 'This Idempotency-Key was used for an event that retention has since removed; nothing was appended.');
      return reply
        .code(fresh ? 201 : 200)
        .type(JSON_TYPE)
        .send(eventJson(fresh ? event : visible(ctx, request.principal, event)));
    },
  );

  app.post<{ Body: { events: Array<PublishInput & { channel: string; meta?: Record<string, unknown> }> } }>(
    '/v1/events',
    {
      schema: {
        body: {
          type: 'object',
          required: ['events'],
          additionalProperties: false,
          properties: {
            events: {
              type: 'array',
              minItems: 1,
              maxItems: ctx.config.limits.batchEvents,
              items: {
                type: 'object',
                required: ['channel', 'data'],
                additionalProperties: false,
                properties: { channel: { type: 'string' }, ...eventInputProperties },
              },
            },
          },
        },
        response: { '2xx': { type: 'object', properties: { events: { type: 'array', items: eventSchema } } } },
      },
      onRequest: async (request) => {
        if (!request.principal) throw new HeraldError('unauthorized', 'Publishing needs a credential.');
        // Refused before its body (up to limits.bodyBytes) is read: the channels are in the body, but a credential that
        // may publish to none is refused whatever they are.
        if (request.principal.publish.length === 0) throw new HeraldError('forbidden', 'This credential may not publish to any channel.');
      },
    },
    async (request, reply) => {
      const { events } = request.body;
      const checked = new Set<string>();
      for (const event of events) {
        if (checked.has(event.channel)) continue;
        assertChannel(event.channel);
        ctx.access.assertPublish(request.principal, event.channel);
        checked.add(event.channel);
      }
      for (const event of events) assertStorablePayload(ctx.config.limits.jsonDepth, event);
      const key = idempotencyKeyOf(request);
      const result = await ctx.log.publish(
        events,
        key === undefined ? undefined : idempotencyStoreKey('batch', ...principalScope(request.principal!), key),
        { via: 'http', traceparent: normalizeTraceparent(request.headers.traceparent) },
      );
      const shown = result.events.map((event, i) => (result.created[i] ? event : visible(ctx, request.principal, event)));
      return reply
        .code(result.replayed ? 200 : 201)
        .type(JSON_TYPE)
        .send(`{"events":${eventListJson(shown)}}`);
    },
  );
}

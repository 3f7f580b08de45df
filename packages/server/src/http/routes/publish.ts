import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HeraldError, type HeraldEvent, type PublishInput } from '@herald/protocol';
import { assertChannel } from '../channels.js';
import type { AppContext } from '../context.js';
import { eventInputProperties, eventSchema } from '../schemas.js';
import type { Principal } from '../../auth/principal.js';
import { idempotencyStoreKey, principalScope } from '../../log/idempotency.js';
import { assertPayloadDepth } from '../../log/payload-depth.js';
import { keptEventJson } from '../../log/event-json.js';
import { normalizeTraceparent } from '../../tracing/traceparent.js';
import { ephemeralAckSchema, publishEphemeralOverHttp } from '../../presence/http.js';

const IDEMPOTENCY_KEY_MAX = 255;
/** An event as a publish answers with it: whole, or without its data and meta (see visible). */
type Shown = HeraldEvent | Omit<HeraldEvent, 'data' | 'meta'>;
/** A string sent with this type goes out as it is: Fastify's serializer is skipped. */
const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * The events' JSON as already made for their subscribers' frames (log/event-json.ts), when every one has it: the
 * answer then reuses those texts instead of serializing each event's data once more. Otherwise undefined, and the
 * route's serializer answers. An event shown without its data is a copy, which never has one.
 */
function keptJsonOfAll(events: readonly Shown[]): string[] | undefined {
  const texts: string[] = [];
  for (const event of events) {
    const json = 'data' in event ? keptEventJson(event) : undefined;
    if (json === undefined) return undefined;
    texts.push(json);
  }
  return texts;
}

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
function visible(ctx: AppContext, principal: Principal | undefined, event: HeraldEvent): Shown {
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
      assertPayloadDepth(ctx.config.limits.jsonDepth, body);
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
      const shown = fresh ? event : visible(ctx, request.principal, event);
      const kept = keptJsonOfAll([shown]);
      reply.code(fresh ? 201 : 200);
      return kept ? reply.type(JSON_TYPE).send(kept[0]) : reply.send(shown);
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
      for (const event of events) assertPayloadDepth(ctx.config.limits.jsonDepth, event);
      const key = idempotencyKeyOf(request);
      const result = await ctx.log.publish(
        events,
        key === undefined ? undefined : idempotencyStoreKey('batch', ...principalScope(request.principal!), key),
        { via: 'http', traceparent: normalizeTraceparent(request.headers.traceparent) },
      );
      const shown = result.events.map((event, i) => (result.created[i] ? event : visible(ctx, request.principal, event)));
      const kept = keptJsonOfAll(shown);
      reply.code(result.replayed ? 200 : 201);
      return kept ? reply.type(JSON_TYPE).send(`{"events":[${kept.join(',')}]}`) : reply.send({ events: shown });
    },
  );
}

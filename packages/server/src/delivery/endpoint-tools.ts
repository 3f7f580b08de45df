import type { FastifyInstance } from 'fastify';
import { HeraldError, isValidChannel, type DeliveryInfo } from '@herald/protocol';
import type { AppContext } from '../http/context.js';
import type { Principal } from '../auth/principal.js';
import { keptFromTenant, matchesAny } from '../auth/patterns.js';
import { newEventId } from '../log/ids.js';
import { assertStorablePayload } from '../log/storable-payload.js';
import type { EndpointRecord } from '../store/types.js';
import { deliveryInfo } from './endpoints-api.js';
import { adminOrPortal, assertChannelsAllowed, endpointVisible, TestEventLimiter } from '../portal/tenancy.js';

/** The channel a test event names when the caller gives none and the endpoint has no plain channel name. */
export const TEST_CHANNEL = 'herald:test';
export const TEST_EVENT_TYPE = 'herald.test';
/** How many of an endpoint's latest deliveries its recent success rate is taken over. */
export const RECENT_DELIVERIES = 100;

export interface TestEventBody {
  channel?: string;
  type?: string;
  data?: unknown;
}

export interface EndpointHealth {
  endpointId: string;
  /** How many of the latest deliveries were looked at (at most RECENT_DELIVERIES). */
  window: number;
  succeeded: number;
  failed: number;
  /** Waiting for their first attempt. */
  pending: number;
  /** Pending after at least one failed attempt. */
  retrying: number;
  /** succeeded ÷ (succeeded + failed + retrying), or null when none of them has been tried yet. */
  successRate: number | null;
}

/**
 * One delivery of a synthetic event (`seq` 0: it is not in the log) to this endpoint alone, signed and
 * retried like any other, so a receiver can be checked without publishing to a channel other endpoints
 * follow. It is created with the store's cursor at 0 for its channel, which the store never moves back.
 */
export async function sendTestEvent(ctx: AppContext, endpoint: EndpointRecord, body: TestEventBody): Promise<DeliveryInfo> {
  if (!endpoint.enabled) throw new HeraldError('conflict', `Endpoint ${endpoint.id} is disabled: enable it to send a test event.`);
  const channel = body.channel ?? endpoint.channels.find((c) => !c.includes('*')) ?? TEST_CHANNEL;
  if (!isValidChannel(channel)) throw new HeraldError('invalid_channel', `Invalid channel name ${JSON.stringify(channel)}.`);
  if (body.channel !== undefined && !matchesAny(endpoint.channels, channel)) {
    throw new HeraldError('bad_request', `Channel ${channel} is not one the endpoint follows (${endpoint.channels.join(', ')}).`);
  }
  // As the dispatcher never sends a tenant's endpoint Herald's own channels (herald:test, the default label, is no log).
  if (body.channel !== undefined && keptFromTenant(endpoint, channel)) {
    throw new HeraldError('bad_request', `Channel ${channel} is one of Herald's own, which no tenant's endpoint receives.`);
  }
  if (body.data !== undefined) assertStorablePayload(ctx.config.limits.jsonDepth, { data: body.data });
  const now = Date.now();
  const event = {
    id: newEventId(now),
    channel,
    seq: 0,
    type: body.type ?? TEST_EVENT_TYPE,
    data: body.data ?? { message: 'A test event from Herald.', endpointId: endpoint.id },
    time: new Date(now).toISOString(),
  };
  const store = ctx.delivery.store;
  await store.createDeliveries(channel, 0, [{ endpointId: endpoint.id, eventId: event.id, channel, seq: 0, payload: JSON.stringify(event), createdAt: now }]);
  const created = (await store.listDeliveries(endpoint.id, undefined, 50)).find((d) => d.eventId === event.id);
  if (!created) {
    // The store writes no delivery for an endpoint deleted meanwhile: answered as the delete's callers see it.
    if (!(await store.getEndpoint(endpoint.id))) throw new HeraldError('not_found', `No endpoint ${endpoint.id}.`);
    // Written all the same: the pump sends it like any other delivery.
    ctx.delivery.worker.kick();
    throw new HeraldError('internal', 'The test delivery was written but cannot be read back.');
  }
  // Sent at once, even to an endpoint whose circuit is open: the operator is checking whether it works now.
  ctx.delivery.worker.testQueued(endpoint.id, created.id);
  return deliveryInfo(created);
}

/** How an endpoint has fared over its latest deliveries. */
export async function endpointHealth(ctx: AppContext, endpointId: string): Promise<EndpointHealth> {
  const recent = await ctx.delivery.store.listDeliveries(endpointId, undefined, RECENT_DELIVERIES);
  const health: EndpointHealth = { endpointId, window: recent.length, succeeded: 0, failed: 0, pending: 0, retrying: 0, successRate: null };
  for (const d of recent) {
    if (d.status === 'succeeded') health.succeeded += 1;
    else if (d.status === 'failed') health.failed += 1;
    else if (d.attempts > 0) health.retrying += 1;
    else health.pending += 1;
  }
  const tried = health.succeeded + health.failed + health.retrying;
  health.successRate = tried === 0 ? null : health.succeeded / tried;
  return health;
}

/** `POST /v1/endpoints/{id}/test` and `GET /v1/endpoints/{id}/stats` (admin, or a portal session for its tenant's endpoints). */
export function endpointToolRoutes(app: FastifyInstance, ctx: AppContext): void {
  const admin = adminOrPortal(ctx.access);
  const testLimit = new TestEventLimiter();
  const load = async (id: string, caller: Principal | undefined) => {
    const endpoint = await ctx.delivery.store.getEndpoint(id);
    if (!endpoint || !endpointVisible(caller, endpoint)) throw new HeraldError('not_found', `No endpoint ${id}.`);
    return endpoint;
  };

  app.post<{ Params: { id: string }; Body: TestEventBody | undefined }>(
    '/v1/endpoints/:id/test',
    {
      ...admin,
      schema: {
        // No body at all is the default test event (Fastify validates a missing body as null).
        body: {
          type: ['object', 'null'],
          additionalProperties: false,
          properties: { channel: { type: 'string', minLength: 1, maxLength: 128 }, type: { type: 'string', minLength: 1, maxLength: 128 }, data: {} },
        },
      },
    },
    async (request, reply) => {
      const endpoint = await load(request.params.id, request.principal);
      // A session's test event is signed with the endpoint's secret: on channels wider than the session's, it was an
      // event of the session's making that the platform's receiver would take for another tenant's.
      assertChannelsAllowed(request.principal, endpoint.channels);
      try {
        testLimit.take(request.principal, request.body?.data);
      } catch (error) {
        const wait = (error as { details?: { retryAfter?: number } }).details?.retryAfter;
        if (wait !== undefined) void reply.header('retry-after', String(wait));
        throw error;
      }
      return reply.code(202).send(await sendTestEvent(ctx, endpoint, request.body ?? {}));
    },
  );

  app.get<{ Params: { id: string } }>('/v1/endpoints/:id/stats', admin, async (request) => {
    await load(request.params.id, request.principal);
    return endpointHealth(ctx, request.params.id);
  });
}

import type { FastifyInstance } from 'fastify';
import { adminOnly } from '../http/admin.js';
import { rotate } from '../auth/rotation.js';
import {
  DELIVERY_SCHEMES,
  DELIVERY_STATUSES,
  ENDPOINT_ORDERINGS,
  HeraldError,
  type AttemptInfo,
  type DeliveryInfo,
  type DeliveryScheme,
  type DeliveryStatus,
  type EndpointInfo,
  type EndpointOrdering,
} from '@herald/protocol';
import { generateSecret, secretWeakness, sign, WebhookVerificationError } from '@herald/webhooks';
import type { AppContext } from '../http/context.js';
import { channelPatternList } from '../http/schemas.js';
import { randomId } from '../auth/secrets.js';
import { keptFromTenant, matchesAny, patternCovered } from '../auth/patterns.js';
import type { AttemptRecord, DeliveryRecord, EndpointRecord } from '../store/types.js';
import type { Principal } from '../auth/principal.js';
import { TENANT_REGEX } from '../portal/scope.js';
import {
  adminOrPortal,
  assertChannelsAllowed,
  assertConcurrencyAllowed,
  endpointVisible,
  assertRoomForEndpoint,
  endpointUrlCheck,
  listFilterFor,
  lookupErrorShownTo,
  portalScopeOf,
  tenantFor,
  tenantFull,
} from '../portal/tenancy.js';

const DAY = 86_400;

interface EndpointBody {
  url: string;
  channels: string[];
  types?: string[];
  scheme?: DeliveryScheme;
  secret?: string;
  headers?: Record<string, string>;
  rateLimit?: number;
  maxConcurrency?: number;
  ordering?: EndpointOrdering;
  enabled?: boolean;
  description?: string;
  tenant?: string;
}

const endpointProperties = {
  url: { type: 'string', minLength: 1, maxLength: 2048 },
  channels: { ...channelPatternList, minItems: 1 },
  types: { type: 'array', maxItems: 100, items: { type: 'string', minLength: 1, maxLength: 128 } },
  scheme: { type: 'string', enum: DELIVERY_SCHEMES },
  // Strength and header rules are checked in code, so their refusals carry `weak_secret` and `invalid_header`.
  secret: { type: 'string', minLength: 1, maxLength: 1024 },
  headers: { type: 'object', additionalProperties: { type: 'string' } },
  rateLimit: { type: 'number', exclusiveMinimum: 0, maximum: 100_000 },
  maxConcurrency: { type: 'integer', minimum: 1, maximum: 1000 },
  ordering: {
    type: 'string',
    enum: ENDPOINT_ORDERINGS,
    description:
      '`unordered` (default): in parallel. `channel`: each channel in seq order, the next event waiting until the previous one succeeded or became a dead letter.',
  },
  enabled: { type: 'boolean' },
  description: { type: 'string', maxLength: 1000 },
  tenant: { type: 'string', pattern: TENANT_REGEX },
} as const;

/** Everything but the secret can be changed in place; the secret changes by rotation. `tenant: null` clears the tenant. */
const { secret: _secret, tenant: _tenant, ...changeable } = endpointProperties;
const patchProperties = { ...changeable, tenant: { anyOf: [{ type: 'string', pattern: TENANT_REGEX }, { type: 'null' }] } };

/**
 * An endpoint as answered (`EndpointInfo`), for the OpenAPI document only: answers are not passed through it, so
 * a field added to `EndpointInfo` is never dropped from them.
 */
export const ENDPOINT_INFO_SCHEMA = {
  type: 'object',
  required: ['id', 'url', 'channels', 'types', 'scheme', 'headers', 'maxConcurrency', 'ordering', 'enabled', 'createdAt'],
  properties: {
    id: { type: 'string' },
    ...changeable,
    tenant: endpointProperties.tenant,
    disabledReason: { type: 'string', description: 'Why Herald disabled the endpoint (410, or failing for delivery.disableAfter).' },
    createdAt: { type: 'string', format: 'date-time' },
  },
} as const;

// Optional fields left undefined are simply absent from the JSON answer.
function endpointInfo(r: EndpointRecord): EndpointInfo {
  return {
    id: r.id,
    url: r.url,
    channels: r.channels,
    types: r.types,
    scheme: r.scheme,
    headers: r.headers,
    rateLimit: r.rateLimit,
    maxConcurrency: r.maxConcurrency,
    ordering: r.ordering ?? 'unordered',
    enabled: r.enabled,
    description: r.description,
    disabledReason: r.enabled ? undefined : r.disabledReason,
    tenant: r.tenant,
    createdAt: new Date(r.createdAt).toISOString(),
  };
}

/** A delivery as `principal` is shown it (a portal session sees no host's lookup, see lookupErrorShownTo). */
export function deliveryInfo(d: DeliveryRecord, principal?: Principal): DeliveryInfo {
  return {
    id: d.id,
    endpointId: d.endpointId,
    eventId: d.eventId,
    channel: d.channel,
    seq: d.seq,
    status: d.status,
    attempts: d.attempts,
    nextAttemptAt: d.status === 'pending' ? new Date(d.nextAttemptAt).toISOString() : undefined,
    lastStatusCode: d.lastStatusCode,
    lastError: lookupErrorShownTo(principal, d.lastError),
    createdAt: new Date(d.createdAt).toISOString(),
  };
}

function attemptInfo(a: AttemptRecord, principal: Principal | undefined): AttemptInfo {
  const error = lookupErrorShownTo(principal, a.error);
  return { at: new Date(a.at).toISOString(), statusCode: a.statusCode, durationMs: a.durationMs, error, responseBody: a.responseBody };
}

/** Custom headers per endpoint: how many, and how long a name, a value, and all of them together. */
export const HEADER_LIMITS = { count: 20, nameLength: 128, valueLength: 4096, totalBytes: 8192 } as const;

/**
 * Headers an endpoint may not set: hop-by-hop ones (RFC 9110 §7.6.1) and
 * connection framing, which belong to the HTTP client; `expect`, which it
 * refuses; and every header Herald sets itself: the body's type and
 * encoding, its user agent, and the signature headers of every scheme, so
 * a custom header can neither break a delivery nor pass for a signature.
 */
const RESERVED_HEADERS = new Set([
  'connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host', 'expect',
  'content-length', 'content-type', 'content-encoding', 'user-agent',
  'webhook-id', 'webhook-timestamp', 'webhook-signature', 'svix-id', 'svix-timestamp', 'svix-signature',
  'stripe-signature', 'x-hub-signature', 'x-hub-signature-256', 'x-github-delivery',
]);

/** RFC 9110 §5.6.2 tchar: the characters of a token, which is what a field name is. */
function isTokenChar(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) ||
    c === 0x21 || (c >= 0x23 && c <= 0x27) || c === 0x2a || c === 0x2b || c === 0x2d || c === 0x2e ||
    c === 0x5e || c === 0x5f || c === 0x60 || c === 0x7c || c === 0x7e
  );
}

/**
 * RFC 9110 §5.5 field-value: visible ASCII, obs-text (0x80–0xFF), space and
 * tab, with no whitespace at either end. So no CR, LF, NUL or other control
 * character (no header injection), and nothing Node's HTTP client would
 * refuse at every delivery.
 */
function isFieldValue(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x09 || c === 0x20) {
      if (i === 0 || i === value.length - 1) return false;
    } else if (c < 0x21 || c === 0x7f || c > 0xff) {
      return false;
    }
  }
  return true;
}

/** The endpoint's custom headers as given, or a 400 `invalid_header` that names the first one at fault. */
export function assertValidHeaders(headers: Record<string, string>): void {
  const refuse = (message: string): never => {
    throw new HeraldError('invalid_header', message);
  };
  const names = Object.keys(headers);
  if (names.length > HEADER_LIMITS.count) refuse(`At most ${HEADER_LIMITS.count} custom headers; got ${names.length}.`);
  const seen = new Set<string>();
  let total = 0;
  for (const name of names) {
    const value = headers[name]!;
    const shown = JSON.stringify(name.slice(0, HEADER_LIMITS.nameLength));
    if (name.length === 0 || name.length > HEADER_LIMITS.nameLength) refuse(`Header names are 1 to ${HEADER_LIMITS.nameLength} characters.`);
    for (let i = 0; i < name.length; i++) {
      if (!isTokenChar(name.charCodeAt(i))) refuse(`Header name ${shown} is not an HTTP token (RFC 9110): letters, digits and !#$%&'*+-.^_\`|~ only.`);
    }
    const lower = name.toLowerCase();
    if (RESERVED_HEADERS.has(lower) || lower.startsWith('proxy-')) refuse(`Header ${shown} is set by Herald or the HTTP connection and cannot be overridden.`);
    if (seen.has(lower)) refuse(`Header ${shown} is given twice (names are case-insensitive).`);
    seen.add(lower);
    if (value.length > HEADER_LIMITS.valueLength) refuse(`The value of ${shown} is over ${HEADER_LIMITS.valueLength} characters.`);
    if (!isFieldValue(value)) refuse(`The value of ${shown} has a control character (CR, LF, NUL…), a character above U+00FF, or whitespace at an end.`);
    total += name.length + value.length;
  }
  if (total > HEADER_LIMITS.totalBytes) refuse(`Custom headers total over ${HEADER_LIMITS.totalBytes} bytes.`);
}

/** A secret the user chose is refused unless it is strong enough for the scheme (400 `weak_secret`). */
function assertStrongSecret(scheme: DeliveryScheme, secret: string): void {
  const weakness = secretWeakness(scheme, secret);
  if (weakness) throw new HeraldError('weak_secret', weakness);
}

/** A secret the scheme cannot sign with is refused at registration, not at the first delivery. */
function assertUsableSecret(scheme: DeliveryScheme, secret: string): void {
  try {
    sign(scheme, { secret, body: '' });
  } catch (error) {
    if (error instanceof WebhookVerificationError) throw new HeraldError('unprocessable', `Unusable secret: ${error.message}`);
    throw error;
  }
}

function parseTime(text: string, name: string): number {
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw new HeraldError('bad_request', `\`${name}\` must be an ISO 8601 time.`);
  return ms;
}

/**
 * Outbound webhook endpoints and their deliveries: the admin API, which an
 * endpoint-portal session may call too, confined to its tenant (see
 * portal/tenancy.ts). Only reading a stored secret stays admin-only.
 */
export function endpointRoutes(app: FastifyInstance, ctx: AppContext): void {
  const { delivery } = ctx;
  const store = delivery.store;
  const admin = adminOnly(ctx);
  const scoped = adminOrPortal(ctx.access);
  const checkUrl = endpointUrlCheck(delivery.guard, delivery.tenantGuard);
  /** The endpoint, if it exists and the caller's tenant covers it; 404 alike otherwise. */
  const endpoint = async (id: string, caller: Principal | undefined) => {
    const record = await store.getEndpoint(id);
    if (!record || !endpointVisible(caller, record)) throw new HeraldError('not_found', `No endpoint ${id}.`);
    return record;
  };
  /** The delivery, if it exists and belongs to an endpoint the caller's tenant covers. */
  const deliveryOf = async (id: string, caller: Principal | undefined) => {
    const record = await store.getDelivery(id);
    if (!record) throw new HeraldError('not_found', `No delivery ${id}.`);
    if (caller?.kind === 'portal') {
      const owner = await store.getEndpoint(record.endpointId);
      if (!owner || !endpointVisible(caller, owner)) throw new HeraldError('not_found', `No delivery ${id}.`);
    }
    return record;
  };

  app.post<{ Body: EndpointBody }>(
    '/v1/endpoints',
    { ...scoped, schema: { body: { type: 'object', required: ['url', 'channels'], additionalProperties: false, properties: endpointProperties } } },
    async (request, reply) => {
      const body = request.body;
      const scheme = body.scheme ?? 'standard';
      const tenant = tenantFor(request.principal, body.tenant) ?? undefined;
      assertChannelsAllowed(request.principal, body.channels);
      assertConcurrencyAllowed(request.principal, body.maxConcurrency, ctx.config.delivery.maxConcurrency);
      if (body.headers !== undefined) assertValidHeaders(body.headers);
      if (body.secret !== undefined) assertStrongSecret(scheme, body.secret);
      const secret = body.secret ?? generateSecret();
      assertUsableSecret(scheme, secret);
      const newRecord = (url: string): EndpointRecord => ({
        id: randomId('ep_'),
        url,
        channels: body.channels,
        types: body.types ?? [],
        scheme,
        secrets: [{ secret }],
        headers: body.headers ?? {},
        rateLimit: body.rateLimit,
        maxConcurrency: body.maxConcurrency ?? ctx.config.delivery.maxConcurrency,
        ordering: body.ordering ?? 'unordered',
        enabled: body.enabled ?? true,
        description: body.description,
        tenant,
        createdAt: Date.now(),
      });
      // Counted first for the refusal's message, then again by the insert itself: creates racing on this node or
      // any other all pass the first count before any is inserted (400 at once made 401 against a limit of 100).
      await assertRoomForEndpoint(request.principal, store, ctx.config.portal.maxEndpoints);
      const record = newRecord((await checkUrl(request.principal, body.url)).href);
      const limit = portalScopeOf(request.principal) ? ctx.config.portal.maxEndpoints : undefined;
      if (!(await store.insertEndpoint(record, limit))) throw tenantFull(record.tenant!, ctx.config.portal.maxEndpoints);
      await delivery.endpointChanged(record.id);
      return reply.code(201).send({ ...endpointInfo(record), secret });
    },
  );

  app.get<{ Querystring: { tenant?: string } }>(
    '/v1/endpoints',
    { ...scoped, schema: { querystring: { type: 'object', properties: { tenant: { type: 'string', pattern: TENANT_REGEX } } } } },
    async (request) => ({ endpoints: (await store.listEndpoints(listFilterFor(request.principal, request.query.tenant))).map(endpointInfo) }),
  );

  app.get<{ Params: { id: string } }>('/v1/endpoints/:id', scoped, async (request) => endpointInfo(await endpoint(request.params.id, request.principal)));

  app.get<{ Params: { id: string } }>('/v1/endpoints/:id/secret', admin, async (request) => ({
    secret: (await endpoint(request.params.id, request.principal)).secrets[0]!.secret,
  }));

  app.patch<{ Params: { id: string }; Body: Partial<Omit<EndpointBody, 'secret' | 'tenant'>> & { tenant?: string | null } }>(
    '/v1/endpoints/:id',
    {
      ...scoped,
      schema: {
        body: { type: 'object', additionalProperties: false, minProperties: 1, properties: patchProperties },
      },
    },
    async (request) => {
      const record = await endpoint(request.params.id, request.principal);
      const body = request.body;
      const tenant = tenantFor(request.principal, body.tenant);
      // The channels before the change and after it. An endpoint the admin made wider than the session is the admin's
      // to change: narrowed and then re-pointed by a session, it sent the deliveries it still owed on the wider
      // channels (another tenant's events among them) to the session's URL.
      assertChannelsAllowed(request.principal, record.channels);
      if (body.channels !== undefined) assertChannelsAllowed(request.principal, body.channels);
      assertConcurrencyAllowed(request.principal, body.maxConcurrency, ctx.config.delivery.maxConcurrency);
      if (body.headers !== undefined) assertValidHeaders(body.headers);
      if (body.url !== undefined) record.url = (await checkUrl(request.principal, body.url)).href;
      if (body.scheme !== undefined) {
        assertUsableSecret(body.scheme, record.secrets[0]!.secret);
        if (body.scheme !== record.scheme) assertStrongSecret(body.scheme, record.secrets[0]!.secret);
        record.scheme = body.scheme;
      }
      if (body.channels !== undefined) record.channels = body.channels;
      if (body.types !== undefined) record.types = body.types;
      if (body.headers !== undefined) record.headers = body.headers;
      if (body.rateLimit !== undefined) record.rateLimit = body.rateLimit;
      if (body.maxConcurrency !== undefined) record.maxConcurrency = body.maxConcurrency;
      if (body.ordering !== undefined) record.ordering = body.ordering;
      if (body.description !== undefined) record.description = body.description;
      if (tenant !== undefined) record.tenant = tenant ?? undefined;
      if (body.enabled !== undefined) {
        record.enabled = body.enabled;
        // Re-enabling starts afresh: the failing streak that disabled it is over.
        if (body.enabled) {
          record.disabledReason = undefined;
          record.failingSince = undefined;
        }
      }
      await store.updateEndpoint(record);
      await delivery.endpointChanged(record.id);
      return endpointInfo(record);
    },
  );

  app.delete<{ Params: { id: string } }>('/v1/endpoints/:id', scoped, async (request, reply) => {
    await endpoint(request.params.id, request.principal);
    if (!(await store.deleteEndpoint(request.params.id))) throw new HeraldError('not_found', `No endpoint ${request.params.id}.`);
    await delivery.endpointChanged(request.params.id);
    return reply.code(204).send();
  });

  app.post<{ Params: { id: string }; Body: { graceSeconds: number } | undefined }>(
    '/v1/endpoints/:id/rotate-secret',
    {
      ...scoped,
      schema: {
        // No body at all is a day's grace (Fastify validates a missing body as null).
        body: {
          type: ['object', 'null'],
          additionalProperties: false,
          properties: { graceSeconds: { type: 'integer', minimum: 0, maximum: 30 * DAY, default: DAY } },
        },
      },
    },
    async (request) => {
      const record = await endpoint(request.params.id, request.principal);
      // A new secret for an endpoint wider than the session would let it verify (and so receive) others' events.
      assertChannelsAllowed(request.principal, record.channels);
      const graceSeconds = request.body?.graceSeconds ?? DAY;
      const secret = generateSecret();
      // During the grace period every request is signed with the new secret and the old ones.
      record.secrets = rotate(record.secrets, secret, graceSeconds);
      await store.updateEndpoint(record);
      await delivery.endpointChanged(record.id);
      return { secret, ...(graceSeconds > 0 ? { previousSecretsExpireAt: new Date(Date.now() + graceSeconds * 1000).toISOString() } : {}) };
    },
  );

  app.get<{ Params: { id: string }; Querystring: { status?: DeliveryStatus; limit: number } }>(
    '/v1/endpoints/:id/deliveries',
    {
      ...scoped,
      schema: {
        querystring: {
          type: 'object',
          properties: { status: { type: 'string', enum: DELIVERY_STATUSES }, limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
        },
      },
    },
    async (request) => {
      await endpoint(request.params.id, request.principal);
      const list = await store.listDeliveries(request.params.id, request.query.status, request.query.limit);
      return { deliveries: list.map((d) => deliveryInfo(d, request.principal)) };
    },
  );

  app.post<{ Params: { id: string }; Body: { since: string; until?: string } }>(
    '/v1/endpoints/:id/recover',
    {
      ...scoped,
      schema: {
        body: {
          type: 'object',
          required: ['since'],
          additionalProperties: false,
          properties: { since: { type: 'string' }, until: { type: 'string' } },
        },
      },
    },
    async (request, reply) => {
      const record = await endpoint(request.params.id, request.principal);
      const since = parseTime(request.body.since, 'since');
      const until = request.body.until === undefined ? Date.now() : parseTime(request.body.until, 'until');
      if (until < since) {
        throw new HeraldError('bad_request', `until (${new Date(until).toISOString()}) comes before since (${new Date(since).toISOString()}): no delivery lies between them.`);
      }
      // Only the channels the endpoint still covers, and a session's own: deliveries owed while an admin had it
      // wider are not sent again in bulk (an admin may still retry one by id).
      const scope = portalScopeOf(request.principal);
      // Never Herald's own channels to a tenant's endpoint, as the dispatcher (failed ones may date from before that rule).
      const wanted = (channel: string) =>
        matchesAny(record.channels, channel) &&
        (!scope || patternCovered(scope.channels, channel)) &&
        !keptFromTenant(record, channel);
      const recovered = await store.recover(request.params.id, since, until, Date.now(), wanted);
      if (recovered > 0) delivery.worker.retryAsked(record.id);
      return reply.code(202).send({ recovered });
    },
  );

  app.get<{ Params: { id: string } }>('/v1/deliveries/:id', scoped, async (request) => deliveryInfo(await deliveryOf(request.params.id, request.principal), request.principal));

  app.get<{ Params: { id: string } }>('/v1/deliveries/:id/attempts', scoped, async (request) => {
    await deliveryOf(request.params.id, request.principal);
    return { attempts: (await store.listAttempts(request.params.id)).map((a) => attemptInfo(a, request.principal)) };
  });

  app.post<{ Params: { id: string } }>('/v1/deliveries/:id/retry', scoped, async (request, reply) => {
    const current = await deliveryOf(request.params.id, request.principal);
    // Owed from when an admin had the endpoint wider than the session: not the session's to send again.
    assertChannelsAllowed(request.principal, [current.channel]);
    if (!(await store.retry(current.id, Date.now()))) {
      throw new HeraldError('conflict', `Delivery ${current.id} is ${current.status}; only failed deliveries can be retried.`);
    }
    delivery.worker.retryAsked(current.endpointId);
    return reply.code(202).send(deliveryInfo((await store.getDelivery(current.id))!, request.principal));
  });
}

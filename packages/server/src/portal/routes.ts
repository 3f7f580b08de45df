import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HeraldError } from '@herald/protocol';
import type { AppContext } from '../http/context.js';
import { adminOnly } from '../http/admin.js';
import { channelPatternList } from '../http/schemas.js';
import { isReservedChannel, isValidPattern, PATTERN_RULE, RESERVED_CHANNEL_PREFIX } from '../auth/patterns.js';
import type { HeraldConfig } from '../config/schema.js';
import { pageRoute } from '../console/routes.js';
import { seenEventTypes } from './event-types.js';
import { brandingSchema, eventTypeListSchema, PORTAL_LIMITS, TENANT_REGEX, type Branding, type PortalScope } from './scope.js';
import { portalScopeOf } from './tenancy.js';

interface SessionBody {
  tenant: string;
  ttl?: number;
  allowedChannels?: string[];
  eventTypes?: string[];
  branding?: Branding;
}

/** Where the portal page is; the token follows in the fragment, which browsers never send to a server or a Referer. */
export const PORTAL_PATH = '/portal';

/**
 * `portal.channels` with the tenant put in for `{tenant}`; each result must be a valid pattern, and not one of Herald's
 * own channels (400 otherwise: tenant `herald` under the default `{tenant}:*` would make `herald:*`).
 */
function channelsFor(config: HeraldConfig['portal'], tenant: string): string[] {
  return config.channels.map((template) => {
    const pattern = template.replaceAll('{tenant}', tenant);
    if (!isValidPattern(pattern)) {
      throw new HeraldError(
        'invalid_pattern',
        `Tenant ${tenant} makes ${JSON.stringify(pattern)} of the portal.channels template ${JSON.stringify(template)}, which is no valid channel pattern (${PATTERN_RULE}): give the session allowedChannels, or use a shorter tenant name.`,
      );
    }
    if (isReservedChannel(pattern)) {
      throw new HeraldError(
        'bad_request',
        `Tenant ${tenant} makes the channel pattern ${pattern} of portal.channels, one of Herald's own channels (${RESERVED_CHANNEL_PREFIX}…): choose another tenant name.`,
      );
    }
    return pattern;
  });
}

/** The session's branding over the configured one, field by field. */
export function brandingFor(config: HeraldConfig['portal'], scope: PortalScope): Required<Pick<Branding, 'name' | 'accentColor'>> & Branding {
  const own = scope.branding ?? {};
  return {
    name: own.name ?? config.branding.name,
    accentColor: own.accentColor ?? config.branding.accentColor,
    ...((own.logoUrl ?? config.branding.logoUrl) ? { logoUrl: own.logoUrl ?? config.branding.logoUrl } : {}),
  };
}

function origin(config: HeraldConfig['portal'], request: FastifyRequest): string {
  return config.publicUrl ?? `${request.protocol}://${request.host}`;
}

/** The caller's portal scope, or 401/403: these routes are for a portal session only. */
function sessionOf(request: FastifyRequest): PortalScope {
  const scope = portalScopeOf(request.principal);
  if (scope) return scope;
  if (!request.principal) throw new HeraldError('unauthorized', 'This route needs a portal session token.');
  throw new HeraldError('forbidden', 'This route is for portal session tokens (POST /v1/portal/sessions).');
}

/**
 * The endpoint portal: the admin opens a session for one tenant, and the
 * page at `/portal` manages that tenant's endpoints through the endpoint API
 * with the session token (confined to the tenant by portal/tenancy.ts).
 */
export function portalRoutes(app: FastifyInstance, ctx: AppContext): void {
  const config = ctx.config.portal;

  app.post<{ Body: SessionBody }>(
    '/v1/portal/sessions',
    {
      ...adminOnly(ctx),
      schema: {
        body: {
          type: 'object',
          required: ['tenant'],
          additionalProperties: false,
          properties: {
            tenant: { type: 'string', pattern: TENANT_REGEX },
            ttl: { type: 'integer', minimum: 1, maximum: config.maxSessionTtl },
            allowedChannels: { ...channelPatternList, maxItems: PORTAL_LIMITS.channels },
            eventTypes: eventTypeListSchema,
            branding: brandingSchema,
          },
        },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const scope: PortalScope = { tenant: body.tenant, channels: body.allowedChannels ?? channelsFor(config, body.tenant) };
      if (body.eventTypes !== undefined) scope.eventTypes = body.eventTypes;
      if (body.branding !== undefined) scope.branding = body.branding;
      const ttl = body.ttl ?? Math.min(config.sessionTtl, config.maxSessionTtl);
      // A session opened with an admin-scoped API key ends when that key is revoked.
      const keyId = request.principal!.kind === 'key' ? request.principal!.id : undefined;
      const { token, expiresAt } = await ctx.auth.tokens.mintPortal(scope, ttl, keyId);
      if (token.length > PORTAL_LIMITS.tokenBytes) {
        throw new HeraldError(
          'bad_request',
          `This session would make a token of ${token.length} bytes (at most ${PORTAL_LIMITS.tokenBytes}): set a long event-type catalogue in portal.eventTypes instead.`,
        );
      }
      return reply.code(201).send({
        url: `${origin(config, request)}${PORTAL_PATH}#token=${token}`,
        token,
        expiresAt: new Date(expiresAt * 1000).toISOString(),
        tenant: scope.tenant,
        allowedChannels: scope.channels,
        ...(scope.eventTypes ? { eventTypes: scope.eventTypes } : {}),
        branding: brandingFor(config, scope),
      });
    },
  );

  app.get('/v1/portal/session', async (request) => {
    const scope = sessionOf(request);
    return {
      tenant: scope.tenant,
      allowedChannels: scope.channels,
      expiresAt: new Date(request.principal!.expiresAt!).toISOString(),
      branding: brandingFor(config, scope),
    };
  });

  app.get('/v1/portal/event-types', async (request) => {
    const scope = sessionOf(request);
    if (scope.eventTypes) return { eventTypes: scope.eventTypes, source: 'session' };
    if (config.eventTypes.length > 0) return { eventTypes: config.eventTypes, source: 'config' };
    return { eventTypes: await seenEventTypes(ctx.log.store, scope.channels), source: 'seen' };
  });

  // Unlike the console, the portal is made to sit in a platform's page: `portal.frameAncestors` says whose.
  pageRoute(app, PORTAL_PATH, 'portal/index.html', { frameAncestors: config.frameAncestors, images: ['https:', 'http:'] });
}

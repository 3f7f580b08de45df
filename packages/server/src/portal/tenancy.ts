import type { FastifyRequest } from 'fastify';
import { HeraldError } from '@herald/protocol';
import type { AccessPolicy, Principal } from '../auth/principal.js';
import { isReservedChannel, patternCovered, RESERVED_CHANNEL_PREFIX } from '../auth/patterns.js';
import type { DeliveryStore, EndpointRecord } from '../store/types.js';
import type { UrlGuard } from '../delivery/ssrf.js';
import { PORTAL_LIMITS, type PortalScope } from './scope.js';

/**
 * How the endpoint API confines a portal session to its tenant. The admin
 * routes for endpoints and deliveries accept a portal token too, and every
 * handler passes what it touches through these checks. An endpoint of
 * another tenant (or of none), and a delivery to one, is answered exactly as
 * a missing one is (`404 not_found`, same message): delivery ids are
 * sequential, so a `403` naming the owner would let a session walk them and
 * map the other tenants' endpoints.
 */

/** Route option: the admin, or a portal session (each handler then applies its scope). */
export function adminOrPortal(access: AccessPolicy): { onRequest: (request: FastifyRequest) => Promise<void> } {
  return {
    onRequest: async (request) => {
      if (request.principal?.kind === 'portal') return;
      access.assertAdmin(request.principal);
    },
  };
}

/** The session's scope when the caller is a portal token; undefined for the admin. */
export const portalScopeOf = (principal: Principal | undefined): PortalScope | undefined =>
  principal?.kind === 'portal' ? principal.portal : undefined;

/** Whether the caller may see this endpoint: the admin sees all, a portal session its own tenant's only. */
export function endpointVisible(principal: Principal | undefined, endpoint: EndpointRecord): boolean {
  const scope = portalScopeOf(principal);
  return !scope || endpoint.tenant === scope.tenant;
}

/**
 * The tenant a new or changed endpoint gets. A portal session's endpoints
 * are always its own tenant's: naming another is `403`. The admin sets any
 * tenant, or `null` to clear it on a change.
 */
export function tenantFor(principal: Principal | undefined, requested: string | null | undefined): string | null | undefined {
  const scope = portalScopeOf(principal);
  if (!scope) return requested;
  if (requested !== undefined && requested !== scope.tenant) {
    throw new HeraldError('forbidden', `This portal session manages the endpoints of tenant ${scope.tenant} only.`);
  }
  return scope.tenant;
}

/** The tenant filter of a list: a session lists its own tenant's, and asking for another is `403`. */
export function listFilterFor(principal: Principal | undefined, requested: string | undefined): { tenant?: string } {
  const tenant = tenantFor(principal, requested);
  return typeof tenant === 'string' ? { tenant } : {};
}

/**
 * A session's endpoints listen only on the channels the platform allowed it
 * (a pattern must be covered by one of them: `acme:*` covers `acme:orders`
 * and `acme:eu:*`, never `*`), so a tenant can never receive another's events.
 */
export function assertChannelsAllowed(principal: Principal | undefined, channels: readonly string[]): void {
  const scope = portalScopeOf(principal);
  if (!scope) return;
  for (const channel of channels) {
    if (isReservedChannel(channel)) {
      throw new HeraldError('forbidden', `Channel pattern ${channel} names Herald's own channels (${RESERVED_CHANNEL_PREFIX}…), which no portal endpoint may follow.`);
    }
    if (!patternCovered(scope.channels, channel)) {
      throw new HeraldError(
        'forbidden',
        `Channel pattern ${channel} is outside this portal session's channels (${scope.channels.join(', ') || 'none'}).`,
      );
    }
  }
}

/** Concurrency is the platform's resource: a session may lower it, never raise it past the server's default. */
export function assertConcurrencyAllowed(principal: Principal | undefined, maxConcurrency: number | undefined, serverDefault: number): void {
  if (portalScopeOf(principal) && maxConcurrency !== undefined && maxConcurrency > serverDefault) {
    throw new HeraldError('forbidden', `A portal session may set maxConcurrency up to ${serverDefault}.`);
  }
}

/**
 * The SSRF check of an endpoint URL for this caller. The admin's URLs may reach `delivery.allowPrivateNetworks`
 * (the platform's own receivers); a portal session's only `portal.allowPrivateNetworks`: a tenant that could point
 * an endpoint at the platform's network would read its answers in the delivery log.
 */
export function endpointUrlCheck(adminGuard: UrlGuard, portalGuard: UrlGuard): (principal: Principal | undefined, url: string) => Promise<URL> {
  return async (principal, url) => {
    if (!portalScopeOf(principal)) return adminGuard.checkUrl(url);
    try {
      return await portalGuard.checkUrl(url);
    } catch (error) {
      // A name that does not resolve and one that resolves inward get the same answer, which names no address: told
      // apart, or told what a name resolves to, a tenant could map the platform's internal names through this route.
      // (The guard's own message also names the admin's setting; a session's URLs are governed by the portal's.)
      if (error instanceof HeraldError && error.code === 'unprocessable' && /^(Refused |Cannot resolve )/.test(error.message)) {
        throw new HeraldError(
          'unprocessable',
          `Refused ${new URL(url).origin}: a portal endpoint's host must resolve, and only to public addresses (or to portal.allowPrivateNetworks).`,
        );
      }
      throw error;
    }
  };
}

/** Attempt errors from looking up the endpoint's host: `<code>: <message>`, as the worker records them. */
const LOOKUP_ERROR = /^(ESSRF|ENOTFOUND|EAI_AGAIN|EAI_FAIL|EAI_NODATA|ENODATA|ETIMEOUT): /;

/**
 * An attempt's error as `principal` is shown it. A portal session gets one answer for every failure to look up its
 * endpoint's host, as at registration (endpointUrlCheck): the error the worker records names the address a name
 * resolved to when the SSRF guard refused it, and a name that does not resolve differs from one that resolves inward,
 * so a tenant whose name later points inward (a CNAME to a platform host) could map the platform's network. The
 * admin still sees the error as it was.
 */
export function lookupErrorShownTo(principal: Principal | undefined, error: string | undefined): string | undefined {
  if (error === undefined || !portalScopeOf(principal) || !LOOKUP_ERROR.test(error)) return error;
  return "Refused: a portal endpoint's host must resolve, and only to public addresses (or to portal.allowPrivateNetworks).";
}

/** A session may add endpoints while its tenant has fewer than `portal.maxEndpoints` (the admin's for it count too). */
export async function assertRoomForEndpoint(principal: Principal | undefined, store: Pick<DeliveryStore, 'listEndpoints'>, max: number): Promise<void> {
  const scope = portalScopeOf(principal);
  if (!scope) return;
  const count = (await store.listEndpoints({ tenant: scope.tenant })).length;
  if (count >= max) throw tenantFull(scope.tenant, max, count);
}

export function tenantFull(tenant: string, max: number, count = max): HeraldError {
  return new HeraldError('forbidden', `Tenant ${tenant} has ${count} endpoints, at most ${max} (portal.maxEndpoints): delete one first.`);
}

/**
 * Test events of portal sessions: each is a stored delivery of data the tenant chose, so a session may send
 * `testEventsPerMinute` of them a minute per tenant (on this node), of at most `testEventBytes` of data.
 * The admin is not limited.
 */
export class TestEventLimiter {
  private readonly windows = new Map<string, { start: number; count: number }>();

  constructor(
    private readonly perMinute: number = PORTAL_LIMITS.testEventsPerMinute,
    private readonly maxDataBytes: number = PORTAL_LIMITS.testEventBytes,
  ) {}

  /** Throws `payload_too_large` or `too_many_requests` (with the seconds to wait in `details.retryAfter`); else counts one. */
  take(principal: Principal | undefined, data: unknown, now = Date.now()): void {
    const scope = portalScopeOf(principal);
    if (!scope) return;
    const bytes = data === undefined ? 0 : Buffer.byteLength(JSON.stringify(data));
    if (bytes > this.maxDataBytes) {
      throw new HeraldError('payload_too_large', `A test event's data is at most ${this.maxDataBytes} bytes as JSON from a portal session; this is ${bytes}.`);
    }
    let window = this.windows.get(scope.tenant);
    if (!window || now - window.start >= 60_000) {
      // Forget finished windows before the map grows with every tenant ever seen.
      if (this.windows.size >= 10_000) for (const [tenant, w] of this.windows) if (now - w.start >= 60_000) this.windows.delete(tenant);
      window = { start: now, count: 0 };
      this.windows.set(scope.tenant, window);
    }
    if (window.count >= this.perMinute) {
      const retryAfter = Math.max(1, Math.ceil((window.start + 60_000 - now) / 1000));
      throw new HeraldError('too_many_requests', `At most ${this.perMinute} test events a minute: try again in ${retryAfter} s.`, { retryAfter });
    }
    window.count += 1;
  }
}

import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Authenticator } from '../auth/authenticator.js';
import { isSameOrigin } from './cors.js';

// One cookie (`herald_token`) is all we read, so a regex does what a cookie-parsing dependency would.
const TOKEN_COOKIE_PATTERN = /(?:^|;\s*)herald_token=([^;]*)/;

/** Methods a browser's cross-site form or fetch cannot use to change anything: the only ones the cookie works for. */
const SAFE_METHODS = new Set(['GET', 'HEAD']);

/**
 * Whether a browser's ambient `herald_token` cookie may speak for this request: no `Origin` (not a browser's
 * cross-origin request), Herald's own origin, or one listed by name in `cors.origins`. `*` lets any page call
 * the API, but without credentials (CORS sends no `Access-Control-Allow-Credentials` then), and the WebSocket
 * upgrade has no CORS at all: with the cookie honoured there, any site a user visited opened a socket with the
 * user's cookie and read their private channels (cross-site WebSocket hijacking), `Origin: null` included.
 */
export function cookieAllowed(headers: IncomingHttpHeaders, origins: readonly string[]): boolean {
  const origin = headers.origin;
  return origin === undefined || isSameOrigin(origin, headers.host) || origins.includes(origin);
}

/**
 * `Authorization: Bearer …` first, then `?token=…` for clients that cannot
 * set headers (EventSource, WebSocket in browsers), then the `herald_token`
 * cookie, for a GET or HEAD only (`method`): a browser sends cookies with another
 * site's POST too, so on other methods it made a cross-site request forgery
 * (a retry of a delivery, say). The cookie also counts only from an origin
 * `origins` names (see cookieAllowed). Takes plain headers and query so the
 * WebSocket upgrade (a GET, whose Origin the gateway checks) can use it.
 */
export function credentialFrom(headers: IncomingHttpHeaders, query: unknown, origins: readonly string[], method = 'GET'): string | undefined {
  const header = headers.authorization?.trim();
  if (header) {
    const scheme = /^(\S+)\s+(.+)$/.exec(header);
    // No scheme: a key or token sent bare.
    if (!scheme) return header;
    if (/^bearer$/i.test(scheme[1]!)) return scheme[2]!.trim();
    // Another scheme (Basic, Digest) is for someone else: a proxy in front of Herald, whose credentials a browser then
    // sends with every request. Read as a key, it made every public read and every `?token=` behind it a 401.
  }
  const token = (query as Record<string, unknown> | undefined)?.token;
  if (typeof token === 'string') return token;
  const cookie = headers.cookie && SAFE_METHODS.has(method) && cookieAllowed(headers, origins) ? TOKEN_COOKIE_PATTERN.exec(headers.cookie) : null;
  if (!cookie) return undefined;
  try {
    return decodeURIComponent(cookie[1]!);
  } catch {
    return cookie[1];
  }
}

/**
 * Why the `herald_token` cookie a refused request carried was not read as its credential, for its 401: a browser app
 * that signs in with the cookie and then POSTs was told only that it needs a credential. Undefined when the request
 * has no such cookie, or sent another credential.
 */
export function ignoredCookie(request: FastifyRequest, origins: readonly string[]): string | undefined {
  const { headers } = request;
  if (!headers.cookie || !TOKEN_COOKIE_PATTERN.test(headers.cookie)) return undefined;
  // What the request would have been read for without its cookie: a credential of its own was sent (and refused).
  if (credentialFrom({ ...headers, cookie: undefined }, request.query, origins, request.method) !== undefined) return undefined;
  if (!SAFE_METHODS.has(request.method)) {
    return `The herald_token cookie counts for GET and HEAD only (a browser sends it with other sites' ${request.method}s too): send the token as Authorization: Bearer.`;
  }
  if (!cookieAllowed(headers, origins)) {
    return `The herald_token cookie counts only on requests from Herald's own origin or one named in cors.origins, not ${headers.origin}.`;
  }
  return undefined;
}

export function credentialOf(request: FastifyRequest, origins: readonly string[]): string | undefined {
  return credentialFrom(request.headers, request.query, origins, request.method);
}

/**
 * Authenticates in onRequest, before the body is read: a caller without a
 * valid credential never costs a body parse.
 */
export function installAuthentication(app: FastifyInstance, auth: Authenticator, origins: readonly string[]): void {
  app.decorateRequest('principal', undefined);
  app.addHook('onRequest', async (request) => {
    // Routes authenticated by something else (a webhook signature) ignore whatever Authorization they carry.
    if (request.routeOptions.config.signedByProvider) return;
    request.principal = await auth.authenticate(credentialOf(request, origins));
  });
}

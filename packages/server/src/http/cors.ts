import cors from '@fastify/cors';
import type { FastifyInstance } from 'fastify';
import { HeraldError } from '@herald/protocol';

export function originAllowed(origin: string, allowed: readonly string[]): boolean {
  return allowed.includes('*') || allowed.includes(origin);
}

/**
 * True when a page's `Origin` is the server the request reached (its `Host` header): a page Herald serves
 * itself (the console, the portal, an example) talks to Herald with no CORS setting. The port is compared
 * after the origin's scheme fills in its default, so `http://h` and `Host: h:80` are the same server.
 * The scheme itself is not compared: behind a TLS proxy the page is `https://` while Herald hears plain HTTP.
 */
export function isSameOrigin(origin: string, host: string | undefined): boolean {
  if (!host) return false;
  try {
    const page = new URL(origin);
    if (page.protocol !== 'http:' && page.protocol !== 'https:') return false;
    return page.host === new URL(`${page.protocol}//${host}`).host;
  } catch {
    return false;
  }
}

/**
 * For long-lived responses (SSE) and the WebSocket upgrade: a browser would hide a refused response's
 * body, but the server would still hold the stream open, so refuse it outright with 403. No Origin
 * header: not a browser's cross-origin request, nothing to check. The server's own origin is always
 * allowed; any other must be listed in `cors.origins`.
 */
export function assertOriginAllowed(origin: string | undefined, allowed: readonly string[], host: string | undefined): void {
  if (origin !== undefined && !isSameOrigin(origin, host) && !originAllowed(origin, allowed)) {
    throw new HeraldError('forbidden', `Origin ${origin} is not allowed: add it to cors.origins.`);
  }
}

/**
 * The config's allowed origins apply to the whole HTTP API, SSE included (the
 * WebSocket upgrade checks the same list). With none configured, browsers on
 * other origins are refused.
 */
export function installCors(app: FastifyInstance, origins: readonly string[]): void {
  // An OPTIONS from an allowed Origin without Access-Control-Request-Method is no preflight (Fetch standard), which
  // @fastify/cors answers with a text/plain 400: refused here first, in Herald's JSON shape like every other error.
  // This hook is added now, the plugin's at ready(), so this one runs first. A callback hook, not an async one: it
  // runs on every request, and returns at once for all but OPTIONS; with no origin allowed (the default) none is
  // allowed here either, and the hook is not added at all.
  if (origins.length > 0) {
    app.addHook('onRequest', (request, _reply, done) => {
      const origin = request.headers.origin;
      if (request.method !== 'OPTIONS' || origin === undefined || request.headers['access-control-request-method'] !== undefined) return done();
      if (originAllowed(origin, origins)) {
        return done(new HeraldError('bad_request', 'A CORS preflight names the method it asks for in Access-Control-Request-Method.'));
      }
      done();
    });
  }
  // Loaded with the app's other plugins at ready(); nothing to await here.
  void app.register(cors, {
    origin: (origin, callback) => callback(null, origin === undefined ? false : originAllowed(origin, origins)),
    credentials: !origins.includes('*'),
    methods: ['GET', 'POST', 'PATCH', 'DELETE', 'OPTIONS'],
    // traceparent/tracestate: a browser app instrumented with OpenTelemetry sends them with its publishes (see Tracing).
    allowedHeaders: ['authorization', 'content-type', 'idempotency-key', 'last-event-id', 'traceparent', 'tracestate'],
    exposedHeaders: ['retry-after'],
    maxAge: 600,
  });
}

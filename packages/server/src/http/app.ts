import Fastify, { LogController, type FastifyInstance, type RouteOptions } from 'fastify';
import { HeraldError } from '@herald/protocol';
import type { Logger } from 'pino';
import fastifyPlugin from 'fastify-plugin';
import type { AppContext } from './context.js';
import { answerOnSocket, clientErrorHandler, frameworkErrorHandler, installErrorHandling, MAX_PARAM_LENGTH, shuttingDown } from './errors.js';
import type { Socket } from 'node:net';
import { installJsonParser } from './json-body.js';
import { installBodyBudget } from './body-budget.js';
import { installFiniteNumbers } from './finite-numbers.js';
import { installAuthentication } from './authenticate.js';
import { installOpenApi } from './openapi.js';
import { installRefusalCounting, metricsRoutes } from '../metrics/index.js';
import { publishRoutes } from './routes/publish.js';
import { keyRoutes } from './routes/keys.js';
import { tokenRoutes } from './routes/tokens.js';
import { healthRoutes } from './routes/health.js';
import { pollRoutes } from '../transports/poll/routes.js';
import { sseRoutes } from '../transports/sse/routes.js';
import { wsRoutes } from '../transports/ws/routes.js';
import { installCors } from './cors.js';
import { ingestRoutes } from '../ingest/routes.js';
import { sourceRoutes } from '../ingest/sources-api.js';
import { IngestStats } from '../ingest/stats.js';
import { endpointRoutes } from '../delivery/endpoints-api.js';
import { nodeRoutes } from '../cluster/routes.js';
import { presenceRoutes } from '../presence/routes.js';
import { exampleRoutes } from '../examples/routes.js';
import { statsRoutes } from '../metrics/index.js';
import { channelListRoutes } from './routes/channel-list.js';
import { endpointToolRoutes } from '../delivery/endpoint-tools.js';
import { consoleRoutes, uiRoutes } from '../console/routes.js';
import { portalRoutes } from '../portal/routes.js';

/** How often Node looks for requests past limits.requestTimeout (at most). */
const CHECK_INTERVAL_MS = 1000;

/** The HTTP API: a small core, each concern a plugin-like function of its own. */
export function buildApp(ctx: AppContext, logger: Logger, options: { onRoute?: (route: RouteOptions) => void } = {}): FastifyInstance {
  // A request must arrive whole (headers and body) within limits.requestTimeout (0: no limit): a client that sends a
  // body slowly would otherwise hold what it sent for as long as it likes. Node is given the timeouts when the server
  // is made (with Fastify's setting alone, a stalled body was not ended in a test here), and checks on an interval,
  // so a request is ended up to one interval past the limit: 1 s (half the limit under 2 s; Node's default of 30 s let
  // the default 30 s limit run to 45 s). Each check walks only the requests still arriving, not idle connections or
  // streams. Streams and long polls are not affected: their requests arrive at once.
  const requestTimeout = ctx.config.limits.requestTimeout * 1000;
  const app = Fastify({
    requestTimeout,
    http: {
      requestTimeout,
      headersTimeout: requestTimeout > 0 ? Math.min(60_000, requestTimeout) : 60_000,
      connectionsCheckingInterval: requestTimeout > 0 ? Math.min(CHECK_INTERVAL_MS, Math.max(100, requestTimeout / 2)) : 30_000,
      // Node would answer an HTTP/1.1 request without Host itself, with an empty 400; refused below in Herald's shape.
      requireHostHeader: false,
    },
    loggerInstance: logger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: ctx.config.limits.bodyBytes,
    // Strict bodies: an unknown field is an error, never silently dropped.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true } },
    // A request that arrives while the server closes is answered 503 below, in Herald's shape: Fastify's own 503 has
    // no CORS headers (a page on another origin saw a CORS failure) and no Retry-After.
    return503OnClosing: false,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // Errors raised before a route runs (bad URL, over-long parameter, Node's own 400/431) in Herald's JSON shape too.
    frameworkErrors: frameworkErrorHandler,
    clientErrorHandler,
  }) as unknown as FastifyInstance;
  // Every route as Fastify registers it (the OpenAPI test checks each is documented).
  if (options.onRoute) app.addHook('onRoute', options.onRoute);
  // JSON only: a text body is a client mistake worth a clear 415, not a schema error.
  app.removeContentTypeParser('text/plain');
  installJsonParser(app);
  installFiniteNumbers(app);
  installErrorHandling(app, ctx.log.writes, ctx.config.cors.origins);
  installCors(app, ctx.config.cors.origins);
  // RFC 9112 §3.2: an HTTP/1.1 request without Host is a 400 (Node's check, turned off above, sent no JSON).
  app.addHook('onRequest', async (request) => {
    if (request.raw.httpVersion === '1.1' && request.headers.host === undefined) {
      throw new HeraldError('bad_request', 'An HTTP/1.1 request needs a Host header (RFC 9112 §3.2).');
    }
  });
  // CONNECT asks for a tunnel: Node hands it to 'connect' listeners only, and with none closes the socket unanswered.
  app.server.on('connect', (_request, socket: Socket) => {
    answerOnSocket(socket, new HeraldError('bad_request', 'Herald is not a proxy: CONNECT is not served.'));
  });
  // After every onRequest hook (CORS's included), so the refusal carries the CORS headers. Fastify still sends
  // `Connection: close` while it closes.
  let closing = false;
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  app.addHook('preParsing', (_request, _reply, payload, done) => (closing ? done(shuttingDown()) : done(null, payload)));
  installBodyBudget(app, ctx.config.limits);
  installAuthentication(app, ctx.auth, ctx.config.cors.origins);
  // Before any route: @fastify/swagger collects routes as they are added.
  installOpenApi(app, ctx);
  installRefusalCounting(app);
  // Routes load as a plugin after @fastify/swagger (above), so its onRoute hook sees each one; fastifyPlugin keeps them
  // in the root scope, where they were before.
  void app.register(
    fastifyPlugin(async (api: FastifyInstance) => {
      metricsRoutes(api, ctx);
      healthRoutes(api, ctx);
      publishRoutes(api, ctx);
      pollRoutes(api, ctx);
      sseRoutes(api, ctx);
      wsRoutes(api);
      keyRoutes(api, ctx);
      tokenRoutes(api, ctx);
      const ingestStats = new IngestStats();
      sourceRoutes(api, ctx, ingestStats);
      ingestRoutes(api, ctx, ingestStats);
      endpointRoutes(api, ctx);
      endpointToolRoutes(api, ctx);
      nodeRoutes(api, ctx);
      presenceRoutes(api, ctx);
      exampleRoutes(api, ctx);
      statsRoutes(api, ctx);
      channelListRoutes(api, ctx);
      uiRoutes(api);
      consoleRoutes(api);
      portalRoutes(api, ctx);
    }),
  );
  return app;
}

import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { AppContext } from './context.js';
import { installErrorHandling } from './errors.js';
import { installAuthentication } from './authenticate.js';
import { publishRoutes } from './routes/publish.js';
import { keyRoutes } from './routes/keys.js';
import { tokenRoutes } from './routes/tokens.js';
import { healthRoutes } from './routes/health.js';
import { pollRoutes } from '../transports/poll/routes.js';
import { sseRoutes } from '../transports/sse/routes.js';
import { installCors } from './cors.js';
import { ingestRoutes } from '../ingest/routes.js';
import { sourceRoutes } from '../ingest/sources-api.js';
import { IngestStats } from '../ingest/stats.js';
import { endpointRoutes } from '../delivery/endpoints-api.js';
import { nodeRoutes } from '../cluster/routes.js';

/** The HTTP API: a small core, each concern a plugin-like function of its own. */
export function buildApp(ctx: AppContext, logger: Logger): FastifyInstance {
  const app = Fastify({
    loggerInstance: logger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: ctx.config.limits.bodyBytes,
    // Strict bodies: an unknown field is an error, never silently dropped.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true } },
    return503OnClosing: true,
    // Channel names are up to 128 characters; longer ones reach the handler and get invalid_channel.
    routerOptions: { maxParamLength: 1024 },
  }) as unknown as FastifyInstance;
  // JSON only: a text body is a client mistake worth a clear 415, not a schema error.
  app.removeContentTypeParser('text/plain');
  installErrorHandling(app);
  installCors(app, ctx.config.cors.origins);
  installAuthentication(app, ctx.auth);
  healthRoutes(app, ctx);
  publishRoutes(app, ctx);
  pollRoutes(app, ctx);
  sseRoutes(app, ctx);
  keyRoutes(app, ctx);
  tokenRoutes(app, ctx);
  const ingestStats = new IngestStats();
  sourceRoutes(app, ctx, ingestStats);
  ingestRoutes(app, ctx, ingestStats);
  endpointRoutes(app, ctx);
  nodeRoutes(app, ctx);
  return app;
}

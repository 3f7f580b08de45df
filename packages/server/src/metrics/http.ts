import { createServer, type Server } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../http/context.js';
import { registry, scrape } from './registry.js';
import { countRefused, refusalReason } from './record.js';

/**
 * `GET /metrics` on the API port (when `metrics.port` is 0): the admin key
 * (or an admin-scoped API key) is needed unless `metrics.public` is true.
 */
export function metricsRoutes(app: FastifyInstance, ctx: AppContext): void {
  const { metrics } = ctx.config;
  if (!metrics.enabled || metrics.port !== 0) return;
  app.get(
    '/metrics',
    {
      onRequest: async (request) => {
        if (!metrics.public) ctx.access.assertAdmin(request.principal);
      },
    },
    async (_request, reply) => {
      const text = await scrape();
      return reply.header('content-type', registry.contentType).header('cache-control', 'no-store').send(text);
    },
  );
}

/**
 * `metrics.port` > 0: `/metrics` on a listener of its own, without
 * authentication, for a scraper on a private network (bind it with
 * `metrics.host`). Resolves with the port bound.
 */
export async function startMetricsListener(host: string, port: number): Promise<{ port: number; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"code":"not_found","message":"Only GET /metrics here."}}');
      return;
    }
    scrape().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' }).end(text),
      () => res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":{"code":"internal","message":"Collecting metrics failed."}}'),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const SSE_ROUTES = new Set(['/v1/channels/:channel/stream', '/v1/stream']);
const POLL_ROUTES = new Set(['/v1/channels/:channel/events', '/v1/events']);

/** Counts refused SSE streams and long polls (the WebSocket gateway counts its own refusals). */
export function installRefusalCounting(app: FastifyInstance): void {
  app.addHook('onResponse', async (request, reply) => {
    if (reply.statusCode < 400 || request.method !== 'GET') return;
    const url = request.routeOptions.url;
    if (url === undefined) return;
    if (SSE_ROUTES.has(url)) countRefused('sse', refusalReason(reply.statusCode));
    else if (POLL_ROUTES.has(url) && Number((request.query as { wait?: unknown } | undefined)?.wait ?? 0) > 0) {
      countRefused('long_poll', refusalReason(reply.statusCode));
    }
  });
}

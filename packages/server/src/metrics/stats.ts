import type { FastifyInstance } from 'fastify';
import type { Counter, Gauge } from 'prom-client';
import { adminOnly } from '../http/admin.js';
import type { AppContext } from '../http/context.js';
import { families } from './registry.js';
import { disabledByHerald } from '../store/types.js';

/** A family's values by one label (or under `total` for a family without labels), read as /metrics would. */
async function byLabel(metric: Counter | Gauge, label?: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const { labels, value } of (await metric.get()).values) {
    const key = label === undefined ? 'total' : String(labels[label] ?? '');
    out[key] = (out[key] ?? 0) + value;
  }
  return out;
}

const sum = (values: Record<string, number>): number => Object.values(values).reduce((a, b) => a + b, 0);

/** Fills in every expected label with 0, so a client sees the same keys before and after the first event. */
function withKeys(values: Record<string, number>, keys: readonly string[]): Record<string, number> {
  return Object.fromEntries(keys.map((k) => [k, values[k] ?? 0]));
}

export interface HeraldStats {
  time: string;
  node: string;
  /** Counters since this process started (as in /metrics): a client derives rates from two readings. */
  events: { appended: number; byVia: Record<string, number> };
  realtime: { delivered: number; byTransport: Record<string, number> };
  webhooks: { attempts: number; succeeded: number; byOutcome: Record<string, number> };
  /** Gauges: now. */
  connections: Record<string, number>;
  deliveries: { pending: number; failed: number };
  endpoints: { total: number; disabled: number };
}

/**
 * The figures of /metrics that the console's overview charts, as JSON: the same families, read the same
 * way (gauges collected at read time), so the two never disagree.
 */
export async function readStats(ctx: AppContext): Promise<HeraldStats> {
  const [appended, realtime, attempts, connections, deliveries, endpoints] = await Promise.all([
    byLabel(families.eventsAppended, 'via'),
    byLabel(families.realtimeDeliveries, 'transport'),
    byLabel(families.outboundAttempts, 'outcome'),
    byLabel(families.connectionsOpen, 'transport'),
    byLabel(families.deliveries, 'status'),
    ctx.delivery.store.listEndpoints(),
  ]);
  const outcomes = withKeys(attempts, ['success', 'http_4xx', 'http_5xx', 'timeout', 'network', 'ssrf_refused']);
  return {
    time: new Date().toISOString(),
    node: ctx.nodes.id,
    events: { appended: sum(appended), byVia: withKeys(appended, ['http', 'ws', 'ingest', 'system']) },
    realtime: { delivered: sum(realtime), byTransport: withKeys(realtime, ['ws', 'sse']) },
    webhooks: { attempts: sum(outcomes), succeeded: outcomes.success!, byOutcome: outcomes },
    connections: withKeys(connections, ['ws', 'sse', 'long_poll']),
    deliveries: { pending: deliveries.pending ?? 0, failed: deliveries.failed ?? 0 },
    endpoints: { total: endpoints.length, disabled: endpoints.filter(disabledByHerald).length },
  };
}

/** `GET /v1/stats` (admin): see readStats. */
export function statsRoutes(app: FastifyInstance, ctx: AppContext): void {
  app.get('/v1/stats', adminOnly(ctx), async (_request, reply) => reply.header('cache-control', 'no-store').send(await readStats(ctx)));
}

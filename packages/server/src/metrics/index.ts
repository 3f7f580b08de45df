export * from './record.js';
export { registry, sources, collectProcessMetrics, type IngestOutcome, type MetricsSource, type Transport, type WayIn } from './registry.js';
export { installRefusalCounting, metricsRoutes, startMetricsListener } from './http.js';
export { readStats, statsRoutes, type HeraldStats } from './stats.js';

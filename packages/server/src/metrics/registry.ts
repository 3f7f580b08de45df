import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Herald's Prometheus families, in one registry of their own (never
 * prom-client's global one, so an app embedding Herald keeps its registry
 * to itself). Every family is `herald_*`, and every label has a small fixed
 * set of values: no channel names, URLs or ids.
 *
 * The rest of the server never imports prom-client: it calls the small typed
 * functions in `record.ts`. Counts on the fan-out path are plain integers
 * (`tally`), folded into their counters when Prometheus scrapes.
 */
export const registry = new Registry();
/** Families that mean something on a SQLite node only: scraped when a server here runs on SQLite (see {@link scrape}). */
const sqliteRegistry = new Registry();

export type Transport = 'ws' | 'sse' | 'long_poll';
export type WayIn = 'http' | 'ws' | 'ingest' | 'system';
export type RefusalReason = 'bad_request' | 'unauthorized' | 'forbidden' | 'not_found' | 'unavailable' | 'other';
/** `invalid`: signed, but a body Herald cannot store (not JSON, not UTF-8, too deep); `error`: Herald's own failure (a 5xx). */
export type IngestOutcome = 'accepted' | 'duplicate' | 'invalid_signature' | 'expired' | 'too_large' | 'invalid' | 'error';
export type AttemptOutcome = 'success' | 'http_4xx' | 'http_5xx' | 'timeout' | 'network' | 'ssrf_refused';
export type StoreKind = 'sqlite' | 'postgres';

/** What a running server reports at scrape time; registered by `startServer`, removed at close. */
export interface MetricsSource {
  /** The node's store: a PostgreSQL node exports no SQLite family. */
  store: StoreKind;
  connections(): Record<Transport, number>;
  busUp(): boolean;
  /** Cluster bus only: messages sent to and received from the other nodes. */
  busMessages?(): { sent: number; received: number };
  /** Deliveries pending and failed (dead letters), and disabled endpoints; read from the store. */
  deliveryState?(): Promise<{ pending: number; failed: number; endpointsDisabled: number }>;
  /** Bytes the node's replays hold under limits.replayBytes. */
  replayBytes?(): number;
  /** Endpoints whose circuit breaker is open on this node (nothing is sent to them until a probe succeeds). */
  circuitsOpen?(): number;
}

export const sources = new Set<MetricsSource>();

/** Plain counts bumped on the hot path, read at scrape time: an integer add per socket write, nothing more. */
export const tally = {
  realtime: { ws: 0, sse: 0 },
  subscriptions: 0,
};

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

function sum(pick: (s: MetricsSource) => number): number {
  let total = 0;
  for (const source of sources) total += pick(source);
  return total;
}

export const families = {
  connectionsOpen: new Gauge({
    name: 'herald_connections_open',
    help: 'Open realtime connections (WebSockets, SSE streams, parked long polls).',
    labelNames: ['transport'] as const,
    registers: [registry],
    collect() {
      for (const transport of ['ws', 'sse', 'long_poll'] as const) this.set({ transport }, sum((s) => s.connections()[transport]));
    },
  }),
  subscriptionsOpen: new Gauge({
    name: 'herald_subscriptions_open',
    help: 'Open channel subscriptions over SSE and WebSockets (one per channel per connection).',
    registers: [registry],
    collect() {
      this.set(tally.subscriptions);
    },
  }),
  connectionsRefused: new Counter({
    name: 'herald_connections_refused_total',
    help: 'Realtime connections (WebSocket upgrades, SSE streams, long polls) refused, by reason.',
    labelNames: ['transport', 'reason'] as const,
    registers: [registry],
  }),
  connectionsDropped: new Counter({
    name: 'herald_connections_dropped_total',
    help: 'Client connections closed as they arrived because limits.connections were open already.',
    registers: [registry],
  }),
  replayBytes: new Gauge({
    name: 'herald_replay_bytes',
    help: 'Bytes of SSE and WebSocket replay pages held unsent (or reserved) under limits.replayBytes.',
    registers: [registry],
    collect() {
      this.set(sum((s) => s.replayBytes?.() ?? 0));
    },
  }),
  replayWaits: new Counter({
    name: 'herald_replay_waits_total',
    help: 'Replay pages that waited for room under limits.replayBytes before being read.',
    registers: [registry],
  }),
  longPollsRefused: new Counter({
    name: 'herald_long_polls_refused_total',
    help: 'Long polls refused with 503 because parking them would pass limits.parkedPollBytes.',
    registers: [registry],
  }),
  eventsAppended: new Counter({
    name: 'herald_events_appended_total',
    help: 'Events appended to the log (replays and duplicates not counted), by way in.',
    labelNames: ['via'] as const,
    registers: [registry],
  }),
  publishDuration: new Histogram({
    name: 'herald_publish_duration_seconds',
    help: 'Publish latency: from the log receiving the request to the events being durable.',
    labelNames: ['via'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  }),
  groupCommitBatch: new Histogram({
    name: 'herald_group_commit_batch_size',
    help: 'Append requests committed together in one store transaction (group commit).',
    labelNames: ['store'] as const,
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
    registers: [registry],
  }),
  storeCommitDuration: new Histogram({
    name: 'herald_store_commit_duration_seconds',
    help: 'Duration of one group-commit append transaction in the store.',
    labelNames: ['store'] as const,
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  }),
  checkpointFailures: new Counter({
    name: 'herald_store_checkpoint_failures_total',
    help: 'SQLite checkpoints on the checkpoint thread that failed; after 3 in a row, or a thread that cannot run, wide commits checkpoint themselves.',
    registers: [sqliteRegistry],
  }),
  realtimeDeliveries: new Counter({
    name: 'herald_realtime_deliveries_total',
    help: 'Events written to realtime subscribers (one per event per subscription), by transport.',
    labelNames: ['transport'] as const,
    registers: [registry],
    collect() {
      // Fold the hot-path tallies in: the counter moves by the difference since the last scrape.
      for (const transport of ['ws', 'sse'] as const) {
        const seen = tally.realtime[transport];
        const delta = seen - folded[transport];
        if (delta > 0) this.inc({ transport }, delta);
        folded[transport] = seen;
      }
    },
  }),
  fanoutLag: new Histogram({
    name: 'herald_fanout_lag_seconds',
    help: "From an event's append to the last local subscriber's write being issued.",
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  }),
  slowConsumers: new Counter({
    name: 'herald_slow_consumer_disconnects_total',
    help: 'Realtime connections dropped as too slow: past limits.sendBufferBytes, or a replay (or a poll answer) not read for limits.replayStallTimeout.',
    labelNames: ['transport'] as const,
    registers: [registry],
  }),
  inboundWebhooks: new Counter({
    name: 'herald_inbound_webhooks_total',
    help: 'Inbound webhook requests, by provider and outcome.',
    labelNames: ['provider', 'outcome'] as const,
    registers: [registry],
  }),
  outboundAttempts: new Counter({
    name: 'herald_outbound_attempts_total',
    help: 'Outbound webhook delivery attempts, by outcome.',
    labelNames: ['outcome'] as const,
    registers: [registry],
  }),
  deliveryLatency: new Histogram({
    name: 'herald_delivery_latency_seconds',
    help: "From a delivery's creation (the event's append) to the receiver's 2xx, retries included.",
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200, 36_000],
    registers: [registry],
  }),
  deliveries: new Gauge({
    name: 'herald_deliveries',
    help: 'Outbound deliveries in the store: pending (waiting or retrying) and failed (dead letters).',
    labelNames: ['status'] as const,
    registers: [registry],
    async collect() {
      const state = await deliveryState();
      this.set({ status: 'pending' }, state.pending);
      this.set({ status: 'failed' }, state.failed);
    },
  }),
  endpointsDisabled: new Gauge({
    name: 'herald_endpoints_disabled',
    help: 'Outbound endpoints disabled (410 Gone, or failing for delivery.disableAfter).',
    registers: [registry],
    async collect() {
      this.set((await deliveryState()).endpointsDisabled);
    },
  }),
  circuitsOpen: new Gauge({
    name: 'herald_endpoint_circuits_open',
    help: 'Outbound endpoints whose circuit breaker is open on this node: nothing is sent to them until a probe succeeds.',
    registers: [registry],
    collect() {
      this.set(sum((s) => s.circuitsOpen?.() ?? 0));
    },
  }),
  busUp: new Gauge({
    name: 'herald_bus_up',
    help: 'The bus between nodes: 1 up, 0 down (always 1 on a single node).',
    registers: [registry],
    collect() {
      let up = 1;
      for (const source of sources) if (!source.busUp()) up = 0;
      this.set(up);
    },
  }),
  busPublished: new Counter({
    name: 'herald_bus_messages_published_total',
    help: 'Cluster mode: bus messages sent to the other nodes.',
    registers: [registry],
    collect() {
      foldBus(this, 'sent');
    },
  }),
  busReceived: new Counter({
    name: 'herald_bus_messages_received_total',
    help: 'Cluster mode: bus messages received from the other nodes.',
    registers: [registry],
    collect() {
      foldBus(this, 'received');
    },
  }),
};

const folded = { ws: 0, sse: 0 };
const busFolded = new WeakMap<MetricsSource, { sent: number; received: number }>();

function foldBus(counter: Counter, which: 'sent' | 'received'): void {
  for (const source of sources) {
    const now = source.busMessages?.();
    if (!now) continue;
    let last = busFolded.get(source);
    if (!last) busFolded.set(source, (last = { sent: 0, received: 0 }));
    if (now[which] > last[which]) counter.inc(now[which] - last[which]);
    last[which] = now[which];
  }
}

/** One store read per scrape for both delivery gauges. */
let stateRead: { at: number; value: Promise<{ pending: number; failed: number; endpointsDisabled: number }> } | undefined;

function deliveryState(): Promise<{ pending: number; failed: number; endpointsDisabled: number }> {
  const now = Date.now();
  if (stateRead && now - stateRead.at < 1000) return stateRead.value;
  const value = (async () => {
    const total = { pending: 0, failed: 0, endpointsDisabled: 0 };
    for (const source of sources) {
      try {
        const state = await source.deliveryState?.();
        if (!state) continue;
        total.pending += state.pending;
        total.failed += state.failed;
        total.endpointsDisabled += state.endpointsDisabled;
      } catch {
        // The store is unreachable (or closing under the scrape): the counts are unknown, and NaN says so. A 0 would
        // be a reading, and an alert on dead letters would resolve for as long as the outage lasts.
        return { pending: NaN, failed: NaN, endpointsDisabled: NaN };
      }
    }
    return total;
  })();
  stateRead = { at: now, value };
  return value;
}

let defaultsOn = false;

/** Node's own metrics (event-loop lag, heap, GC, CPU), prefixed `herald_`; once per process. */
export function collectProcessMetrics(): void {
  if (defaultsOn) return;
  defaultsOn = true;
  collectDefaultMetrics({ register: registry, prefix: 'herald_' });
}

/** The exposition text: every family, and the SQLite ones when a server of this process runs on SQLite. */
export async function scrape(): Promise<string> {
  const text = await registry.metrics();
  if (![...sources].some((source) => source.store === 'sqlite')) return text;
  return `${text.endsWith('\n') ? text : `${text}\n`}${await sqliteRegistry.metrics()}`;
}

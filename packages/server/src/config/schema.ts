import { Type, type Static } from '@sinclair/typebox';
import { DEFAULT_MAX_JSON_DEPTH } from '@herald/protocol';
import { MAX_PATTERN_LENGTH, PATTERN_SCHEMA_REGEX } from '../auth/patterns.js';
import { ACCENT_COLOR_REGEX, BRAND_NAME_REGEX, CHANNEL_TEMPLATE_REGEX, LOGO_URL_REGEX } from '../portal/scope.js';
import { DEFAULT_SYNCS_IN_FLIGHT, MAX_SYNCS_IN_FLIGHT } from '../store/sqlite/wal-sync.js';

/**
 * The most seconds a setting that runs a timer may take: an hour. Node runs a timer of more than 2^31 - 1 ms (24.8
 * days) after 1 ms instead, so a heartbeat or trim interval of 30 days ran every millisecond; none of these needs
 * more than an hour.
 */
const TIMER_MAX_S = 3600;

const Seconds = (def: number, max?: number) =>
  Type.Number({ default: def, minimum: 0, ...(max === undefined ? {} : { maximum: max }) });

const ChannelPattern = Type.String({ minLength: 1, maxLength: MAX_PATTERN_LENGTH, pattern: PATTERN_SCHEMA_REGEX });
const ChannelPatterns = Type.Array(ChannelPattern, { default: [] });

const RetentionRule = Type.Object(
  {
    /** Channel patterns this rule applies to; the first matching rule wins. */
    channels: Type.Array(ChannelPattern, { minItems: 1 }),
    maxEvents: Type.Optional(Type.Integer({ minimum: 1 })),
    maxAge: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
  },
  { additionalProperties: false },
);

/**
 * The one configuration object. Every key has a default; a file, the
 * environment (`HERALD_` + the path in upper snake case) and CLI flags
 * override it in that order. `additionalProperties: false` everywhere makes
 * a misspelt key an error instead of a silently ignored setting.
 */
export const ConfigSchema = Type.Object(
  {
    host: Type.String({ default: '127.0.0.1', minLength: 1 }),
    port: Type.Integer({ default: 7700, minimum: 0, maximum: 65535 }),
    dataDir: Type.String({ default: './herald-data', minLength: 1 }),
    logLevel: Type.Union(
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
      { default: 'info' },
    ),
    /** When set, the admin key; otherwise one is generated at first start and stored hashed. */
    adminKey: Type.Optional(Type.String({ minLength: 16 })),
    /** HS256 secret for subscriber tokens; generated and stored when absent. */
    tokenSecret: Type.Optional(Type.String({ minLength: 32 })),
    channels: Type.Object(
      {
        /** Channels matching these patterns can be read without a credential. */
        public: ChannelPatterns,
        /** Channels matching these patterns have a presence set: a WebSocket `subscribe` with `presence` joins it. */
        presence: ChannelPatterns,
      },
      { additionalProperties: false, default: {} },
    ),
    limits: Type.Object(
      {
        bodyBytes: Type.Integer({ default: 1_048_576, minimum: 1024 }),
        batchEvents: Type.Integer({ default: 1000, minimum: 1, maximum: 100_000 }),
        pageSize: Type.Integer({ default: 1000, minimum: 1, maximum: 10_000 }),
        pollWaitMax: Seconds(60, 3600),
        /** Time for a request's headers and body to arrive; past it the connection gets 408 and is closed. */
        requestTimeout: Seconds(30, 3600),
        channelsPerRequest: Type.Integer({ default: 100, minimum: 1, maximum: 1000 }),
        /**
         * Open client connections (HTTP, SSE, WebSocket) at once; past it a new one is closed at once. 0: the
         * process's open-files limit less 512 kept for the store, outbound deliveries, PostgreSQL and Redis.
         */
        connections: Type.Integer({ default: 0, minimum: 0 }),
        /** Requests on one HTTP connection still waiting for their answers (pipelined); past it the connection is dropped. */
        pipelinedRequests: Type.Integer({ default: 8, minimum: 1, maximum: 1000 }),
        /**
         * What the long polls parked on this node may hold together, each counted as 6 KiB plus 128 B per channel (see
         * transports/poll/long-poll.ts); one that would park past it is answered 503 (reason too_many_waiting, with
         * Retry-After) instead. Connections and pipelining alone bounded it only at gigabytes. At least what one poll of
         * channelsPerRequest channels is counted as.
         */
        parkedPollBytes: Type.Integer({ default: 256 * 1024 * 1024, minimum: 1 }),
        /**
         * What the request bodies still arriving may hold together, each counted at its Content-Length (see
         * http/body-budget.ts); one that would pass it is answered 503 (reason too_many_bodies, with Retry-After) unread.
         */
        incomingBodyBytes: Type.Integer({ default: 256 * 1024 * 1024, minimum: 1 }),
        /** Per SSE or WebSocket connection: past this many unsent bytes the client is dropped as too slow. */
        sendBufferBytes: Type.Integer({ default: 4 * 1024 * 1024, minimum: 1024 }),
        /**
         * A replay (the backlog after a client's position) waits for the client to read half of sendBufferBytes before
         * its next page; a client whose unsent bytes have not gone down for this many seconds is dropped as too slow.
         */
        replayStallTimeout: Type.Number({ default: 30, exclusiveMinimum: 0, maximum: 3600 }),
        /**
         * What the SSE and WebSocket replays and the poll answers on this node may hold together in their sockets'
         * buffers (see transports/replay-budget.ts); a page with no room waits until some is sent. One page always goes.
         */
        replayBytes: Type.Integer({ default: 256 * 1024 * 1024, minimum: 1024 * 1024 }),
        /** Deepest nesting of arrays/objects accepted in event data, on every way in; deeper is 400 payload_too_deep. */
        jsonDepth: Type.Integer({ default: DEFAULT_MAX_JSON_DEPTH, minimum: 1, maximum: 1000 }),
        /** Bytes of events in one poll answer; a page stops early (at least one event) rather than pass it. */
        pageBytes: Type.Integer({ default: 4 * 1024 * 1024, minimum: 1024 }),
        /** Members of one channel's presence set, cluster-wide; a join past it is refused with presence_full. */
        presenceMembers: Type.Integer({ default: 1000, minimum: 1, maximum: 100_000 }),
        /**
         * Members of one channel's presence set with the same `sub` (its tabs and devices), cluster-wide; past it a
         * join is refused with presence_full, so one credential cannot fill a set and keep everyone else out.
         */
        presencePerSub: Type.Integer({ default: 10, minimum: 1, maximum: 100_000 }),
        /** Bytes of `data` (as JSON) in an ephemeral publish or a direct message. */
        ephemeralBytes: Type.Integer({ default: 65_536, minimum: 64, maximum: 1_048_576 }),
        /** Ephemeral publishes plus direct messages per second, per WebSocket or per credential over HTTP (bursts of as many). */
        ephemeralPerSecond: Type.Integer({ default: 100, minimum: 1, maximum: 100_000 }),
        /**
         * Presence joins per second into one channel's set on this node, from every socket together (bursts of as many);
         * past it a join is refused with too_many_requests (the SDK tries again). Each join is sent to every member, so
         * without it many members re-joining in turn cost members² frames a second.
         */
        presenceJoinsPerChannel: Type.Integer({ default: 100, minimum: 1, maximum: 100_000 }),
      },
      { additionalProperties: false, default: {} },
    ),
    cors: Type.Object(
      {
        /** Origins allowed to call the API, open SSE streams and WebSockets; `*` allows any. */
        origins: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
      },
      { additionalProperties: false, default: {} },
    ),
    sse: Type.Object(
      {
        /** Milliseconds; sent as the stream's first field, the browser's reconnect delay. */
        retry: Type.Integer({ default: 2000, minimum: 0 }),
        /** Seconds between `: ping` comments. */
        heartbeat: Type.Number({ default: 15, exclusiveMinimum: 0, maximum: TIMER_MAX_S }),
      },
      { additionalProperties: false, default: {} },
    ),
    ws: Type.Object(
      {
        /** Seconds between protocol pings; a socket that misses two pongs is dropped. */
        heartbeat: Type.Number({ default: 25, exclusiveMinimum: 0, maximum: TIMER_MAX_S }),
        /** Seconds an unauthenticated socket has to send `{"op":"auth"}`. */
        authTimeout: Type.Number({ default: 10, exclusiveMinimum: 0, maximum: TIMER_MAX_S }),
        /** Largest client frame; a bigger one closes the socket with 1009. */
        maxMessageBytes: Type.Integer({ default: 1_048_576, minimum: 1024 }),
      },
      { additionalProperties: false, default: {} },
    ),
    ingest: Type.Object(
      {
        /** Seconds a provider's event id is remembered for dedupe; Stripe retries for up to three days. */
        dedupeWindow: Type.Number({ default: 3 * 86_400, exclusiveMinimum: 0 }),
        /** Seconds of timestamp tolerance for new sources. */
        tolerance: Type.Number({ default: 300, exclusiveMinimum: 0 }),
      },
      { additionalProperties: false, default: {} },
    ),
    delivery: Type.Object(
      {
        /** Seconds before an attempt times out. */
        timeout: Type.Number({ default: 15, exclusiveMinimum: 0, maximum: TIMER_MAX_S }),
        /** Seconds before each retry, after the immediate first attempt. */
        retrySchedule: Type.Array(Type.Number({ minimum: 0 }), { default: [5, 300, 1800, 7200, 18_000, 36_000, 36_000] }),
        /** Each delay varies by up to this fraction either way, so retries do not arrive in lockstep. */
        jitter: Type.Number({ default: 0.2, minimum: 0, maximum: 1 }),
        /** Seconds: the longest `Retry-After` honoured. */
        retryAfterMax: Type.Number({ default: 3600, minimum: 0 }),
        /** Seconds of unbroken failure after which an endpoint is disabled. */
        disableAfter: Type.Number({ default: 5 * 86_400, exclusiveMinimum: 0 }),
        /** CIDRs that endpoints may reach although they are private (loopback, RFC 1918, …). */
        allowPrivateNetworks: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
        httpsOnly: Type.Boolean({ default: false }),
        /** Default per-endpoint limit on requests in flight. */
        maxConcurrency: Type.Integer({ default: 10, minimum: 1, maximum: 1000 }),
        /** Channels whose dispatcher cursors stay in memory; the least recently written beyond it are read back when written again. */
        cursorCache: Type.Integer({ default: 10_000, minimum: 1 }),
        /**
         * Per endpoint, on the node sending its deliveries: after `failures` failed attempts in a row nothing is sent to it
         * for `cooldown` seconds, then one probe; a failed probe doubles the cooldown, up to `maxCooldown`. 0 failures: off.
         */
        circuitBreaker: Type.Object(
          {
            failures: Type.Integer({ default: 10, minimum: 0 }),
            cooldown: Type.Number({ default: 5, exclusiveMinimum: 0 }),
            maxCooldown: Type.Number({ default: 300, exclusiveMinimum: 0 }),
          },
          { additionalProperties: false, default: {} },
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    retention: Type.Object(
      {
        maxEvents: Type.Integer({ default: 10_000, minimum: 1 }),
        /** Seconds. */
        maxAge: Type.Number({ default: 86_400, exclusiveMinimum: 0 }),
        /** Seconds between background trims. */
        trimInterval: Type.Number({ default: 60, exclusiveMinimum: 0, maximum: TIMER_MAX_S }),
        rules: Type.Array(RetentionRule, { default: [] }),
      },
      { additionalProperties: false, default: {} },
    ),
    metrics: Type.Object(
      {
        /** Serve `GET /metrics` (Prometheus text format). */
        enabled: Type.Boolean({ default: true }),
        /** 0: on the API port, behind the admin key unless `public`. Otherwise a listener of its own, without auth. */
        port: Type.Integer({ default: 0, minimum: 0, maximum: 65535 }),
        /** Interface of the separate metrics listener; defaults to `host`. */
        host: Type.Optional(Type.String({ minLength: 1 })),
        /** On the API port: serve `/metrics` without a credential. */
        public: Type.Boolean({ default: false }),
      },
      { additionalProperties: false, default: {} },
    ),
    /** The self-hosted endpoint portal (`/portal`, `POST /v1/portal/sessions`): see src/portal/. */
    portal: Type.Object(
      {
        /**
         * Channel patterns a session's endpoints may listen on when its request names none; `{tenant}` stands for
         * the session's tenant, and ends the pattern or is followed by `:`. Every pattern must be valid once the tenant is put in.
         */
        channels: Type.Array(Type.String({ minLength: 1, maxLength: MAX_PATTERN_LENGTH, pattern: CHANNEL_TEMPLATE_REGEX }), {
          default: ['{tenant}:*'],
        }),
        /**
         * CIDRs a session's endpoints may reach although they are private. Not `delivery.allowPrivateNetworks`, which is
         * the platform's own: a tenant pointing an endpoint inward would read the answers in its delivery log.
         */
        allowPrivateNetworks: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
        /** Most endpoints one tenant may have when a session creates one (each gets every event of its channels). */
        maxEndpoints: Type.Integer({ default: 100, minimum: 1, maximum: 100_000 }),
        /** An event-type catalogue for every tenant; empty: the portal offers the types seen on the session's channels. */
        eventTypes: Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { default: [], maxItems: 1000 }),
        /** Seconds a session lasts when its request gives no `ttl`, and the most it may ask for. */
        sessionTtl: Type.Integer({ default: 3600, minimum: 1, maximum: 86_400 }),
        maxSessionTtl: Type.Integer({ default: 86_400, minimum: 1, maximum: 7 * 86_400 }),
        /** CSP `frame-ancestors` of `/portal`: who may put it in an iframe (`'self'`, `https://app.example.com`, `*`…). */
        frameAncestors: Type.Array(Type.String({ minLength: 1, maxLength: 256, pattern: '^[^\\s;,]+$' }), { default: ["'self'"] }),
        /** Origin of the session URLs (`https://hooks.example.com`) when Herald is behind a proxy; default: the request's. */
        publicUrl: Type.Optional(Type.String({ pattern: '^https?://[^\\s/?#]+$' })),
        branding: Type.Object(
          {
            name: Type.String({ default: 'Webhooks', minLength: 1, maxLength: 64, pattern: BRAND_NAME_REGEX }),
            logoUrl: Type.Optional(Type.String({ minLength: 1, maxLength: 1024, pattern: LOGO_URL_REGEX })),
            accentColor: Type.String({ default: '#4f46e5', pattern: ACCENT_COLOR_REGEX }),
          },
          { additionalProperties: false, default: {} },
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    examples: Type.Object(
      {
        /** Serve the example apps (`/examples/webrtc/`) and mint their demo tokens: for trying Herald out, never on an exposed server. */
        enabled: Type.Boolean({ default: false }),
      },
      { additionalProperties: false, default: {} },
    ),
    /** This process's name in the cluster (`GET /v1/nodes`, leases); generated at each start when absent. */
    nodeId: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.:-]+$' })),
    bus: Type.Object(
      {
        /**
         * Absent: in-process (one node). `redis://`/`rediss://` (one Redis),
         * `redis+cluster://h:p,h:p` (Redis Cluster, sharded pub/sub),
         * `redis+sentinel://h:p,h:p/master` (Sentinel), or `postgres://` (LISTEN/NOTIFY).
         */
        url: Type.Optional(Type.String({ minLength: 1, pattern: '^(rediss?(\\+(cluster|sentinel))?|postgres(ql)?)://' })),
        /**
         * In a cluster, on the node that runs the outbound dispatcher: channels whose place in the log the bus
         * remembers for it; the least recently written beyond it are read back from the dispatcher's cursors.
         */
        channelCache: Type.Integer({ default: 10_000, minimum: 1 }),
      },
      { additionalProperties: false, default: {} },
    ),
    store: Type.Object(
      {
        /** Absent: SQLite in `dataDir`. `postgres://…`: PostgreSQL, shared by every node of a cluster. */
        url: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
        /**
         * PostgreSQL: seconds a store call may take before it fails as
         * `store_unavailable` (a hung server answers 503 this soon, not never).
         */
        queryTimeout: Type.Number({ default: 10, minimum: 1, maximum: 600 }),
        driver: Type.Literal('sqlite', { default: 'sqlite' }),
        /**
         * `full` fsyncs every commit (durable across power loss); `normal`
         * survives a process crash but may lose the last commits on power loss.
         */
        synchronous: Type.Union([Type.Literal('full'), Type.Literal('normal')], { default: 'full' }),
        /**
         * SQLite, `full`: syncs of the WAL that may run at once. 1 spends the least CPU and batches the most per sync;
         * on a disk whose sync takes milliseconds, 2 or 3 can answer sooner (see store/sqlite/wal-sync.ts).
         */
        syncsInFlight: Type.Integer({ default: DEFAULT_SYNCS_IN_FLIGHT, minimum: 1, maximum: MAX_SYNCS_IN_FLIGHT }),
        /** SQLite: how many channels' heads stay in memory; idle ones beyond it are evicted and reloaded on demand. */
        channelCache: Type.Integer({ default: 10_000, minimum: 1 }),
        /**
         * SQLite: run the event store on a thread of its own, beside the event loop (store/sqlite/event-thread/).
         * Batched publishes gain where a core is free for it; single publishes pay for the hand-over (see Benchmarks).
         */
        appendThread: Type.Boolean({ default: false }),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false },
);

export type HeraldConfig = Static<typeof ConfigSchema>;

/** Seconds an idempotency key or an inbound dedupe id is remembered: the longer of `retention.maxAge` and `ingest.dedupeWindow`. */
export function dedupeLifetime(config: Pick<HeraldConfig, 'retention' | 'ingest'>): number {
  return Math.max(config.retention.maxAge, config.ingest.dedupeWindow);
}

/**
 * The longest timestamp tolerance an inbound source may have and still never let a replay through as a new event.
 * A dedupe id is kept for the dedupeLifetime after the first delivery; a timestamp is accepted up to the tolerance
 * either side of now, so a delivery that came early in its window (a sender's clock ahead) can be replayed for up
 * to twice the tolerance after it. Half the lifetime keeps every accepted replay within reach of its dedupe id.
 * (Only for providers that sign a timestamp: Stripe, Slack, Standard Webhooks.)
 */
export function maxSourceTolerance(config: Pick<HeraldConfig, 'retention' | 'ingest'>): number {
  return dedupeLifetime(config) / 2;
}

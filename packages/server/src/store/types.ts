import type { DeliveryScheme, DeliveryStatus, EndpointOrdering, HeraldEvent, Provider, Scope } from '@herald/protocol';

/** An event ready to append: the log has already chosen its id, type and time. */
export interface NewEvent {
  channel: string;
  id: string;
  type: string;
  data: unknown;
  /** Milliseconds since the epoch. */
  time: number;
  meta?: Record<string, unknown> | undefined;
  /**
   * The log generated `id` just now, in a form no publisher may choose: it cannot be in the log yet, so the
   * store skips looking for it, and both backends leave an id of the generated form marked so out of their unique
   * index of ids (store/rows.ts `indexesId`), indexing any other id whatever its mark.
   */
  generated?: boolean;
}

export interface AppendRequest {
  events: NewEvent[];
  /** A replay of a request with the same key returns the original events and appends nothing. */
  idempotencyKey?: string | undefined;
}

export interface AppendResult {
  /** In request order. A duplicate (same id, or the whole request by key) is the original event. */
  events: HeraldEvent[];
  /** Per event: false when it was already in the log and nothing was appended. */
  created: boolean[];
  /** True when the whole request was a replay of an earlier idempotency key. */
  replayed: boolean;
}

export interface ChannelState {
  /** Highest seq ever appended; 0 for a channel with no events yet. */
  head: number;
  /** Highest seq removed by trimming; events after it are still readable. */
  trimmed: number;
  epoch: string;
}

export interface ReadResult extends ChannelState {
  /** Events with seq > after (or > trimmed, when that is higher), oldest first. */
  events: HeraldEvent[];
  /** True when events after `after` were already trimmed, or `after` is beyond the head. */
  truncated: boolean;
}

/** An event's place in its channel's log without its data: what a reader needs to choose which events to load. */
export interface EventStub {
  seq: number;
  time: number;
  /** Its `data` and `meta` as stored, in bytes (UTF-8), as `read`'s `maxBytes` counts them. */
  bytes: number;
}

export interface StubPage extends ChannelState {
  /** As {@link ReadResult.events}, without the events' data. */
  stubs: EventStub[];
  truncated: boolean;
}

export interface TrimPolicy {
  /** Keep at most this many of the newest events. */
  maxEvents?: number | undefined;
  /** Remove events older than this time (ms since the epoch). */
  olderThan?: number | undefined;
}

export interface ChannelPage {
  after?: string | undefined;
  prefix?: string | undefined;
  limit: number;
}

/** Channel names run from `prefix` up to, not including, this: above every character a name may hold. */
export const channelRangeEnd = (prefix: string): string => `${prefix}\x7f`;

/** Every channel name from `store.channels`, in pages of `size`, for callers that visit them all. */
export async function* channelPages(store: Pick<EventStore, 'channels'>, size = 1000, prefix?: string): AsyncGenerator<string[]> {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`A page holds at least one channel, not ${size}.`);
  let after: string | undefined;
  for (;;) {
    const page = await store.channels({ after, prefix, limit: size });
    if (page.length > 0) yield page;
    if (page.length < size) return;
    after = page.at(-1);
  }
}

/**
 * The durable, ordered log. Every method is async so a networked backend
 * (Redis) can implement it; the conformance suite in
 * `event-store.conformance.ts` holds every implementation to the same contract.
 */
export interface EventStore {
  /**
   * Appends all events atomically, assigning each channel's next seqs.
   * Resolves only once the write is durable.
   */
  append(request: AppendRequest): Promise<AppendResult>;
  /**
   * Up to `limit` events after `after`, in seq order. With `maxBytes`, the read also stops once the events it
   * returns hold `maxBytes` or more of `data` and `meta` as stored (always at least one event): a reader that
   * answers with a bounded page bounds what it loads, whatever the size of the events. A page can then end before
   * `head` with fewer than `limit` events; only its last seq reaching `head` says there is nothing more to read.
   */
  read(channel: string, after: number, limit: number, maxBytes?: number): Promise<ReadResult>;
  /**
   * What `read` would return for the same arguments (without `maxBytes`), each event as its seq, time and stored size,
   * loading none of their data. A reader that merges several channels by time (the multi-channel poll) chooses from
   * these which events to load: reading each channel's next events to compare their times loaded one whole event per
   * channel, 100 MB for an answer of one 1 MB event on 100 channels.
   */
  stubs(channel: string, after: number, limit: number): Promise<StubPage>;
  /**
   * Events an append rejected as of unknown outcome (`store_unavailable` with `details.outcome: "unknown"`) that
   * turned out committed, found by reading them back once the store answers: the caller announces them, as it would
   * have had the append resolved. Only a networked store (PostgreSQL) can lose a COMMIT's answer.
   */
  onLateCommit?(listener: (events: HeraldEvent[]) => void): void;
  head(channel: string): Promise<ChannelState>;
  /** Removes old events; resolves with how many were removed. */
  trim(channel: string, policy: TrimPolicy): Promise<number>;
  /** Forgets idempotency keys recorded before `olderThan` (ms). */
  expireIdempotencyKeys(olderThan: number): Promise<number>;
  /**
   * Names of channels that have had an event, a page at a time: in byte order, after `after`, starting with `prefix`,
   * at most `limit`. {@link channelPages} walks them all a page at a time, so no caller holds every name at once.
   */
  channels(page: ChannelPage): Promise<string[]>;
  /** Resolves when the store is reachable; used by /readyz. */
  ping(): Promise<void>;
  /**
   * Optional: writes and removes a small row, so /readyz can tell when a full disk has room again. A store
   * without it reports ready again after the next append succeeds.
   */
  probeWrite?(): Promise<void>;
  close(): Promise<void>;
}

export interface ApiKeyRecord {
  id: string;
  name: string;
  scopes: Scope[];
  channels: string[];
  prefix: string;
  /** SHA-256 of the key, hex. */
  hash: string;
  createdAt: number;
  revokedAt?: number | undefined;
}

export interface KeyStore {
  insert(record: ApiKeyRecord): Promise<void>;
  findByHash(hash: string): Promise<ApiKeyRecord | undefined>;
  get(id: string): Promise<ApiKeyRecord | undefined>;
  list(): Promise<ApiKeyRecord[]>;
  revoke(id: string, at: number): Promise<boolean>;
}

export interface SourceSecret {
  secret: string;
  /** Milliseconds since the epoch; absent for the current secret. */
  expiresAt?: number | undefined;
}

export interface SourceRecord {
  name: string;
  provider: Provider;
  /** The channel events are appended to. */
  channel: string;
  /** Seconds. */
  tolerance: number;
  /** Kept as given: verifying an HMAC needs the secret itself, not a hash of it. */
  secrets: SourceSecret[];
  createdAt: number;
}

export interface SourceStore {
  /** False when a source of that name exists already. */
  insert(record: SourceRecord): Promise<boolean>;
  get(name: string): Promise<SourceRecord | undefined>;
  list(): Promise<SourceRecord[]>;
  setSecrets(name: string, secrets: SourceSecret[]): Promise<boolean>;
  delete(name: string): Promise<boolean>;
}

export interface EndpointRecord {
  id: string;
  url: string;
  channels: string[];
  types: string[];
  scheme: DeliveryScheme;
  /** The first is current; older ones sign too until they expire (rotation). */
  secrets: SourceSecret[];
  headers: Record<string, string>;
  rateLimit?: number | undefined;
  maxConcurrency: number;
  /** Absent (records written before the option existed) means `unordered`. */
  ordering?: EndpointOrdering | undefined;
  enabled: boolean;
  description?: string | undefined;
  disabledReason?: string | undefined;
  /** Start of the current unbroken run of failures, ms. */
  failingSince?: number | undefined;
  /** The platform's customer it belongs to; the endpoint portal is scoped to one tenant. */
  tenant?: string | undefined;
  createdAt: number;
}

/**
 * Disabled by Herald (a 410, or failing for delivery.disableAfter: it has a `disabledReason`), which
 * `herald_endpoints_disabled` and `/v1/stats` count for an operator to alert on; one disabled by hand is not.
 */
export const disabledByHerald = (endpoint: EndpointRecord): boolean => !endpoint.enabled && endpoint.disabledReason !== undefined;

export interface NewDelivery {
  endpointId: string;
  eventId: string;
  channel: string;
  seq: number;
  /** The event JSON exactly as it will be sent and signed. */
  payload: string;
  createdAt: number;
}

export interface DeliveryRecord extends NewDelivery {
  /** `dlv_` and a number the store assigns. */
  id: string;
  status: DeliveryStatus;
  attempts: number;
  /** When the next attempt is due (ms); for pending deliveries. */
  nextAttemptAt: number;
  /** For a manual retry: this attempt is the last whatever its outcome. */
  finalAttempt: boolean;
  lastStatusCode?: number | undefined;
  lastError?: string | undefined;
}

/** Where a `due` page ended. */
export interface DueCursor {
  nextAttemptAt: number;
  id: string;
}

export interface AttemptRecord {
  deliveryId: string;
  at: number;
  statusCode?: number | undefined;
  durationMs: number;
  error?: string | undefined;
  responseBody?: string | undefined;
}

export interface AttemptOutcome {
  attempt: AttemptRecord;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: number;
}

/**
 * Outbound webhooks: endpoints, and deliveries derived from the log. The
 * dispatcher's per-channel cursor advances in the same write as the
 * deliveries it created, so a crash can only make it create them again
 * (at-least-once), never skip them.
 */
export interface DeliveryStore {
  /**
   * Inserts the endpoint. With `tenantLimit` and a record of a tenant: only while that tenant has fewer endpoints,
   * counted and inserted atomically, so creates racing on any number of nodes never take a tenant past it; false
   * (nothing inserted) when it has that many already.
   */
  insertEndpoint(record: EndpointRecord, tenantLimit?: number): Promise<boolean>;
  getEndpoint(id: string): Promise<EndpointRecord | undefined>;
  /** Every endpoint, or with `tenant` only that tenant's. */
  listEndpoints(filter?: { tenant?: string | undefined }): Promise<EndpointRecord[]>;
  updateEndpoint(record: EndpointRecord): Promise<void>;
  /** Deletes the endpoint and its deliveries, those being created meanwhile too (see createDeliveries). */
  deleteEndpoint(id: string): Promise<boolean>;

  /** Per channel, the last seq whose deliveries exist. */
  cursors(): Promise<Map<string, number>>;
  /** One channel's cursor; undefined when none was ever saved. */
  cursor(channel: string): Promise<number | undefined>;
  /** The cursors of these channels (one read for a page of them); those never saved are absent. */
  cursorsOf(channels: readonly string[]): Promise<Map<string, number>>;
  /**
   * Creates deliveries and moves the channel's cursor to `seq`, durably and atomically. A delivery for an endpoint that
   * does not exist is not written (the caller's list of endpoints may be a moment old), whichever of the two, this or
   * the endpoint's delete, starts first; the cursor moves all the same.
   */
  createDeliveries(channel: string, seq: number, deliveries: NewDelivery[]): Promise<void>;
  /** Moves many channels' cursors forward (never back) in one write: channels whose events created no delivery. */
  saveCursors(cursors: ReadonlyMap<string, number>): Promise<void>;
  /**
   * Pending deliveries of one endpoint due by `now`, in (nextAttemptAt, id)
   * order, starting after `after` when given (keyset paging, so a caller
   * that already holds the first ones does not read them again).
   */
  due(endpointId: string, now: number, limit: number, after?: DueCursor): Promise<DeliveryRecord[]>;
  /**
   * For an endpoint with `ordering: "channel"`: each channel's first pending
   * delivery (lowest seq), when it is due by `now`, in (nextAttemptAt, id)
   * order. A later delivery of a channel is never returned while an earlier
   * one of the same endpoint is pending, due or not: that is what holds the
   * channel back until its head succeeds or fails for good.
   */
  dueChannelHeads(endpointId: string, now: number, limit: number): Promise<DeliveryRecord[]>;
  /**
   * The earliest `nextAttemptAt` among an endpoint's pending deliveries; with
   * `channelHeads`, among each channel's first pending delivery only (what
   * `dueChannelHeads` can return next).
   */
  nextDue(endpointId: string, channelHeads?: boolean): Promise<number | undefined>;
  recordAttempt(outcome: AttemptOutcome): Promise<void>;
  getDelivery(id: string): Promise<DeliveryRecord | undefined>;
  /** Newest first, each with `payload` empty: a page lists up to 1000, and the payloads are events (read one with getDelivery). */
  listDeliveries(endpointId: string, status: DeliveryStatus | undefined, limit: number): Promise<DeliveryRecord[]>;
  listAttempts(deliveryId: string): Promise<AttemptRecord[]>;
  /** Re-enqueues one failed delivery for a single attempt now. */
  retry(id: string, now: number): Promise<boolean>;
  /**
   * Re-enqueues an endpoint's failed deliveries created in [since, until], of the channels `wanted` says yes to
   * (each channel asked once); resolves with how many.
   */
  recover(endpointId: string, since: number, until: number, now: number, wanted: (channel: string) => boolean): Promise<number>;
  /** How many deliveries are pending and failed (dead letters), over every endpoint; for metrics. */
  statusCounts?(): Promise<{ pending: number; failed: number }>;
}

/** Small server-wide values: the admin key hash, the generated token secret. */
export interface SettingsStore {
  get(name: string): Promise<string | undefined>;
  /** Sets the value only if none is set yet; resolves with the value that is now stored. */
  setIfAbsent(name: string, value: string): Promise<string>;
  /** Sets the value, replacing any (used by `herald admin-key reset`). */
  set(name: string, value: string): Promise<void>;
}

/** One Herald process as it last reported itself; see `ClusterStore.heartbeat`. */
export interface NodeRecord {
  id: string;
  /** Milliseconds since the epoch. */
  startedAt: number;
  /** The last heartbeat, ms since the epoch. */
  lastSeen: number;
  /** Open connections by transport (`ws`, `sse`, `long_poll`). */
  connections: Record<string, number>;
  version: string;
  /**
   * The node's own link to the bus at its last heartbeat. While a live node's is `down` it cannot announce what it
   * appends, so the other nodes poll the log for their listeners (see `Bus.observePeers`).
   */
  bus: 'up' | 'down';
  /**
   * Where the node's admin key comes from: `store` (the stored hash, which `herald admin-key reset` replaces) or
   * `config` (HERALD_ADMIN_KEY or `adminKey`, which a reset cannot take away: the reset warns of such nodes).
   */
  adminKey: 'store' | 'config';
}

/**
 * What several nodes sharing one store need to coordinate: leases, so that
 * a piece of work (an endpoint's deliveries, the dispatcher, the trimmer)
 * has one owner at a time and passes to another node when its owner stops
 * renewing; and heartbeats, so operators can see the live nodes. On SQLite
 * there is one node, and every lease is simply its own.
 */
export interface ClusterStore {
  /**
   * Takes the lease `name` for `holder` until `now + ttlMs`, or renews it
   * when `holder` already has it. True when `holder` holds it afterwards;
   * false while another holder's lease has not expired. Atomic across nodes.
   */
  acquireLease(name: string, holder: string, ttlMs: number, now: number): Promise<boolean>;
  /** Gives the lease up at once (a clean shutdown), if `holder` has it. */
  releaseLease(name: string, holder: string): Promise<void>;
  /** Lease names with the given prefix and their holders, expired or not. */
  leases(prefix: string): Promise<Array<{ name: string; holder: string; expiresAt: number }>>;
  /** Inserts or replaces the node's record. */
  heartbeat(node: NodeRecord): Promise<void>;
  /** Nodes whose last heartbeat is at or after `since`. */
  nodes(since: number): Promise<NodeRecord[]>;
  /** Forgets a node (clean shutdown). */
  removeNode(id: string): Promise<void>;
}

/** A schema upgrade the opening of a store ran: `from` 0 is a new store. */
export interface SchemaUpgrade {
  from: number;
  to: number;
}

export interface Storage {
  /** Set when this open upgraded the schema, so the server can say so: it may have rewritten big tables. */
  upgraded?: SchemaUpgrade | undefined;
  events: EventStore;
  keys: KeyStore;
  sources: SourceStore;
  deliveries: DeliveryStore;
  settings: SettingsStore;
  cluster: ClusterStore;
  close(): Promise<void>;
}

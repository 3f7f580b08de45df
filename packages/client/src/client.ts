import { isValidChannel, type DirectMessage, type EphemeralMessage, type ErrorBody, type GapInfo, type HeraldEvent, type ServerOp } from '@herald/protocol';
import { backoffDelay, monotonicNow, secondsToExpiry } from './backoff.js';
import { callSafely, Emitter } from './emitter.js';
import { pollTransport } from './transports/poll.js';
import { sseTransport } from './transports/sse.js';
import type { Transport, TransportContext, TransportEnd, TransportFactory, TransportName } from './transports/types.js';
import { websocketTransport } from './transports/websocket.js';
import { PresenceSet, type PresenceOptions } from './presence.js';
import { watchOnline } from './online.js';

export type ConnectionState = 'connecting' | 'connected' | 'disconnected';

export interface StateDetail {
  transport?: TransportName;
  /** Why the connection ended, for `disconnected`. */
  reason?: string;
}

const presenceUnavailable = (transport: string) => new HeraldClientError('unavailable', `Presence needs the WebSocket transport; connected over ${transport}.`);

/** Default `heartbeatTimeoutMs`. */
const DEFAULT_HEARTBEAT_TIMEOUT_MS = 35_000;

export interface HeraldOptions {
  /** The server, e.g. `https://herald.example.com`. */
  url: string;
  /** A fixed credential: a subscriber token or an API key. */
  token?: string;
  /** Called for a fresh credential before connecting, when the last one expired or was refused. */
  getToken?: () => string | Promise<string>;
  /** The order to try transports in; the client moves on when one cannot work. */
  transports?: TransportName[];
  /**
   * Failed connection attempts, without ever connecting, before the next transport is tried. Only attempts
   * made while the server answers HTTP count: while it is down, no other transport would do better.
   */
  fallbackAfter?: number;
  /**
   * After a fallback, how long before the better transport is tried again: at the next reconnect, or in
   * the background while connected (switching over once it works). Doubles, up to 16 times, while it keeps failing.
   */
  upgradeAfterMs?: number;
  /** Reconnect delays: full jitter between 0 and min(maxMs, baseMs·2^attempt). */
  backoff?: { baseMs?: number; maxMs?: number };
  /** Connected this long, the backoff starts over. */
  stableAfterMs?: number;
  /** No sign of life for this long and the connection counts as dead; also how long `getToken` may take. */
  heartbeatTimeoutMs?: number;
  /**
   * A WebSocket class. By default the global one; in Node without it (before 22), the `ws` package when it
   * can be imported; with neither, the client goes straight to the next transport.
   */
  WebSocket?: typeof WebSocket;
  fetch?: typeof fetch;
}

export interface SubscribeOptions {
  /** Start after this seq; by default only events published from now on. */
  after?: number;
  /** History after the position was trimmed away; the app should resync. */
  onGap?: (gap: GapInfo) => void;
  /** The epoch `after` belongs to (from `Subscription.epoch`): a different one on the server means the history was lost. */
  epoch?: string;
  /** The channel's history was lost (a new epoch): the app should resync. Events of the new history follow. */
  onEpoch?: (change: EpochChange) => void;
  /** The server refused this channel (for example, the token does not cover it). */
  onError?: (error: HeraldClientError) => void;
  /** Ephemeral publishes on the channel (WebSocket and SSE): no seq, never replayed. */
  onEphemeral?: (message: EphemeralMessage) => void;
}

/** What an ephemeral publish resolves to: nothing was logged, so there is no seq or id. */
export interface EphemeralPublished {
  channel: string;
  ephemeral: true;
}

export interface Subscription {
  readonly channel: string;
  /** The seq of the last event delivered. */
  readonly position: number | undefined;
  /** The channel's epoch, once known: keep it with `position` to resume later. */
  readonly epoch: string | undefined;
  unsubscribe(): void;
}

/** A channel's epoch changed: its history was lost (e.g. the server's data was wiped), and seqs start over. */
export interface EpochChange {
  channel: string;
  /** The epoch the client knew. */
  previous: string;
  current: string;
  /** The position in the old history; the client now reads the new history from its start. */
  position: number | undefined;
}

export class HeraldClientError extends Error {
  override name = 'HeraldClientError';
  constructor(
    readonly code: string,
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

/** A name the server takes, checked before anything is sent: `..` would not even reach it (see CHANNEL_PATTERN). */
function assertChannelName(channel: string): void {
  if (!isValidChannel(channel)) throw new HeraldClientError('invalid_channel', `Invalid channel name ${JSON.stringify(channel)}.`);
}

/**
 * JSON.stringify writes Infinity and NaN as null: refused before sending, as the server refuses 1e400, not sent as null.
 * Found by JSON.stringify itself (a replacer), which throws on data that refers to itself, as sending it would.
 */
function assertFiniteNumbers(input: { data: unknown; meta?: unknown }): void {
  JSON.stringify([input.data, input.meta], (_key, value: unknown) => {
    if (typeof value === 'number' && !Number.isFinite(value)) {
      throw new HeraldClientError('bad_request', 'Event data and meta hold a number JSON cannot carry (Infinity, NaN, or beyond ±1.8e308): it would be sent as null. Send it as a string.');
    }
    return value;
  });
}

interface Sub {
  channel: string;
  onEvent: (event: HeraldEvent) => void;
  options: SubscribeOptions;
  /**
   * The seq of the last event this subscription was given (or the `after` it started from). The channel's own
   * position is where its stream reads from: the earliest any of its subscriptions needs. When a later subscription
   * asks for history the others already had, the stream goes back for it and each of them skips what it had.
   */
  position: number | undefined;
}

const TRANSPORTS: Record<TransportName, TransportFactory> = { websocket: websocketTransport, sse: sseTransport, poll: pollTransport };

type ClientEvents = {
  state: [ConnectionState, StateDetail];
  gap: [GapInfo];
  epoch: [EpochChange];
  error: [HeraldClientError];
  /** An ephemeral publish on any subscribed channel. */
  ephemeral: [EphemeralMessage];
  /** A direct message to this connection, on any channel. */
  message: [DirectMessage];
};

/**
 * A Herald connection. Every transport resumes each channel from the last
 * seq delivered, and events at or before that seq are dropped, so the app
 * sees each event exactly once, in order, across reconnects and transport
 * switches.
 */
export class Herald extends Emitter<ClientEvents> {
  state: ConnectionState = 'disconnected';
  private readonly positions = new Map<string, number | undefined>();
  private readonly epochs = new Map<string, string>();
  private readonly subs = new Map<string, Set<Sub>>();
  /**
   * The channels the current connection was refused, with what it said: a later subscription to one, which sends the
   * server nothing (the channel is already asked for), is told so itself. Forgotten when the channel is answered, left,
   * or asked for on a new connection.
   */
  private readonly refusals = new Map<string, HeraldClientError>();
  /** Presence sets joined, and the `presence` each channel's subscribe carries. */
  private readonly presences = new Map<string, PresenceSet>();
  private readonly presenceWish = new Map<string, { info?: unknown }>();
  private readonly order: TransportName[];
  private transportIndex = 0;
  private failuresHere = 0;
  /**
   * The last failure found the server not answering at all, or the server said it was going away: the next failure
   * may be the restart's race (refused by a server still shutting down, or one not yet listening).
   */
  private serverSeenDown = false;
  /** While a better transport is tried after a fallback: the index to return to if it fails. */
  private trialFrom: number | undefined;
  /** After a fallback: when to try the better transport again, and the wait after that. */
  private upgradeAt = 0;
  private upgradeDelay: number;
  private upgradeTimer: ReturnType<typeof setTimeout> | undefined;
  private upgradeProbe: Transport | undefined;
  private upgradeProbeTimer: ReturnType<typeof setTimeout> | undefined;
  /** The WebSocket class: undefined until looked for, null when there is none. */
  private webSocketImpl: typeof WebSocket | null | undefined;
  private attempt = 0;
  private transport: Transport | undefined;
  private opened = false;
  private token: string | undefined;
  private tokenRefused = false;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  /** What `reconnectTimer` will do when it fires; the browser's `online` event does it at once (see reconnectNow). */
  private pendingReconnect: (() => void) | undefined;
  /** Stops listening for the browser's `online` event: listened to from the first connect() until close(). */
  private unwatchOnline: (() => void) | undefined;
  /** A connect() is between its start and the transport it makes (see connect). */
  private connecting = false;
  private stableTimer: ReturnType<typeof setTimeout> | undefined;
  /** Ends the wait for `getToken` of the connection attempt in progress (see tokenWithin). */
  private cancelTokenWait: (() => void) | undefined;
  /** Ends the request of a health check in progress (see serverAnswers). */
  private cancelHealthCheck: (() => void) | undefined;
  private closed = false;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly options: HeraldOptions) {
    super();
    for (const name of options.transports ?? []) {
      if (!Object.hasOwn(TRANSPORTS, name)) {
        // A plain JS caller's typo ('ws') would otherwise surface later as "TRANSPORTS[name] is not a function".
        throw new HeraldClientError('bad_request', `Unknown transport ${JSON.stringify(name)}: use ${Object.keys(TRANSPORTS).map((n) => `'${n}'`).join(', ')}.`);
      }
    }
    this.order = options.transports?.length ? options.transports : ['websocket', 'sse', 'poll'];
    this.token = options.token;
    this.fetchImpl = options.fetch ?? ((...args) => fetch(...args));
    this.upgradeDelay = this.upgradeBase;
  }

  private get upgradeBase(): number {
    return this.options.upgradeAfterMs ?? 60_000;
  }

  get url(): string {
    return this.options.url.replace(/\/+$/, '');
  }

  /** The transport in use, or about to be tried. */
  get transportName(): TransportName {
    return this.order[this.transportIndex]!;
  }

  subscribe(channel: string, options: SubscribeOptions | ((event: HeraldEvent) => void), onEvent?: (event: HeraldEvent) => void): Subscription {
    assertChannelName(channel);
    const opts = typeof options === 'function' ? {} : options;
    const handler = typeof options === 'function' ? options : onEvent;
    if (!handler) throw new TypeError('subscribe needs an event handler');
    let set = this.subs.get(channel);
    const current = this.positions.get(channel);
    // Without `after`, a channel already read starts this subscription at the furthest any of its subscriptions has
    // got (its stream may be reading older events again for one of them, see rewind), not in its history.
    const sub: Sub = { channel, onEvent: handler, options: opts, position: opts.after ?? (set ? this.furthest(set, current) : undefined) };
    if (!set) {
      set = new Set([sub]);
      this.subs.set(channel, set);
      this.positions.set(channel, opts.after);
      if (opts.epoch !== undefined) this.epochs.set(channel, opts.epoch);
      this.channelsChanged();
    } else {
      set.add(sub);
      const refusal = this.refusals.get(channel);
      if (opts.after !== undefined && (current === undefined || opts.after < current)) this.rewind(channel, opts.after, current);
      // Asked for again by a rewind, which the server answers; else told the refusal now, as the first ones were.
      else if (refusal) {
        const subs = set;
        queueMicrotask(() => {
          if (subs.has(sub)) callSafely(sub.options.onError, refusal);
        });
      }
    }
    const { positions, epochs } = this;
    return {
      channel,
      get position() {
        return sub.position ?? positions.get(channel);
      },
      get epoch() {
        return epochs.get(channel);
      },
      unsubscribe: () => this.unsubscribe(sub),
    };
  }

  private furthest(subs: ReadonlySet<Sub>, current: number | undefined): number | undefined {
    let furthest = current;
    for (const other of subs) if (other.position !== undefined && (furthest === undefined || other.position > furthest)) furthest = other.position;
    return furthest;
  }

  /**
   * Reads the channel again from `after`, for a subscription that asks for history its channel's stream has passed.
   * The subscriptions already there keep their places: one that had no position yet had everything up to where the
   * stream was, and skips that when it comes again.
   */
  private rewind(channel: string, after: number, current: number | undefined): void {
    for (const other of this.subs.get(channel) ?? []) other.position ??= current;
    this.positions.set(channel, after);
    if (this.transport?.resubscribe) this.transport.resubscribe(channel);
    else this.channelsChanged();
  }

  private unsubscribe(sub: Sub): void {
    const set = this.subs.get(sub.channel);
    if (!set?.delete(sub) || set.size > 0) return;
    this.subs.delete(sub.channel);
    this.refusals.delete(sub.channel);
    this.positions.delete(sub.channel);
    this.epochs.delete(sub.channel);
    this.channelsChanged();
  }

  private channelsChanged(): void {
    if (this.closed) return;
    if (this.positions.size === 0) {
      this.stopTransport('no subscriptions');
      return;
    }
    if (this.transport) this.transport.channelsChanged();
    else if (!this.reconnectTimer) void this.connect();
  }

  /**
   * Publishes over HTTP; resolves once the event is durable. With `{ephemeral: true}` nothing is logged: the
   * channel's current subscribers get it once (over the WebSocket when connected on one, else over HTTP).
   */
  publish(channel: string, input: { type?: string; data: unknown; meta?: Record<string, unknown>; id?: string }): Promise<{ id: string; seq: number; channel: string }>;
  publish(channel: string, input: { type?: string; data: unknown }, options: { ephemeral: true }): Promise<EphemeralPublished>;
  async publish(
    channel: string,
    input: { type?: string; data: unknown; meta?: Record<string, unknown>; id?: string },
    options?: { ephemeral?: boolean },
  ): Promise<{ id: string; seq: number; channel: string } | EphemeralPublished> {
    assertChannelName(channel);
    assertFiniteNumbers(input);
    if (options?.ephemeral) {
      if (this.transport?.request && this.opened) {
        await this.request({ op: 'publish', channel, data: input.data, ...(input.type ? { type: input.type } : {}), ephemeral: true });
      } else {
        await this.post(channel, { ...input, ephemeral: true });
      }
      return { channel, ephemeral: true };
    }
    const event = (await this.post(channel, input)) as HeraldEvent;
    return { id: event.id, seq: event.seq, channel: event.channel };
  }

  private async post(channel: string, input: object): Promise<unknown> {
    const token = await this.currentToken();
    // A server that takes the connection and never answers (stopped, or behind a proxy that holds it) must not hold
    // the publish for good: past the heartbeat timeout it is `unavailable`, as one that cannot be reached.
    const deadlineMs = this.options.heartbeatTimeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS;
    const signal = AbortSignal.timeout(deadlineMs);
    const unavailable = (why: string) => new HeraldClientError('unavailable', `Could not publish to ${channel}: ${signal.aborted ? `no answer within ${deadlineMs} ms` : why}`);
    let res: Response;
    try {
      res = await this.fetchImpl(`${this.url}/v1/channels/${encodeURIComponent(channel)}/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify(input),
        signal,
      });
    } catch (error) {
      // A HeraldClientError like every other failure (fetch's own is a bare TypeError, "fetch failed"): the server
      // could not be reached, or the connection broke before its answer, so the event may or may not be stored.
      throw unavailable((error as Error).message);
    }
    // A proxy's answer for a server that is down (a 502 page) is no JSON: its status must still reach the app, not a
    // SyntaxError without one.
    const body = (await res.json().catch(() => undefined)) as unknown;
    if (body === undefined && signal.aborted) throw unavailable('');
    if (!res.ok || body === undefined) {
      const error = (body as ErrorBody | undefined)?.error;
      if (res.status === 401) this.tokenRefused = true;
      throw new HeraldClientError(error?.code ?? 'http_error', error?.message ?? `HTTP ${res.status}`, res.status);
    }
    return body;
  }

  /**
   * Joins the channel's presence set (it must match the server's `channels.presence`), subscribing to the
   * channel if it was not. Needs the WebSocket transport.
   */
  presence(channel: string, options: PresenceOptions = {}): PresenceSet {
    if (this.presences.has(channel)) throw new HeraldClientError('bad_request', `Already in the presence set of ${channel}: leave() it first.`);
    const subscribed = this.subs.has(channel);
    this.presenceWish.set(channel, options.info === undefined ? {} : { info: options.info });
    const set = new PresenceSet(channel, options, (left) => {
      if (this.presences.get(channel) !== left) return;
      this.presences.delete(channel);
      this.presenceWish.delete(channel);
      sub.unsubscribe();
      // Still subscribed for its events: subscribe again without presence, which leaves the set.
      this.transport?.resubscribe?.(channel);
    });
    this.presences.set(channel, set);
    const sub = this.subscribe(channel, { onError: (error) => set.fail(error) }, () => {});
    if (subscribed) this.transport?.resubscribe?.(channel);
    const over = this.transport?.name;
    if (this.opened && over !== undefined && over !== 'websocket') {
      // Already connected over another transport, whose open (which fails the sets) has passed: fail it now, once the
      // caller has had the set back to listen on; else the set waited, silent, for a WebSocket that might never come.
      queueMicrotask(() => this.presences.get(channel) === set && set.fail(presenceUnavailable(over)));
    }
    return set;
  }

  /** A direct message to `to` (a member's `client` id) of the channel's presence set; resolves once the server took it. */
  async send(channel: string, to: string, data: unknown): Promise<void> {
    await this.request({ op: 'send', channel, to, data });
  }

  /** One op over the connected WebSocket; its `error` answer becomes a HeraldClientError. */
  private async request(op: Parameters<NonNullable<Transport['request']>>[0]): Promise<void> {
    const transport = this.transport;
    if (!transport?.request || !this.opened) throw new HeraldClientError('unavailable', 'Not connected over a WebSocket: direct messages need one.');
    let answer: ServerOp;
    try {
      answer = await transport.request(op);
    } catch (error) {
      throw new HeraldClientError('unavailable', (error as Error).message);
    }
    if (answer.op === 'error') throw new HeraldClientError(answer.code, answer.message);
  }

  close(): void {
    this.closed = true;
    this.cancelTokenWait?.();
    this.cancelHealthCheck?.();
    clearTimeout(this.reconnectTimer);
    this.pendingReconnect = undefined;
    // Removed here, or every client a page made and closed would keep a listener, and itself, alive for good.
    this.unwatchOnline?.();
    this.unwatchOnline = undefined;
    this.stopUpgrade();
    this.stopTransport('closed');
  }

  private stopTransport(reason: string): void {
    clearTimeout(this.stableTimer);
    this.stopUpgrade();
    const t = this.transport;
    this.transport = undefined;
    t?.close();
    // With the transport, as every other state says: close() while connected, 'no subscriptions', 'moving to …'.
    if (this.state !== 'disconnected') this.setState('disconnected', { transport: t?.name ?? this.transportName, reason });
  }

  private setState(state: ConnectionState, detail: StateDetail): void {
    this.state = state;
    this.emit('state', state, detail);
  }

  /**
   * The credential, or a failure once `ms` pass: a `getToken` that never settles (a fetch with no timeout) would
   * otherwise hold the one connection attempt (see connect) for good.
   */
  private async tokenWithin(ms: number): Promise<string | undefined> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no token within ${ms} ms`)), ms);
      // close() ends the wait too: its timer would otherwise keep a Node process alive for up to `ms` after close().
      this.cancelTokenWait = () => reject(new Error('closed'));
    });
    try {
      return await Promise.race([this.currentToken(), late]);
    } finally {
      clearTimeout(timer);
      this.cancelTokenWait = undefined;
    }
  }

  private async currentToken(): Promise<string | undefined> {
    const getToken = this.options.getToken;
    if (!getToken) return this.token;
    const left = this.token === undefined ? undefined : secondsToExpiry(this.token);
    if (this.token === undefined || this.tokenRefused || (left !== undefined && left < 30)) {
      const token: unknown = await getToken();
      // Anything but a non-empty string (null, an object, a Response) is a failed call, and is not kept: kept, it
      // would be sent (and refused) on every attempt, and secondsToExpiry would throw on it before getToken was
      // ever asked again, so the client retried forever without a new token.
      if (typeof token !== 'string' || token === '') throw new HeraldClientError('bad_token', `getToken returned ${token === '' ? 'an empty string' : typeof token}, not a token.`);
      this.token = token;
      this.tokenRefused = false;
    }
    return this.token;
  }

  /** Whether a transport can run here at all: WebSocket needs a WebSocket class. */
  private usable(index: number): boolean {
    return this.order[index] !== 'websocket' || !!this.webSocketImpl;
  }

  /** The first usable transport after `index`, if any. */
  private nextUsable(index: number): number | undefined {
    for (let i = index + 1; i < this.order.length; i++) if (this.usable(i)) return i;
    return undefined;
  }

  private get bestIndex(): number {
    return this.usable(0) ? 0 : (this.nextUsable(0) ?? 0);
  }

  /**
   * One connection attempt at a time. Subscribes made while one waits (for the WebSocket class or a token) join
   * it, since the transport reads the channels when it is made; a second attempt would call `getToken` again and
   * say 'connecting' twice.
   */
  private async connect(): Promise<void> {
    if (this.connecting) return;
    if (!this.closed) this.unwatchOnline ??= watchOnline(() => this.reconnectNow());
    this.connecting = true;
    try {
      await this.connectOnce();
    } finally {
      this.connecting = false;
    }
  }

  private async connectOnce(): Promise<void> {
    this.reconnectTimer = undefined;
    this.pendingReconnect = undefined;
    if (this.closed || this.transport || this.positions.size === 0) return;
    if (this.webSocketImpl === undefined && this.order.includes('websocket')) {
      const impl = await loadWebSocket(this.options.WebSocket);
      this.webSocketImpl ??= impl ?? null;
      if (this.closed || this.transport || this.positions.size === 0) return;
    }
    // No WebSocket class here: skip it at once rather than fail at it.
    if (!this.usable(this.transportIndex)) {
      const next = this.nextUsable(this.transportIndex);
      if (next === undefined) {
        this.emit('error', new HeraldClientError('no_transport', 'No usable transport: there is no WebSocket class here; pass one as `WebSocket`.'));
        this.close();
        return;
      }
      this.transportIndex = next;
    }
    // After a fallback, the next reconnect past the wait tries the better transport again.
    if (this.trialFrom === undefined && this.transportIndex > this.bestIndex && monotonicNow() >= this.upgradeAt) {
      this.trialFrom = this.transportIndex;
      this.transportIndex = this.bestIndex;
    }
    const name = this.transportName;
    this.setState('connecting', { transport: name });
    let token: string | undefined;
    try {
      token = await this.tokenWithin(this.options.heartbeatTimeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS);
    } catch (error) {
      if (this.closed) return;
      const reason = `getToken failed: ${(error as Error).message}`;
      // Ended like any failed attempt, so the app sees why it is not connecting (its auth backend down, say). It is
      // no failure of the transport: counted as one, a slow start of the app's backend moved a client off WebSocket.
      this.setState('disconnected', { transport: name, reason });
      return this.retry({ reason }, false);
    }
    // Unsubscribed from everything meanwhile: no transport for no channels.
    if (this.closed || this.transport || this.positions.size === 0) return;
    this.opened = false;
    const transport: Transport = TRANSPORTS[name](this.context(token), {
      open: () => {
        if (this.transport !== transport) return;
        this.opened = true;
        this.failuresHere = 0;
        if (this.trialFrom !== undefined) {
          this.trialFrom = undefined;
          this.upgradeDelay = this.upgradeBase;
        }
        this.setState('connected', { transport: name });
        if (name !== 'websocket') {
          for (const set of this.presences.values()) set.fail(presenceUnavailable(name));
        }
        clearTimeout(this.stableTimer);
        this.stableTimer = setTimeout(() => (this.attempt = 0), this.options.stableAfterMs ?? 5000);
        this.scheduleUpgrade();
      },
      event: (event) => {
        if (this.transport === transport) this.deliver(event);
      },
      gap: (gap) => {
        if (this.transport !== transport || !this.positions.has(gap.channel)) return;
        const start = gap.oldest - 1;
        // A position past everything the channel holds (history the server lost: a restored backup, a power loss
        // under synchronous "normal"): the server reads from its oldest event, and the client moves back with it.
        // Kept where it was, every event up to the old position (new ones under reused seqs) was dropped as
        // delivered, and a long poll asked again from there at once, forever.
        const lost = gap.after > start;
        this.positions.set(gap.channel, lost ? start : Math.max(this.positions.get(gap.channel) ?? 0, start));
        for (const sub of [...(this.subs.get(gap.channel) ?? [])]) {
          // Told only where it lost events: one further on (see rewind) had them before they were trimmed.
          if (!lost && sub.position !== undefined && sub.position >= start) continue;
          sub.position = start;
          callSafely(sub.options.onGap, gap);
        }
        this.emit('gap', gap);
      },
      epoch: (channel, epoch) => {
        if (this.transport !== transport || !this.positions.has(channel)) return false;
        const previous = this.epochs.get(channel);
        this.epochs.set(channel, epoch);
        if (previous === undefined || previous === epoch) return false;
        // The old seqs mean nothing in the new history: read it from its start.
        const position = this.positions.get(channel);
        if (position !== undefined) this.positions.set(channel, 0);
        // Every subscription reads the new history from its start too: its old place in the old history means nothing.
        for (const sub of this.subs.get(channel) ?? []) if (sub.position !== undefined) sub.position = 0;
        const change: EpochChange = { channel, previous, current: epoch, position };
        for (const sub of this.subs.get(channel) ?? []) callSafely(sub.options.onEpoch, change);
        this.emit('epoch', change);
        return position !== undefined;
      },
      live: (channel, head) => {
        if (this.transport !== transport || !this.positions.has(channel)) return;
        this.refusals.delete(channel);
        if (this.positions.get(channel) === undefined) this.positions.set(channel, head);
        // A subscription without `after` starts at the head, even when another one's `after` has the stream read
        // older events first.
        for (const sub of this.subs.get(channel) ?? []) sub.position ??= head;
      },
      refused: (channel, code, message) => {
        const error = new HeraldClientError(code, message);
        if (this.transport === transport && this.subs.has(channel)) this.refusals.set(channel, error);
        for (const sub of this.subs.get(channel) ?? []) callSafely(sub.options.onError, error);
        this.emit('error', error);
      },
      presence: (channel, client, members) => {
        if (this.transport === transport) this.presences.get(channel)?.reset(client, members);
      },
      presenceChange: (channel, action, member) => {
        if (this.transport === transport) this.presences.get(channel)?.change(action, member);
      },
      ephemeral: (message) => {
        if (this.transport !== transport || !this.positions.has(message.channel)) return;
        for (const sub of this.subs.get(message.channel) ?? []) callSafely(sub.options.onEphemeral, message);
        this.emit('ephemeral', message);
      },
      message: (message) => {
        if (this.transport !== transport) return;
        this.presences.get(message.channel)?.deliver(message);
        this.emit('message', message);
      },
      end: (end) => {
        if (this.transport !== transport) return;
        this.transport = undefined;
        clearTimeout(this.stableTimer);
        this.stopUpgrade();
        this.setState('disconnected', { transport: name, reason: end.reason });
        this.retry(end);
      },
    });
    this.transport = transport;
    this.refusals.clear();
    transport.start();
  }

  private context(token: string | undefined): TransportContext {
    return {
      url: this.url,
      token,
      positions: this.positions,
      presence: this.presenceWish,
      heartbeatTimeoutMs: this.options.heartbeatTimeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS,
      fetch: this.fetchImpl,
      WebSocket: this.webSocketImpl ?? undefined,
    };
  }

  /** Exactly once, in order: anything at or before the channel's position was already delivered. */
  private deliver(event: HeraldEvent): void {
    if (!this.positions.has(event.channel)) return;
    const position = this.positions.get(event.channel);
    if (position !== undefined && event.seq <= position) return;
    this.positions.set(event.channel, event.seq);
    // As a DOM event's listeners: those the channel had when the event came, less any unsubscribed by a handler before
    // its turn. A live Set would also hand this event to a subscription a handler adds, and one added with an earlier
    // `after` (moving back, say) would then skip the history read again for it, and get this event before it.
    const set = this.subs.get(event.channel);
    for (const sub of [...(set ?? [])]) {
      if (!set!.has(sub)) continue;
      // Read again for a subscription that asked for older history (see rewind): this one had it already.
      if (sub.position !== undefined && event.seq <= sub.position) continue;
      sub.position = event.seq;
      // As a DOM event listener's: the others still get the event, and the error is still reported (uncaught, in
      // its own task), not thrown into the transport's frame handling.
      callSafely(sub.onEvent, event);
    }
  }

  /** `transportFailed`: false when the attempt failed before any transport was tried (getToken), so it counts towards no fallback. */
  private retry(end: TransportEnd, transportFailed = true): void {
    if (this.closed) return;
    let decided: Promise<void> | undefined;
    if (end.goingAway) this.serverSeenDown = true;
    // Said each time, as the retries go on (backing off): a change of channels, or of the server's limits, may end it.
    if (end.refused) this.emit('error', new HeraldClientError(end.refused.code, end.refused.message, end.refused.status));
    if (end.auth) {
      if (!this.options.getToken) {
        this.emit('error', new HeraldClientError('unauthorized', `The credential was refused: ${end.reason}`));
        this.close();
        return;
      }
      this.tokenRefused = true;
    } else if (!this.opened && transportFailed) {
      decided = this.afterFailure();
    }
    const delay = backoffDelay(this.attempt++, this.options.backoff?.baseMs ?? 500, this.options.backoff?.maxMs ?? 20_000);
    const reconnect = () => {
      this.pendingReconnect = undefined;
      if (!decided) return void this.connect();
      void decided.then(() => {
        if (this.reconnectTimer === timer) void this.connect();
      });
    };
    const timer = setTimeout(reconnect, delay);
    this.reconnectTimer = timer;
    this.pendingReconnect = reconnect;
  }

  /**
   * The browser is back online (a laptop woken, a tunnel left): a client waiting out its backoff, which may have
   * grown to `backoff.maxMs` while the network was gone, reconnects now, its backoff started over. Through the
   * timer's own path, so an attempt still waits for the health check deciding a fallback (see afterFailure). A client
   * connected or connecting is left alone; so is every client on `offline`, which browsers also say on a network
   * change that breaks nothing: a connection that did break is found by its transport or the watchdog.
   */
  private reconnectNow(): void {
    const reconnect = this.pendingReconnect;
    if (!reconnect || this.closed) return;
    clearTimeout(this.reconnectTimer);
    this.attempt = 0;
    reconnect();
  }

  /** A transport failed without connecting: go back from a failed upgrade, or fall back when this transport cannot work. */
  private async afterFailure(): Promise<void> {
    if (this.trialFrom !== undefined) {
      this.transportIndex = this.trialFrom;
      this.trialFrom = undefined;
      this.postponeUpgrade();
      return;
    }
    const next = this.nextUsable(this.transportIndex);
    if (next === undefined) return;
    // While the server is down (a restart, an outage), every transport fails alike: stay with the best one.
    if (!(await this.serverAnswers())) {
      this.serverSeenDown = true;
      return;
    }
    // The first failure after the server was seen down may be the restart itself (the attempt was refused just
    // before the server listened, the check just after): try the same transport again before counting it.
    if (this.serverSeenDown) {
      this.serverSeenDown = false;
      return;
    }
    this.failuresHere += 1;
    if (this.failuresHere < (this.options.fallbackAfter ?? 2)) return;
    this.transportIndex = next;
    this.failuresHere = 0;
    this.upgradeDelay = this.upgradeBase;
    this.upgradeAt = monotonicNow() + this.upgradeDelay;
  }

  /**
   * Whether the server answers plain HTTP: any answer says it is up, but a 502, 503 or 504, which is what a proxy
   * answers for a server behind it that is down (and Herald itself while it shuts down). Asked with CORS, so that a
   * page on another origin can read the status; where that fails (a network error, or an answer without CORS
   * headers, such as a proxy's own page, which a browser does not tell apart), asked again without, when any answer
   * at all counts, as a page cannot read its status.
   */
  private async serverAnswers(): Promise<boolean> {
    const ask = async (mode: RequestMode) => {
      // close() ends the check too: asked of a server that does not answer (a black hole), its two requests would
      // otherwise keep a Node process alive for up to 10 s after close().
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), 5000);
      this.cancelHealthCheck = () => controller.abort();
      try {
        const res = await this.fetchImpl(`${this.url}/healthz`, { mode, cache: 'no-store', signal: controller.signal });
        void res.body?.cancel().catch(() => {});
        return res.type === 'opaque' || ![502, 503, 504].includes(res.status);
      } finally {
        clearTimeout(timer);
        this.cancelHealthCheck = undefined;
      }
    };
    try {
      return await ask('cors');
    } catch {
      if (this.closed) return false;
      return ask('no-cors').catch(() => false);
    }
  }

  private postponeUpgrade(): void {
    this.upgradeDelay = Math.min(this.upgradeDelay * 2, this.upgradeBase * 16);
    this.upgradeAt = monotonicNow() + this.upgradeDelay;
  }

  private stopUpgrade(): void {
    clearTimeout(this.upgradeTimer);
    this.upgradeTimer = undefined;
    clearTimeout(this.upgradeProbeTimer);
    this.upgradeProbe?.close();
    this.upgradeProbe = undefined;
  }

  /**
   * Connected on a fallback transport: once the wait is over, try the better one in the background, and
   * switch to it only if it connects, so the app keeps its events flowing meanwhile.
   */
  private scheduleUpgrade(): void {
    this.stopUpgrade();
    if (!this.transport || this.transportIndex <= this.bestIndex) return;
    this.upgradeTimer = setTimeout(() => this.probeUpgrade(), Math.max(0, this.upgradeAt - monotonicNow()));
  }

  /**
   * Probes `to` (the best transport), then, while each fails, the next better than the one in use: on long polling
   * with WebSocket still refused, SSE is tried too, and taken once it works.
   */
  private probeUpgrade(to = this.bestIndex): void {
    this.upgradeTimer = undefined;
    const from = this.transportIndex;
    if (this.closed || !this.transport || from <= to) return;
    const ctx = { ...this.context(this.token), positions: new Map(this.positions) };
    let settled = false;
    const done = (works: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(this.upgradeProbeTimer);
      probe.close();
      if (this.upgradeProbe !== probe) return;
      this.upgradeProbe = undefined;
      if (!works || this.closed || !this.transport || this.transportIndex !== from) {
        const next = this.nextUsable(to);
        if (!works && next !== undefined && next < from && !this.closed && this.transport && this.transportIndex === from) return this.probeUpgrade(next);
        this.postponeUpgrade();
        this.scheduleUpgrade();
        return;
      }
      this.stopTransport(`moving to ${this.order[to]}`);
      this.trialFrom = from;
      this.transportIndex = to;
      clearTimeout(this.reconnectTimer);
      void this.connect();
    };
    const ignore = () => {};
    const probe = TRANSPORTS[this.order[to]!](ctx, {
      open: () => done(true),
      end: () => done(false),
      event: ignore,
      gap: ignore,
      epoch: () => false,
      live: ignore,
      refused: ignore,
      presence: ignore,
      presenceChange: ignore,
      ephemeral: ignore,
      message: ignore,
    });
    // A WebSocket that neither opens nor fails (a black hole) counts as failed after the heartbeat timeout.
    this.upgradeProbeTimer = setTimeout(() => done(false), ctx.heartbeatTimeoutMs);
    this.upgradeProbe = probe;
    probe.start();
  }
}

/**
 * The WebSocket class: the one given, else the global one, else, in Node only, the `ws` package if it can be
 * imported. The import is dynamic and its name is not a literal, so a browser bundle does not pull `ws` in.
 */
async function loadWebSocket(given: typeof WebSocket | undefined): Promise<typeof WebSocket | undefined> {
  if (given) return given;
  const global = (globalThis as { WebSocket?: typeof WebSocket }).WebSocket;
  if (global) return global;
  const node = (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node;
  if (!node) return undefined;
  const name = 'ws';
  try {
    const mod = (await import(/* webpackIgnore: true */ /* @vite-ignore */ name)) as { WebSocket?: unknown; default?: unknown };
    const impl = mod.WebSocket ?? mod.default;
    return typeof impl === 'function' ? (impl as typeof WebSocket) : undefined;
  } catch {
    return undefined;
  }
}

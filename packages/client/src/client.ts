import { isValidChannel, type ErrorBody, type GapInfo, type HeraldEvent } from '@herald/protocol';
import { backoffDelay, secondsToExpiry } from './backoff.js';
import { Emitter } from './emitter.js';
import { pollTransport } from './transports/poll.js';
import { sseTransport } from './transports/sse.js';
import type { Transport, TransportContext, TransportEnd, TransportFactory, TransportName } from './transports/types.js';
import { websocketTransport } from './transports/websocket.js';

export type ConnectionState = 'connecting' | 'connected' | 'disconnected';

export interface StateDetail {
  transport?: TransportName;
  /** Why the connection ended, for `disconnected`. */
  reason?: string;
}

export interface HeraldOptions {
  /** The server, e.g. `https://herald.example.com`. */
  url: string;
  /** A fixed credential: a subscriber token or an API key. */
  token?: string;
  /** Called for a fresh credential before connecting, when the last one expired or was refused. */
  getToken?: () => string | Promise<string>;
  /** The order to try transports in; the client moves on when one cannot connect. */
  transports?: TransportName[];
  /** Failed connection attempts, without ever connecting, before the next transport is tried. */
  fallbackAfter?: number;
  /** Reconnect delays: full jitter between 0 and min(maxMs, baseMs·2^attempt). */
  backoff?: { baseMs?: number; maxMs?: number };
  /** Connected this long, the backoff starts over. */
  stableAfterMs?: number;
  /** No sign of life for this long and the connection counts as dead. */
  heartbeatTimeoutMs?: number;
  /** For Node before 22, or tests: a WebSocket class (e.g. from `ws`). */
  WebSocket?: typeof WebSocket;
  fetch?: typeof fetch;
}

export interface SubscribeOptions {
  /** Start after this seq; by default only events published from now on. */
  after?: number;
  /** History after the position was trimmed away; the app should resync. */
  onGap?: (gap: GapInfo) => void;
  /** The server refused this channel (for example, the token does not cover it). */
  onError?: (error: HeraldClientError) => void;
}

export interface Subscription {
  readonly channel: string;
  /** The seq of the last event delivered. */
  readonly position: number | undefined;
  unsubscribe(): void;
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

interface Sub {
  channel: string;
  onEvent: (event: HeraldEvent) => void;
  options: SubscribeOptions;
}

const TRANSPORTS: Record<TransportName, TransportFactory> = { websocket: websocketTransport, sse: sseTransport, poll: pollTransport };

type ClientEvents = {
  state: [ConnectionState, StateDetail];
  gap: [GapInfo];
  error: [HeraldClientError];
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
  private readonly subs = new Map<string, Set<Sub>>();
  private readonly order: TransportName[];
  private transportIndex = 0;
  private failuresHere = 0;
  private attempt = 0;
  private transport: Transport | undefined;
  private opened = false;
  private token: string | undefined;
  private tokenRefused = false;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private stableTimer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly options: HeraldOptions) {
    super();
    this.order = options.transports?.length ? options.transports : ['websocket', 'sse', 'poll'];
    this.token = options.token;
    this.fetchImpl = options.fetch ?? ((...args) => fetch(...args));
  }

  get url(): string {
    return this.options.url.replace(/\/+$/, '');
  }

  /** The transport in use, or about to be tried. */
  get transportName(): TransportName {
    return this.order[this.transportIndex]!;
  }

  subscribe(channel: string, options: SubscribeOptions | ((event: HeraldEvent) => void), onEvent?: (event: HeraldEvent) => void): Subscription {
    if (!isValidChannel(channel)) throw new HeraldClientError('invalid_channel', `Invalid channel name ${JSON.stringify(channel)}.`);
    const opts = typeof options === 'function' ? {} : options;
    const handler = typeof options === 'function' ? options : onEvent;
    if (!handler) throw new TypeError('subscribe needs an event handler');
    const sub: Sub = { channel, onEvent: handler, options: opts };
    let set = this.subs.get(channel);
    const isNew = !set;
    if (!set) {
      set = new Set();
      this.subs.set(channel, set);
    }
    set.add(sub);
    if (isNew || opts.after !== undefined) this.positions.set(channel, opts.after);
    if (isNew || opts.after !== undefined) this.channelsChanged();
    const positions = this.positions;
    return {
      channel,
      get position() {
        return positions.get(channel);
      },
      unsubscribe: () => this.unsubscribe(sub),
    };
  }

  private unsubscribe(sub: Sub): void {
    const set = this.subs.get(sub.channel);
    if (!set?.delete(sub) || set.size > 0) return;
    this.subs.delete(sub.channel);
    this.positions.delete(sub.channel);
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

  /** Publishes over HTTP; resolves once the event is durable. */
  async publish(channel: string, input: { type?: string; data: unknown; id?: string }): Promise<{ id: string; seq: number; channel: string }> {
    const token = await this.currentToken();
    const res = await this.fetchImpl(`${this.url}/v1/channels/${encodeURIComponent(channel)}/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(input),
    });
    const body = (await res.json()) as HeraldEvent | ErrorBody;
    if (!res.ok) {
      const error = (body as ErrorBody).error;
      if (res.status === 401) this.tokenRefused = true;
      throw new HeraldClientError(error?.code ?? 'http_error', error?.message ?? `HTTP ${res.status}`, res.status);
    }
    const event = body as HeraldEvent;
    return { id: event.id, seq: event.seq, channel: event.channel };
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    this.stopTransport('closed');
  }

  private stopTransport(reason: string): void {
    clearTimeout(this.stableTimer);
    const t = this.transport;
    this.transport = undefined;
    t?.close();
    if (this.state !== 'disconnected') this.setState('disconnected', { reason });
  }

  private setState(state: ConnectionState, detail: StateDetail): void {
    this.state = state;
    this.emit('state', state, detail);
  }

  private async currentToken(): Promise<string | undefined> {
    const getToken = this.options.getToken;
    if (!getToken) return this.token;
    const left = this.token === undefined ? undefined : secondsToExpiry(this.token);
    if (this.token === undefined || this.tokenRefused || (left !== undefined && left < 30)) {
      this.token = await getToken();
      this.tokenRefused = false;
    }
    return this.token;
  }

  private async connect(): Promise<void> {
    this.reconnectTimer = undefined;
    if (this.closed || this.transport || this.positions.size === 0) return;
    const name = this.transportName;
    this.setState('connecting', { transport: name });
    let token: string | undefined;
    try {
      token = await this.currentToken();
    } catch (error) {
      return this.retry({ reason: `getToken failed: ${(error as Error).message}` });
    }
    if (this.closed || this.transport) return;
    const ctx: TransportContext = {
      url: this.url,
      token,
      positions: this.positions,
      heartbeatTimeoutMs: this.options.heartbeatTimeoutMs ?? 35_000,
      fetch: this.fetchImpl,
      WebSocket: this.options.WebSocket,
    };
    this.opened = false;
    const transport: Transport = TRANSPORTS[name](ctx, {
      open: () => {
        if (this.transport !== transport) return;
        this.opened = true;
        this.failuresHere = 0;
        this.setState('connected', { transport: name });
        clearTimeout(this.stableTimer);
        this.stableTimer = setTimeout(() => (this.attempt = 0), this.options.stableAfterMs ?? 5000);
      },
      event: (event) => {
        if (this.transport === transport) this.deliver(event);
      },
      gap: (gap) => {
        if (this.transport !== transport || !this.positions.has(gap.channel)) return;
        this.positions.set(gap.channel, Math.max(this.positions.get(gap.channel) ?? 0, gap.oldest - 1));
        for (const sub of this.subs.get(gap.channel) ?? []) sub.options.onGap?.(gap);
        this.emit('gap', gap);
      },
      live: (channel, head) => {
        if (this.transport === transport && this.positions.has(channel) && this.positions.get(channel) === undefined) this.positions.set(channel, head);
      },
      refused: (channel, code, message) => {
        const error = new HeraldClientError(code, message);
        for (const sub of this.subs.get(channel) ?? []) sub.options.onError?.(error);
        this.emit('error', error);
      },
      end: (end) => {
        if (this.transport !== transport) return;
        this.transport = undefined;
        clearTimeout(this.stableTimer);
        this.setState('disconnected', { transport: name, reason: end.reason });
        this.retry(end);
      },
    });
    this.transport = transport;
    transport.start();
  }

  /** Exactly once, in order: anything at or before the channel's position was already delivered. */
  private deliver(event: HeraldEvent): void {
    if (!this.positions.has(event.channel)) return;
    const position = this.positions.get(event.channel);
    if (position !== undefined && event.seq <= position) return;
    this.positions.set(event.channel, event.seq);
    for (const sub of this.subs.get(event.channel) ?? []) sub.onEvent(event);
  }

  private retry(end: TransportEnd): void {
    if (this.closed) return;
    if (end.auth) {
      if (!this.options.getToken) {
        this.emit('error', new HeraldClientError('unauthorized', `The credential was refused: ${end.reason}`));
        this.close();
        return;
      }
      this.tokenRefused = true;
    } else if (!this.opened) {
      this.failuresHere += 1;
      if (this.failuresHere >= (this.options.fallbackAfter ?? 2) && this.transportIndex < this.order.length - 1) {
        this.transportIndex += 1;
        this.failuresHere = 0;
      }
    }
    const delay = backoffDelay(this.attempt++, this.options.backoff?.baseMs ?? 500, this.options.backoff?.maxMs ?? 20_000);
    this.reconnectTimer = setTimeout(() => void this.connect(), delay);
  }
}

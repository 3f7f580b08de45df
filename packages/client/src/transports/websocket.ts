import type { GapInfo, HeraldEvent, ServerOp } from '@herald/protocol';
import { monotonicNow } from '../backoff.js';
import { BaseTransport } from './base.js';
import type { Transport, TransportFactory } from './types.js';

/** Refusals of a subscribe that pass by themselves: the subscribe is sent again later (see subscribeAgainSoon). */
const PASSING = new Set(['too_many_requests', 'store_unavailable', 'unavailable']);
/** Refusals of a subscribe that only another credential changes: not asked for again on this socket. */
const FINAL = new Set(['forbidden', 'unauthorized']);
const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 30_000;

type Request = Parameters<NonNullable<Transport['request']>>[0];

const POLICY_VIOLATION = 1008;
const GOING_AWAY = 1001;

/** The WebSocket transport: one socket, a subscribe op per channel, an app-level ping for the watchdog. */
class WebSocketTransport extends BaseTransport implements Transport {
  readonly name = 'websocket' as const;
  private ws: WebSocket | undefined;
  private readonly subscribed = new Set<string>();
  /**
   * Channels the server refused this connection for good (`forbidden`, say): not asked for again on this socket until
   * unsubscribed, so a later change of subscriptions does not tell the refusal again, as SSE and polling do not.
   */
  private readonly refused = new Set<string>();
  /**
   * Channels whose last subscribe was refused. A refused subscribe leaves the socket's earlier subscription of the
   * channel in force on the server (from a position the client has since left: a rewind, a new epoch), so the
   * channel's `event` and `gap` frames are dropped until a later subscribe of it is answered, and an unsubscribe of
   * it is still sent.
   */
  private readonly stale = new Set<string>();
  /**
   * Channels with `subscribe` frames sent and not yet answered (`subscribed` or `error`), and how many. Until the
   * last is answered, the channel's `event` and `gap` frames belong to a subscription the client has since replaced
   * (an unsubscribe and a subscribe from another position, or a resubscribe): the server sends `subscribed` before
   * the new one's backlog. Handed over, such a frame would move the new position past events the new
   * subscription is about to replay, and they would be dropped as already seen.
   */
  private readonly awaiting = new Map<string, number>();
  private watchdog: ReturnType<typeof setInterval> | undefined;
  private handshakeTimer: ReturnType<typeof setTimeout> | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** Subscribes refused for a while in a row (see subscribeAgainSoon); back to 0 at the next one the server takes. */
  private retries = 0;
  private lastSeen = monotonicNow();
  /** The server has sent a frame: it took the socket and its credential (see onmessage). */
  private accepted = false;
  /** Requests waiting for their `ack` or `error`, by ref. */
  private readonly pending = new Map<string, { resolve: (frame: ServerOp) => void; reject: (error: Error) => void }>();
  private nextRef = 0;

  start(): void {
    const Impl = this.ctx.WebSocket;
    if (!Impl) return this.finish({ reason: 'no WebSocket implementation' });
    let ws: WebSocket;
    try {
      // No token in the URL: proxies and servers log URLs. It goes in the first frame (see onopen).
      ws = new Impl(`${this.ctx.url.replace(/^http/, 'ws')}/v1/ws`);
    } catch (error) {
      return this.finish({ reason: (error as Error).message });
    }
    this.ws = ws;
    // No watchdog runs before the socket opens: a handshake nobody answers (a proxy that holds upgrades, a server
    // that is stopped or a black hole) would leave the client connecting for good, never falling back or retrying.
    this.handshakeTimer = setTimeout(() => this.finish({ reason: 'no answer to the WebSocket handshake in time' }), this.ctx.heartbeatTimeoutMs);
    ws.onopen = () => {
      clearTimeout(this.handshakeTimer);
      this.lastSeen = monotonicNow();
      // Browsers hide protocol pings, so the watchdog pings at the app level and expects any frame back.
      this.watchdog = setInterval(() => {
        if (monotonicNow() - this.lastSeen > this.ctx.heartbeatTimeoutMs) {
          this.finish({ reason: 'heartbeat timeout' });
        } else if (ws.readyState === ws.OPEN) {
          ws.send('{"op":"ping"}');
        }
      }, this.ctx.heartbeatTimeoutMs / 3);
      // Frames run in order: the credential is in force for the subscribes after it. A refused one closes with 1008.
      if (this.ctx.token) ws.send(JSON.stringify({ op: 'auth', token: this.ctx.token }));
      this.channelsChanged();
    };
    ws.onmessage = (message: MessageEvent) => {
      this.lastSeen = monotonicNow();
      if (!this.accepted) {
        // Open once the server has answered (the subscribes just sent, or the watchdog's ping): a server that refuses
        // the credential upgrades the socket, then closes it with 1008, and the app saw `connected` before that.
        this.accepted = true;
        this.handlers.open();
        // The open handler may have closed this transport (e.g. a probe that only checks it connects).
        if (this.ended) return;
      }
      this.onFrame(JSON.parse(String(message.data)) as ServerOp);
    };
    // A failed connection also closes; the error itself says nothing more, and must not go unhandled (ws in Node
    // throws it). Except in the undici inside Node 20 and 22 (their global WebSocket): a connection refused, or
    // answered without a 101, fires `error` in CONNECTING and never `close`, so the client would wait forever.
    // Everywhere else the socket has left CONNECTING by then and `close` follows.
    ws.onerror = () => {
      if (ws.readyState !== ws.CONNECTING) return;
      setTimeout(() => {
        if (ws.readyState === ws.CONNECTING) this.finish({ reason: 'the connection failed' });
      }, 0);
    };
    ws.onclose = (event: CloseEvent) => {
      this.finish({
        reason: `closed with ${event.code}${event.reason ? ` (${event.reason})` : ''}`,
        auth: event.code === POLICY_VIOLATION,
        goingAway: event.code === GOING_AWAY,
      });
    };
  }

  private onFrame(frame: ServerOp): void {
    switch (frame.op) {
      case 'event': {
        if (this.awaiting.has(frame.channel) || this.stale.has(frame.channel)) return;
        const { op: _op, ...event } = frame;
        return this.handlers.event(event as HeraldEvent);
      }
      case 'gap': {
        if (this.awaiting.has(frame.channel) || this.stale.has(frame.channel)) return;
        const { op: _op, ...gap } = frame;
        return this.handlers.gap(gap as GapInfo);
      }
      case 'subscribed':
        // The answer to a subscribe since replaced by a later one: that one's answer follows.
        if (this.answered(frame.channel)) return;
        this.stale.delete(frame.channel);
        this.retries = 0;
        // The server already started this channel from the old position: subscribe it again from the new history's
        // start (its position is 0 now). What the old subscription sends until the answer is dropped (see awaiting);
        // the socket and the other channels go on.
        if (this.handlers.epoch(frame.channel, frame.epoch)) return this.resubscribe(frame.channel);
        this.handlers.live(frame.channel, frame.seq);
        if (frame.presence) this.handlers.presence(frame.channel, frame.presence.client, frame.presence.members);
        return;
      case 'presence':
        return this.handlers.presenceChange(frame.channel, frame.action, frame.member);
      case 'ephemeral': {
        const { op: _op, ...message } = frame;
        return this.handlers.ephemeral(message);
      }
      case 'message': {
        const { op: _op, ...message } = frame;
        return this.handlers.message(message);
      }
      case 'ack':
        this.settle(frame.ref, frame);
        return;
      case 'error':
        if (frame.ref !== undefined && this.settle(frame.ref, frame)) return;
        if (frame.ref?.startsWith('sub:')) {
          const channel = frame.ref.slice(4);
          if (this.answered(channel)) return;
          this.subscribed.delete(channel);
          this.stale.add(channel);
          // A refusal that passes (a presence set joined by many at once, the socket's own join budget, the server's
          // store down for a while): subscribed again later, rather than given up with an error. Given up, a subscribe
          // made while PostgreSQL restarted left the channel silent on a connected socket until it dropped.
          if (PASSING.has(frame.code)) return this.subscribeAgainSoon();
          // Only a refusal of the credential's reach is final; another (a per-socket limit, say) may pass once the
          // app changes its subscriptions. A channel unsubscribed before the answer came is not kept refused.
          if (FINAL.has(frame.code) && this.ctx.positions.has(channel)) this.refused.add(channel);
          this.handlers.refused(channel, frame.code, frame.message);
        }
        return;
      default:
        return;
    }
  }

  /**
   * Sends the subscribes not in force again in 1 to 2 s, then, while they keep being refused, twice as long each time up
   * to 30 to 60 s (spread, so clients refused together do not return together).
   */
  private subscribeAgainSoon(): void {
    if (this.retryTimer !== undefined) return;
    const base = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** this.retries++);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (!this.ended) this.channelsChanged();
    }, base + Math.random() * base);
  }

  /** One subscribe of `channel` was answered; true while a later one still waits for its answer. */
  private answered(channel: string): boolean {
    const left = (this.awaiting.get(channel) ?? 0) - 1;
    if (left > 0) this.awaiting.set(channel, left);
    else this.awaiting.delete(channel);
    return left > 0;
  }

  /** Resolves the request `ref` answers; false when it is no request of ours. */
  private settle(ref: string, frame: ServerOp): boolean {
    const waiting = this.pending.get(ref);
    if (!waiting) return false;
    this.pending.delete(ref);
    waiting.resolve(frame);
    return true;
  }

  request(op: Request): Promise<ServerOp> {
    const ws = this.ws;
    if (this.ended || !ws || ws.readyState !== ws.OPEN) return Promise.reject(new Error('the WebSocket is not open'));
    const ref = `req:${++this.nextRef}`;
    return new Promise((resolve, reject) => {
      this.pending.set(ref, { resolve, reject });
      ws.send(JSON.stringify({ ...op, ref }));
    });
  }

  resubscribe(channel: string): void {
    // Asked for again explicitly (from an older position, joining or leaving presence): sent again whatever became
    // of the last subscribe, a refused one included.
    this.subscribed.delete(channel);
    this.refused.delete(channel);
    this.channelsChanged();
  }

  channelsChanged(): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== ws.OPEN) return;
    for (const channel of this.refused) if (!this.ctx.positions.has(channel)) this.refused.delete(channel);
    for (const [channel, position] of this.ctx.positions) {
      if (this.subscribed.has(channel) || this.refused.has(channel)) continue;
      this.subscribed.add(channel);
      this.awaiting.set(channel, (this.awaiting.get(channel) ?? 0) + 1);
      const presence = this.ctx.presence.get(channel);
      ws.send(
        JSON.stringify({ op: 'subscribe', channel, ref: `sub:${channel}`, ...(position === undefined ? {} : { after: position }), ...(presence ? { presence } : {}) }),
      );
    }
    for (const channel of [...this.subscribed, ...this.stale]) {
      if (this.ctx.positions.has(channel)) continue;
      this.subscribed.delete(channel);
      this.stale.delete(channel);
      ws.send(JSON.stringify({ op: 'unsubscribe', channel }));
    }
  }

  protected cleanup(): void {
    clearTimeout(this.handshakeTimer);
    clearTimeout(this.retryTimer);
    clearInterval(this.watchdog);
    this.ws?.close();
    for (const waiting of this.pending.values()) waiting.reject(new Error('the connection closed before an answer'));
    this.pending.clear();
  }
}

export const websocketTransport: TransportFactory = (ctx, handlers) => new WebSocketTransport(ctx, handlers);

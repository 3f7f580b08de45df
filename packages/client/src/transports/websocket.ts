import type { GapInfo, HeraldEvent, ServerOp } from '@herald/protocol';
import { BaseTransport } from './base.js';
import type { Transport, TransportFactory } from './types.js';

const POLICY_VIOLATION = 1008;

/** The WebSocket transport: one socket, a subscribe op per channel, an app-level ping for the watchdog. */
class WebSocketTransport extends BaseTransport implements Transport {
  readonly name = 'websocket' as const;
  private ws: WebSocket | undefined;
  private readonly subscribed = new Set<string>();
  private watchdog: ReturnType<typeof setInterval> | undefined;
  private lastSeen = Date.now();

  start(): void {
    const Impl = this.ctx.WebSocket;
    if (!Impl) return this.finish({ reason: 'no WebSocket implementation' });
    const query = this.ctx.token ? `?token=${encodeURIComponent(this.ctx.token)}` : '';
    let ws: WebSocket;
    try {
      ws = new Impl(`${this.ctx.url.replace(/^http/, 'ws')}/v1/ws${query}`);
    } catch (error) {
      return this.finish({ reason: (error as Error).message });
    }
    this.ws = ws;
    ws.onopen = () => {
      this.lastSeen = Date.now();
      // Browsers hide protocol pings, so the watchdog pings at the app level and expects any frame back.
      this.watchdog = setInterval(() => {
        if (Date.now() - this.lastSeen > this.ctx.heartbeatTimeoutMs) {
          this.finish({ reason: 'heartbeat timeout' });
        } else if (ws.readyState === ws.OPEN) {
          ws.send('{"op":"ping"}');
        }
      }, this.ctx.heartbeatTimeoutMs / 3);
      this.handlers.open();
      // The open handler may have closed this transport (e.g. a probe that only checks it connects).
      if (!this.ended) this.channelsChanged();
    };
    ws.onmessage = (message: MessageEvent) => {
      this.lastSeen = Date.now();
      this.onFrame(JSON.parse(String(message.data)) as ServerOp);
    };
    // A failed connection also closes; the error itself says nothing more, and must not go unhandled (ws in Node throws it).
    ws.onerror = () => {};
    ws.onclose = (event: CloseEvent) => {
      this.finish({ reason: `closed with ${event.code}${event.reason ? ` (${event.reason})` : ''}`, auth: event.code === POLICY_VIOLATION });
    };
  }

  private onFrame(frame: ServerOp): void {
    switch (frame.op) {
      case 'event': {
        const { op: _op, ...event } = frame;
        return this.handlers.event(event as HeraldEvent);
      }
      case 'gap': {
        const { op: _op, ...gap } = frame;
        return this.handlers.gap(gap as GapInfo);
      }
      case 'subscribed':
        // The server already started this channel from the old position: start over from the new history.
        if (this.handlers.epoch(frame.channel, frame.epoch)) return this.finish({ reason: `the history of ${frame.channel} was reset` });
        return this.handlers.live(frame.channel, frame.seq);
      case 'error':
        if (frame.ref?.startsWith('sub:')) {
          const channel = frame.ref.slice(4);
          this.subscribed.delete(channel);
          this.handlers.refused(channel, frame.code, frame.message);
        }
        return;
      default:
        return;
    }
  }

  channelsChanged(): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== ws.OPEN) return;
    for (const [channel, position] of this.ctx.positions) {
      if (this.subscribed.has(channel)) continue;
      this.subscribed.add(channel);
      ws.send(JSON.stringify({ op: 'subscribe', channel, ref: `sub:${channel}`, ...(position === undefined ? {} : { after: position }) }));
    }
    for (const channel of [...this.subscribed]) {
      if (this.ctx.positions.has(channel)) continue;
      this.subscribed.delete(channel);
      ws.send(JSON.stringify({ op: 'unsubscribe', channel }));
    }
  }

  protected cleanup(): void {
    clearInterval(this.watchdog);
    this.ws?.close();
  }
}

export const websocketTransport: TransportFactory = (ctx, handlers) => new WebSocketTransport(ctx, handlers);

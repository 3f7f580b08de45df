import type { WebSocket, RawData } from 'ws';
import type { FastifyBaseLogger } from 'fastify';
import { CloseCodes, HeraldError, type ClientOp, type ServerOp } from '@herald/protocol';
import type { AppContext } from '../../http/context.js';
import type { Principal } from '../../auth/principal.js';
import { ChannelFeed } from '../feed.js';
import { wsEventFrame } from '../frames.js';
import { parseClientOp, refOfRefusedFrame } from './ops.js';
import { assertPayloadDepth } from '../../log/payload-depth.js';
import { countRealtimeDelivery, countSlowConsumer } from '../../metrics/index.js';

/** How long a socket closed as too slow may hold its buffer before it is cut off. */
const SLOW_CLOSE_GRACE_MS = 5000;

/** One client socket: its credential, its subscriptions and its send buffer. */
export class WsSession {
  /** Protocol pings sent without a pong since; the gateway drops the socket at two. */
  missedPongs = 0;
  private closing = false;
  private readonly feeds = new Map<string, ChannelFeed>();
  private readonly authTimer: NodeJS.Timeout | undefined;
  private unwatch: () => void = () => {};
  /** The ops admitted so far, chained; see onMessage. */
  private inbox: Promise<void> = Promise.resolve();

  constructor(
    readonly ws: WebSocket,
    private readonly ctx: AppContext,
    private readonly logger: FastifyBaseLogger,
    private principal: Principal | undefined,
  ) {
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    ws.on('pong', () => (this.missedPongs = 0));
    ws.on('close', () => this.stopFeeds());
    this.watchCredential();
    ws.on('error', (err) => logger.debug({ err }, 'websocket error'));
    if (!principal) {
      this.authTimer = setTimeout(() => {
        // Anonymous sockets may stay only for public channels.
        if (!this.principal && this.feeds.size === 0) this.close(CloseCodes.policyViolation, 'authentication timeout');
      }, ctx.config.ws.authTimeout * 1000);
      this.authTimer.unref();
    }
  }

  /** The socket lives as long as its credential: ended with 1008 when it expires or is revoked. */
  private watchCredential(): void {
    this.unwatch();
    this.unwatch = this.ctx.watch.watch(this.principal, (reason) => this.close(CloseCodes.policyViolation, `credential ${reason}`));
  }

  send(op: ServerOp): void {
    this.sendFrame(Buffer.from(JSON.stringify(op)));
  }

  private sendFrame(frame: Buffer): void {
    if (this.closing || this.ws.readyState !== this.ws.OPEN) return;
    if (this.ws.bufferedAmount + frame.length > this.ctx.config.limits.sendBufferBytes) {
      this.logger.warn({ buffered: this.ws.bufferedAmount }, 'WebSocket client too slow: closing with 1013');
      this.close(CloseCodes.tryAgainLater, 'slow consumer');
      countSlowConsumer('ws');
      setTimeout(() => this.ws.terminate(), SLOW_CLOSE_GRACE_MS).unref();
      return;
    }
    this.ws.send(frame, { binary: false });
  }

  /** While a backlog replays, wait for the socket to flush below half the bound. */
  private drained(): Promise<void> | undefined {
    const low = this.ctx.config.limits.sendBufferBytes / 2;
    if (this.ws.bufferedAmount < low || this.closing) return undefined;
    // ws has no drain event of its own; a short poll costs nothing when the buffer is low.
    return new Promise((resolve) => {
      const check = () => (this.ws.bufferedAmount < low || this.closing ? resolve() : setTimeout(check, 10));
      check();
    });
  }

  close(code: number, reason: string): void {
    if (this.closing) return;
    this.closing = true;
    this.stopFeeds();
    this.ws.close(code, reason);
  }

  /** Shutdown: stop feeding, let what is buffered go out, then close with 1001. */
  async drainAndClose(maxWaitMs: number): Promise<void> {
    this.stopFeeds();
    const deadline = Date.now() + maxWaitMs;
    while (this.ws.bufferedAmount > 0 && Date.now() < deadline && this.ws.readyState === this.ws.OPEN) {
      await new Promise((r) => setTimeout(r, 10));
    }
    this.close(CloseCodes.goingAway, 'server shutting down');
  }

  private stopFeeds(): void {
    clearTimeout(this.authTimer);
    this.unwatch();
    for (const feed of this.feeds.values()) feed.stop();
    this.feeds.clear();
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    if (this.closing) return;
    let op: ClientOp;
    const text = isBinary ? undefined : data.toString();
    try {
      if (text === undefined) throw new HeraldError('bad_request', 'Frames are JSON text, not binary.');
      op = parseClientOp(text);
    } catch (error) {
      // Even a refused frame (unknown op, missing field) gets its `ref` back, so the client can match the error.
      this.sendError(error, text === undefined ? undefined : refOfRefusedFrame(text));
      return;
    }
    const ref = 'ref' in op ? op.ref : undefined;
    // One op at a time, in arrival order: an `auth` is in force before the next frame runs, and an
    // `unsubscribe` always finds the `subscribe` before it. Only admission is serialized: a publish's
    // append and a subscription's backlog go on in the background, so a socket can still pipeline.
    this.inbox = this.inbox.then(() => this.dispatch(op)).catch((error: unknown) => this.sendError(error, ref));
  }

  private sendError(error: unknown, ref?: string): void {
    const herald = error instanceof HeraldError ? error : new HeraldError('internal');
    if (!(error instanceof HeraldError)) this.logger.error({ err: error }, 'websocket op failed');
    this.send({ op: 'error', ...(ref === undefined ? {} : { ref }), code: herald.code, message: herald.message });
  }

  private async dispatch(op: ClientOp): Promise<void> {
    switch (op.op) {
      case 'ping':
        return this.send({ op: 'pong' });
      case 'auth':
        return this.authenticate(op.token);
      case 'subscribe':
        if (!(await this.credentialLive())) return;
        return this.subscribe(op.channel, op.after, op.ref);
      case 'unsubscribe': {
        this.feeds.get(op.channel)?.stop();
        this.feeds.delete(op.channel);
        return this.send({ op: 'unsubscribed', channel: op.channel, ...(op.ref ? { ref: op.ref } : {}) });
      }
      case 'publish': {
        if (!(await this.credentialLive())) return;
        this.ctx.access.assertPublish(this.principal, op.channel);
        assertPayloadDepth(this.ctx.config.limits.jsonDepth, op);
        const input = { channel: op.channel, data: op.data, ...(op.type ? { type: op.type } : {}), ...(op.id ? { id: op.id } : {}) };
        // Appends are queued for group commit in call order, so acks follow the order of the frames.
        this.ctx.log.publish([input], undefined, { via: 'ws', traceparent: op.traceparent }).then(
          (result) => this.send({ op: 'ack', ref: op.ref, seq: result.events[0]!.seq, id: result.events[0]!.id }),
          (error: unknown) => this.sendError(error, op.ref),
        );
        return;
      }
    }
  }

  /** Every op that reads or writes re-checks the credential; a dead one closes the socket with 1008. */
  private async credentialLive(): Promise<boolean> {
    if (!this.principal) return true;
    const state = await this.ctx.auth.liveness.check(this.principal);
    if (state === 'live') return true;
    this.close(CloseCodes.policyViolation, `credential ${state}`);
    return false;
  }

  private async authenticate(token: string): Promise<void> {
    try {
      this.principal = await this.ctx.auth.authenticate(token);
    } catch {
      this.close(CloseCodes.policyViolation, 'invalid credential');
      return;
    }
    clearTimeout(this.authTimer);
    this.watchCredential();
    this.send({ op: 'authenticated' });
  }

  private async subscribe(channel: string, after: number | undefined, ref: string | undefined): Promise<void> {
    this.ctx.access.assertRead(this.principal, channel);
    const max = this.ctx.config.limits.channelsPerRequest;
    if (!this.feeds.has(channel) && this.feeds.size >= max) {
      throw new HeraldError('bad_request', `At most ${max} subscriptions per socket.`);
    }
    // Subscribing again restarts the channel from the new position.
    this.feeds.get(channel)?.stop();
    const feed = new ChannelFeed(this.ctx.log, channel, {
      event: (event) => {
        this.sendFrame(wsEventFrame(event));
        countRealtimeDelivery('ws');
      },
      gap: (gap) => this.send({ op: 'gap', ...gap }),
      drained: () => this.drained(),
      failed: (error) => {
        this.sendError(error, ref);
        feed.stop();
        if (this.feeds.get(channel) === feed) this.feeds.delete(channel);
      },
    });
    this.feeds.set(channel, feed);
    const state = await feed.open(after);
    if (this.feeds.get(channel) !== feed) return;
    this.send({ op: 'subscribed', channel, ...(ref === undefined ? {} : { ref }), seq: state.head, epoch: state.epoch });
    // Read failures reach the sink's `failed`; the next frame need not wait for the backlog.
    void feed.replay();
  }
}

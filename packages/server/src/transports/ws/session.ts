import { WebSocket, type RawData } from 'ws';
import type { Socket } from 'node:net';
import type { FastifyBaseLogger } from 'fastify';
import { CloseCodes, HeraldError, type ClientOp, type GapInfo, type HeraldEvent, type PresenceMember, type ServerOp } from '@herald/protocol';
import type { AppContext } from '../../http/context.js';
import type { Principal } from '../../auth/principal.js';
import type { ChannelFeed } from '../feed.js';
import { wsEventFrame, wsSharedFrame, wsTextFrame } from '../frames.js';
import { Outbox } from '../outbox.js';
import { watchStall } from '../stall-watch.js';
import type { ReplayReservation } from '../replay-budget.js';
import { clientOpOf, parseFrame, refOfFrame, refOfUnparsedFrame } from './ops.js';
import { assertStorablePayload } from '../../log/storable-payload.js';
import { countRealtimeDelivery, countRefused, countSlowConsumer } from '../../metrics/index.js';
import { newClientId } from '../../presence/client-id.js';
import { TokenBucket } from '../../util/token-bucket.js';
import type { Rota } from '../../util/rota.js';
import {
  allSubscriptions,
  findSubscription,
  Subscription,
  subscriptionCount,
  withoutSubscription,
  withSubscription,
  type SubscriptionOwner,
  type Subscriptions,
} from './subscription.js';

/** How long a socket closed as too slow may hold its buffer before it is cut off. */
const SLOW_CLOSE_GRACE_MS = 5000;
/**
 * Frames admitted but not yet done, by weight (their length, at least INBOX_FRAME_MIN each): past INBOX_MAX the
 * socket is not read until they fall below half. Without it a client that sends faster than its ops run (each
 * `auth` verifies a token on the thread pool) made the server hold every frame it sent: hundreds of MB.
 */
const INBOX_MAX = 1024 * 1024;
const INBOX_FRAME_MIN = 1024;
const NOTHING_TO_UNWATCH = () => {};

/**
 * The socket under a server-side `ws` WebSocket. Frames are written to it
 * directly (see WsSession): `ws` would frame each message again for every
 * socket, and the frames of a broadcast are the same bytes for all of them.
 * Safe because permessage-deflate is off (gateway.ts), so `ws`'s sender never
 * queues a message of its own that ours could overtake.
 */
function socketOf(ws: WebSocket): Socket {
  const socket = (ws as unknown as { _socket?: Socket })._socket;
  if (!socket || typeof socket.write !== 'function') throw new Error('ws no longer exposes its socket: see transports/ws/session.ts');
  return socket;
}

/**
 * The prototype of a session socket's listener table. EventEmitter gives every emitter a `{ __proto__: null }`, which
 * V8 keeps as a dictionary of about 180 bytes, though a session socket holds no listener. An object whose prototype
 * is this one reads the same to EventEmitter (no key of its own, nothing inherited) and is an ordinary object of 56.
 */
const NO_LISTENERS: object = Object.create(null);

/**
 * The gateway's WebSocket class (`ws` makes its server-side sockets with it): it hands the socket's events
 * straight to its session. Listeners would cost every idle socket about a hundred bytes: `ws` keeps them in
 * the socket's `_events`, a dictionary-mode object that grows with each one.
 */
export class SessionSocket extends WebSocket {
  session: WsSession | undefined = undefined;
  /** EventEmitter's listener table, set by its constructor (which runs first) and replaced here: see NO_LISTENERS. */
  protected _events: object = Object.create(NO_LISTENERS) as object;

  override emit(event: string | symbol, ...args: unknown[]): boolean {
    const session = this.session;
    switch (event) {
      case 'message':
        this.releaseChunkList();
        session?.onMessage(args[0] as RawData, args[1] as boolean);
        break;
      case 'ping':
        this.releaseChunkList();
        break;
      case 'pong':
        // Every idle socket answers a heartbeat each period: a pong, like a message, must not leave the list grown.
        this.releaseChunkList();
        if (session) session.missedPongs = 0;
        break;
      case 'close':
        session?.closed();
        break;
      case 'error':
        // `ws` closes the socket after an error of its own; with no listener, EventEmitter would throw it.
        session?.logger.debug({ err: args[0] }, 'websocket error');
        return this.listenerCount('error') > 0 ? super.emit(event, ...args) : false;
    }
    return super.emit(event, ...args);
  }

  /**
   * `ws`'s receiver keeps the list its chunks pass through, with room for 16 (152 bytes), for the socket's life,
   * though an idle socket sends only a frame now and then. Emptied by the frame it has just cut out, it is swapped
   * for a new empty one, which holds no room until the next frame. Only while empty: a list still holding the next
   * frame's bytes is left alone. Nothing happens if `ws` no longer has this field.
   */
  private releaseChunkList(): void {
    const receiver = (this as unknown as { _receiver?: { _buffers?: unknown } })._receiver;
    if (receiver && Array.isArray(receiver._buffers) && receiver._buffers.length === 0) receiver._buffers = [];
  }
}

/**
 * Whether a failed authentication refused the credential (`unauthorized`: the socket closes with 1008, final for a
 * client) rather than could not check it (the store unreachable: it closes with {@link UNCHECKED_CLOSE}).
 */
export const isRefusedCredential = (error: unknown): boolean => error instanceof HeraldError && error.code === 'unauthorized';
/** The close for a credential the server could not check: no verdict, so the client comes back later. */
export const UNCHECKED_CLOSE = { code: CloseCodes.tryAgainLater, reason: 'credential not checked: try again later' } as const;

/** One client socket: its credential, its subscriptions and its send buffer (the outbox it extends). */
export class WsSession extends Outbox implements SubscriptionOwner {
  /** Protocol pings sent without a pong since; the gateway drops the socket at two. */
  missedPongs = 0;
  private closing = false;
  private subscriptions: Subscriptions = undefined;
  private readonly authTimer: NodeJS.Timeout | undefined;
  private unwatch: () => void = NOTHING_TO_UNWATCH;
  /** The ops admitted so far, chained (see onMessage); undefined when none is pending. */
  private inbox: Promise<void> | undefined;
  /** The weight of the frames in `inbox` (see INBOX_MAX). */
  private waiting = 0;
  /** Its id in presence sets and for direct messages; made on first use, as most sockets never need one. */
  private clientId: string | undefined = undefined;
  /** Its own rate bucket for ephemeral publishes, direct messages and presence joins, made on first use. */
  private bucket: TokenBucket | undefined = undefined;

  constructor(
    readonly ws: SessionSocket,
    private readonly ctx: AppContext,
    readonly logger: FastifyBaseLogger,
    private principal: Principal | undefined,
    /** The gateway's open sessions, which this one leaves when its socket closes. */
    private readonly registry: Rota<WsSession>,
    /**
     * The handshake's only credential was a `herald_token` cookie, and it was refused. A browser sends the cookie
     * with every upgrade, so a client that authenticates in its first frame (`@herald/client` does) must not be
     * closed for a stale cookie: the socket waits for that frame, and any other first op closes it with 1008, as a
     * refused credential always did.
     */
    private refusedCookie = false,
  ) {
    super(socketOf(ws));
    ws.session = this;
    registry.add(this);
    this.watchCredential();
    if (!principal) {
      this.authTimer = setTimeout(() => {
        // Anonymous sockets may stay only for public channels.
        if (!this.principal && this.subscriptions === undefined) this.close(CloseCodes.policyViolation, 'authentication timeout');
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
    this.sendWire(wsTextFrame(JSON.stringify(op)));
  }

  private get client(): string {
    return (this.clientId ??= newClientId());
  }

  /** Made on first use: a bucket that has waited since the socket opened is full, as a new one is. */
  private get gate(): TokenBucket {
    return (this.bucket ??= new TokenBucket(this.ctx.presence.ephemeralPerSecond));
  }

  /** FrameSink: a JSON payload that may go to many sockets (presence, ephemeral publishes), framed once whoever sends it. */
  sendFrame(payload: Buffer): void {
    this.sendWire(wsSharedFrame(payload));
  }

  /**
   * Queues a whole WebSocket frame on the outbox. Everything this session
   * sends goes this way, so frames keep their order. The slow-consumer bound
   * counts what the socket holds plus what this tick queued.
   */
  private sendWire(frame: Buffer): void {
    if (this.closing || this.ws.readyState !== this.ws.OPEN) return;
    if (this.buffered + frame.length > this.ctx.config.limits.sendBufferBytes) return this.tooSlow('WebSocket client too slow: closing with 1013');
    this.queue(frame);
  }

  private tooSlow(message: string): void {
    // Once: each replaying subscription of the socket watches its own wait, and several may find it stalled.
    if (this.closing) return;
    this.logger.warn({ buffered: this.buffered }, message);
    this.close(CloseCodes.tryAgainLater, 'slow consumer');
    countSlowConsumer('ws');
    setTimeout(() => this.ws.terminate(), SLOW_CLOSE_GRACE_MS).unref();
  }

  /** FeedSink: one event of a subscribed channel. */
  event(event: HeraldEvent): void {
    this.sendWire(wsEventFrame(event));
    countRealtimeDelivery('ws');
  }

  /** FeedSink: events of a subscribed channel were trimmed before they could be sent. */
  gap(gap: GapInfo): void {
    this.send({ op: 'gap', ...gap });
  }

  /** FeedSink: while a backlog replays, wait for the socket to flush below half the bound. */
  drained(): Promise<void> | undefined {
    const low = this.ctx.config.limits.sendBufferBytes / 2;
    if (this.buffered < low || this.closing) return undefined;
    // ws has no drain event of its own; a short poll costs nothing when the buffer is low. Closing the socket as too
    // slow sets `closing`, which ends the wait.
    // Progress is the buffer going down.
    const stopWatching = watchStall(() => -this.buffered, this.ctx.config.limits.replayStallTimeout * 1000, () =>
      this.tooSlow('WebSocket client read nothing of its replay: closing with 1013'),
    );
    return new Promise((resolve) => {
      const check = () => {
        if (this.buffered >= low && !this.closing) return void setTimeout(check, 10);
        stopWatching();
        resolve();
      };
      check();
    });
  }

  /** FeedSink: room for a replay page in the node's budget; none once the socket is closing. */
  reserveReplay(bytes: number, continuing: boolean): ReplayReservation | undefined {
    if (this.closing) return undefined;
    return this.replayRoom(this.ctx.replayBudget, bytes, continuing, this.ctx.config.limits.replayStallTimeout * 1000, () =>
      this.tooSlow('WebSocket client read nothing of its replay pages: closing with 1013'),
    );
  }

  /** FeedSink: the log could not be read for one subscription; it ends, the socket stays. */
  failed(error: unknown, feed: ChannelFeed): void {
    const subscription = feed as Subscription;
    this.sendError(error, subscription.ref);
    this.drop(subscription);
  }

  /** Ends `subscription` if it is still the socket's one for its channel; a replaced one only stops its feed. */
  private drop(subscription: Subscription): void {
    if (findSubscription(this.subscriptions, subscription.channel) === subscription) this.unsubscribe(subscription.channel);
    else subscription.stop();
  }

  /** Ends the socket's subscription to `channel`, if any: its feed, its ephemeral listener, its presence. */
  private unsubscribe(channel: string): void {
    const subscription = findSubscription(this.subscriptions, channel);
    if (!subscription) return;
    this.subscriptions = withoutSubscription(this.subscriptions, channel);
    this.end(subscription);
  }

  /**
   * Both presence calls do nothing when the subscription never listened or joined (a socket without a client id
   * joined nothing).
   */
  private end(subscription: Subscription): void {
    subscription.stop();
    this.ctx.presence.unlisten(subscription.channel, subscription);
    if (this.clientId !== undefined) this.ctx.presence.leave(subscription.channel, this.clientId);
  }

  close(code: number, reason: string): void {
    if (this.closing) return;
    this.closing = true;
    this.stopFeeds();
    // What this tick queued goes before the close frame.
    this.flush();
    this.ws.close(code, reason);
  }

  /** The socket closed (either side): nothing more to send or follow. */
  closed(): void {
    // Ops still queued or awaiting (a credential check, a backlog open) must not subscribe, join or watch afterwards.
    this.closing = true;
    this.registry.delete(this);
    this.discard();
    this.stopFeeds();
  }

  /** Shutdown: stop feeding, let what is buffered go out, then close with 1001. */
  async drainAndClose(maxWaitMs: number): Promise<void> {
    this.stopFeeds();
    this.flush();
    const deadline = Date.now() + maxWaitMs;
    while (this.ws.bufferedAmount > 0 && Date.now() < deadline && this.ws.readyState === this.ws.OPEN) {
      await new Promise((r) => setTimeout(r, 10));
    }
    this.close(CloseCodes.goingAway, 'server shutting down');
  }

  private stopFeeds(): void {
    clearTimeout(this.authTimer);
    this.unwatch();
    const subscriptions = allSubscriptions(this.subscriptions);
    this.subscriptions = undefined;
    for (const subscription of subscriptions) this.end(subscription);
  }

  onMessage(data: RawData, isBinary: boolean): void {
    if (this.closing) return;
    let op: ClientOp | undefined;
    let frame: unknown;
    let refusal: unknown;
    const text = isBinary ? undefined : data.toString();
    try {
      if (text === undefined) throw new HeraldError('bad_request', 'Frames are JSON text, not binary.');
      frame = parseFrame(text);
      op = clientOpOf(frame, text);
    } catch (error) {
      refusal = error;
    }
    // Even a refused frame (unknown op, missing field) gets its `ref` back, so the client can match the error.
    const unparsed = frame === undefined && text !== undefined && refusal instanceof HeraldError && refusal.code === 'payload_too_deep';
    const ref = op === undefined ? (unparsed ? refOfUnparsedFrame(text) : refOfFrame(frame)) : 'ref' in op ? op.ref : undefined;
    const weight = Math.max(text?.length ?? 0, INBOX_FRAME_MIN);
    this.waiting += weight;
    // Frames `ws` had already read may still come; no more are read from the socket.
    if (this.waiting > INBOX_MAX && !this.ws.isPaused) this.ws.pause();
    // One op at a time, in arrival order: an `auth` is in force before the next frame runs, and an
    // `unsubscribe` always finds the `subscribe` before it. Only admission is serialized: a publish's
    // append and a subscription's backlog go on in the background, so a socket can still pipeline.
    // A refused frame takes its turn too, so its error follows the answers to the frames before it.
    const admitted = (this.inbox ?? Promise.resolve())
      .then(() => {
        if (op === undefined) {
          // A refused cookie waits for an `auth` frame, and a broken one is none; a refused `auth` frame is a refused
          // credential whatever the socket held.
          if (this.refusedCookie || isRefusedCredential(refusal)) return this.refuseCredential();
          throw refusal;
        }
        return this.dispatch(op);
      })
      .catch((error: unknown) => this.sendError(error, ref))
      .finally(() => {
        this.waiting -= weight;
        if (this.ws.isPaused && this.waiting <= INBOX_MAX / 2) this.ws.resume();
        // An idle socket holds no settled promise chain.
        if (this.inbox === admitted) this.inbox = undefined;
      });
    this.inbox = admitted;
  }

  private sendError(error: unknown, ref?: string): void {
    const herald = error instanceof HeraldError ? error : new HeraldError('internal');
    if (!(error instanceof HeraldError)) this.logger.error({ err: error }, 'websocket op failed');
    this.send({ op: 'error', ...(ref === undefined ? {} : { ref }), code: herald.code, message: herald.message });
  }

  private async dispatch(op: ClientOp): Promise<void> {
    if (this.closing) return;
    if (this.refusedCookie) {
      if (op.op !== 'auth') return this.refuseCredential();
      this.refusedCookie = false;
    }
    switch (op.op) {
      case 'ping':
        return this.send({ op: 'pong' });
      case 'auth':
        return this.authenticate(op.token);
      case 'subscribe':
        if (!(await this.credentialLive())) return;
        return this.subscribe(op.channel, op.after, op.ref, op.presence);
      case 'unsubscribe': {
        this.unsubscribe(op.channel);
        return this.send({ op: 'unsubscribed', channel: op.channel, ...(op.ref ? { ref: op.ref } : {}) });
      }
      case 'publish': {
        if (!(await this.credentialLive())) return;
        if ('ephemeral' in op) {
          await this.ctx.presence.publishEphemeral(this.principal, op.channel, op, this.gate);
          return this.send({ op: 'ack', ref: op.ref });
        }
        this.ctx.access.assertPublish(this.principal, op.channel);
        assertStorablePayload(this.ctx.config.limits.jsonDepth, op);
        const input = { channel: op.channel, data: op.data, ...(op.type ? { type: op.type } : {}), ...(op.meta ? { meta: op.meta } : {}), ...(op.id ? { id: op.id } : {}) };
        // Appends are queued for group commit in call order, so acks follow the order of the frames.
        this.ctx.log.publish([input], undefined, { via: 'ws', traceparent: op.traceparent }).then(
          (result) => this.send({ op: 'ack', ref: op.ref, seq: result.events[0]!.seq, id: result.events[0]!.id }),
          (error: unknown) => this.sendError(error, op.ref),
        );
        return;
      }
      case 'send':
        if (!(await this.credentialLive())) return;
        await this.ctx.presence.send(this.principal, this.client, op.channel, op.to, op.data, this.gate);
        return this.send({ op: 'ack', ref: op.ref });
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

  /** A credential refused: the socket closes with 1008, counted as the handshake's refusals are. */
  private refuseCredential(): void {
    countRefused('ws', 'unauthorized');
    this.close(CloseCodes.policyViolation, 'invalid credential');
  }

  private async authenticate(token: string): Promise<void> {
    try {
      this.principal = await this.ctx.auth.authenticate(token);
    } catch (error) {
      // The store could not be asked (a key's hash, a revocation): no verdict on the credential, so no 1008, which
      // a client takes as final; 1013 says to come back later.
      if (!isRefusedCredential(error)) return this.close(UNCHECKED_CLOSE.code, UNCHECKED_CLOSE.reason);
      return this.refuseCredential();
    }
    if (this.closing) return;
    clearTimeout(this.authTimer);
    this.watchCredential();
    this.keepOnlyCovered();
    this.send({ op: 'authenticated' });
  }

  /**
   * After a new `auth`, the socket holds only what the new credential grants. The old one stops being watched, so
   * a subscription kept past it outlived its revocation and expiry: a short-lived token's channels, kept by
   * re-authenticating with any other credential, were read for as long as the socket stayed open. A presence
   * membership made under another identity is ended too: the others were told the old `sub`.
   */
  private keepOnlyCovered(): void {
    for (const subscription of allSubscriptions(this.subscriptions)) {
      const { channel } = subscription;
      const member = this.clientId === undefined ? undefined : this.ctx.presence.registry.get(channel, this.clientId);
      const readable = this.ctx.access.mayRead(this.principal, channel);
      if (readable && (member === undefined || member.sub === this.principal?.id)) continue;
      this.unsubscribe(channel);
      this.send({ op: 'unsubscribed', channel });
    }
  }

  private async subscribe(channel: string, after: number | undefined, ref: string | undefined, presence?: { info?: unknown }): Promise<void> {
    this.ctx.access.assertRead(this.principal, channel);
    if (presence) this.ctx.presence.assertJoinable(this.principal, channel, presence.info, this.client, this.gate);
    const max = this.ctx.config.limits.channelsPerRequest;
    if (!findSubscription(this.subscriptions, channel) && subscriptionCount(this.subscriptions) >= max) {
      throw new HeraldError('bad_request', `At most ${max} subscriptions per socket.`);
    }
    // Subscribing again restarts the channel from the new position, and its presence.
    this.unsubscribe(channel);
    // The session is every subscription's sink (see event, gap, drained, failed): no closures per subscription.
    const subscription = new Subscription(this.ctx.log, channel, this, ref);
    this.subscriptions = withSubscription(this.subscriptions, subscription);
    let state: Awaited<ReturnType<Subscription['open']>>;
    try {
      state = await subscription.open(after);
    } catch (error) {
      // The log could not say where the channel stands: no subscription, rather than one that never replays.
      this.drop(subscription);
      throw error;
    }
    if (this.closing) subscription.stop();
    if (findSubscription(this.subscriptions, channel) !== subscription || this.closing) return;
    this.ctx.presence.listen(channel, subscription);
    let members: PresenceMember[] | undefined;
    if (presence) {
      try {
        members = this.ctx.presence.join(this.principal, channel, this.client, presence.info, this);
      } catch (error) {
        // The set filled up since the check above: no subscription either.
        this.unsubscribe(channel);
        throw error;
      }
    }
    this.send({
      op: 'subscribed',
      channel,
      ...(ref === undefined ? {} : { ref }),
      seq: state.head,
      epoch: state.epoch,
      ...(members ? { presence: { client: this.client, members } } : {}),
    });
    // Read failures reach the sink's `failed`; the next frame need not wait for the backlog.
    void subscription.replay();
  }
}

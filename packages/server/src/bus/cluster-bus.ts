import { randomUUID } from 'node:crypto';
import type { HeraldEvent } from '@herald/protocol';
import type { EventStore } from '../store/types.js';
import type { Bus, BusListener, BusSink, BusState, ListenerPosition, PeerView } from './types.js';
import type { BusTransport, TransportHandler } from './transport.js';
import { Fanout, groupByChannel } from './fanout.js';
import { LogFollower } from './log-follower.js';
import { decodeMessage, encodeMessage } from './message.js';
import { withTimeout } from './health.js';
import { LogBudget } from '../util/log-budget.js';

export interface ClusterBusOptions {
  /** The log: read while the link is down, after it returns, and to resolve hints. */
  store: EventStore;
  /** How often the log is polled while `down`; 1000 ms. */
  pollIntervalMs?: number;
  /** A publish resolves after this even if the transport has not answered; 1000 ms. */
  publishTimeoutMs?: number;
  /** `start` waits this long for the link before going on `down`; 5000 ms. */
  connectTimeoutMs?: number;
  /** Errors the bus recovers from (a lost publish, a failed poll); for the log. */
  onError?: (error: unknown) => void;
  /** Channels whose place the whole-log follower remembers, when its listeners give their positions; 10,000. */
  wholeLogChannels?: number;
  /**
   * The cluster's id (its shared store's): sent with every message, and a message carrying another is ignored, so two
   * clusters that share one Redis under one prefix cannot hand each other events (whose seqs would then hide their own).
   */
  cluster?: string;
}

/** The longest wait before a failed pass runs again. */
const MAX_RETRY_MS = 30_000;
/**
 * Errors that can come once a second or once a message for as long as a fault lasts (failed log passes while the store
 * is down too, another cluster's messages, announcements dropped past their bound): per kind, the first is reported
 * at once, then one a minute with the count of those left out.
 */
const REPEATED_ERRORS_PER_SECOND = 1 / 60;
/** Channels whose unannounced seqs a node remembers (a few dozen bytes each); past it the oldest are dropped, and logged. */
const MAX_OWED_CHANNELS = 100_000;
/** The most seqs a receiver reads from the log at once for one hint. */
const HINT_PAGE = 500;

/**
 * Passes over the log of one kind, one at a time: a call during a pass runs one more after it, and a pass that
 * failed runs again after `retryMs` (doubling while they keep failing), so what a failed read left unread is found
 * without waiting for a next call.
 */
class LogPasses {
  private running = false;
  private again = false;
  private failures = 0;
  private retry: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;

  constructor(
    private readonly pass: () => Promise<void>,
    private readonly onError: (error: unknown) => void,
    private readonly retryMs: number,
  ) {}

  run(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    this.pass()
      .then(
        () => false,
        (error: unknown) => {
          this.onError(error);
          return true;
        },
      )
      .then((failed) => {
        this.running = false;
        this.failures = failed ? this.failures + 1 : 0;
        if (this.again) {
          this.again = false;
          this.run();
        } else if (failed && !this.retry && !this.stopped) {
          this.retry = setTimeout(
            () => {
              this.retry = undefined;
              this.run();
            },
            Math.min(MAX_RETRY_MS, this.retryMs * 2 ** (this.failures - 1)),
          );
          this.retry.unref();
        }
      });
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retry);
  }
}

/**
 * The bus of a node in a cluster: local listeners are served directly, the
 * other nodes through a transport (Redis, PostgreSQL), and the log covers
 * for the transport whenever it may have missed something. See `Bus` for the
 * guarantees.
 *
 * Per-channel listeners and whole-log listeners are fed from separate topics
 * (the channel's own, and the all-topic every publish also goes to), so each
 * gets every message once even on a node that subscribes to both.
 */
export class ClusterBus implements Bus {
  state: BusState = 'down';
  /** Tells this node's own messages apart when the transport echoes them back. */
  readonly nodeId = randomUUID();
  /** Messages from other nodes that reached this one; for metrics, and for tests of interest routing. */
  messagesReceived = 0;
  /** Messages sent to the other nodes; for metrics. */
  messagesSent = 0;
  /** Messages from another cluster on the same topics, ignored; for tests and the log. */
  foreignMessages = 0;
  private readonly fanout: Fanout;
  private readonly perChannel: LogFollower;
  private readonly whole: LogFollower;
  private readonly stateListeners = new Set<(state: BusState) => void>();
  /** Per scope and channel: hints being resolved from the log, which later messages must queue behind to stay in order. */
  private readonly queues = new Map<string, Promise<void>>();
  private pollTimer: ReturnType<typeof setInterval> | undefined;
  /**
   * Passes for this node's channel listeners, and for its whole-log listeners, each at its own pace: a whole-log pass
   * visits every channel and asks its listeners where they stand, which must not hold up a subscriber's.
   */
  private readonly channelPasses: LogPasses;
  private readonly wholePasses: LogPasses;
  private closed = false;
  /**
   * Per channel, the seqs this node appended that the other nodes may not have heard of: published while its link was
   * down, or a send that failed. The others are not polling the log if their own links are up, so these are announced
   * as a hint once this node's link is up again.
   */
  private readonly owed = new Map<string, [number, number]>();
  private owedTimer: ReturnType<typeof setTimeout> | undefined;
  private paying = false;
  private readonly repeated = new LogBudget(REPEATED_ERRORS_PER_SECOND);
  /** Some other live node's link is down (its heartbeat says so): this one polls the log as if its own were. */
  private peersDown = false;
  private readonly pollIntervalMs: number;
  private readonly publishTimeoutMs: number;
  private readonly onError: (error: unknown) => void;
  private get sender(): { node: string; cluster?: string | undefined } {
    return { node: this.nodeId, cluster: this.options.cluster };
  }

  constructor(
    private readonly transport: BusTransport,
    private readonly options: ClusterBusOptions,
  ) {
    this.pollIntervalMs = options.pollIntervalMs ?? 1000;
    this.publishTimeoutMs = options.publishTimeoutMs ?? 1000;
    this.onError = options.onError ?? (() => {});
    this.channelPasses = new LogPasses(() => this.perChannel.catchUp(), (error) => this.reportRepeated('channel passes', error), this.pollIntervalMs);
    this.wholePasses = new LogPasses(() => this.whole.catchUp(), (error) => this.reportRepeated('whole-log passes', error), this.pollIntervalMs);
    this.perChannel = new LogFollower(options.store, 'channels', (channel, events) => this.fanout.emitChannel(channel, events));
    this.whole = new LogFollower(
      options.store,
      'all',
      (_channel, events) => this.fanout.emitAll(events),
      { available: () => this.fanout.allPositions.available(), of: (channel) => this.fanout.allPositions.of(channel) },
      options.wholeLogChannels,
    );
    this.fanout = new Fanout({
      channel: (channel, wanted) => (wanted ? this.follow(channel) : this.unfollow(channel)),
      all: (wanted) => (wanted ? this.followAll() : this.unfollowAll()),
    });
  }

  /** Connects the transport; resolves `up`, or `down` after the connect timeout with the log polled meanwhile. */
  async start(): Promise<void> {
    const handler: TransportHandler = {
      message: (topic, message) => this.receive(topic, message),
      state: (state) => this.setState(state),
      error: this.onError,
    };
    this.setPolling(true);
    await this.transport.start(handler, this.options.connectTimeoutMs ?? 5000);
  }

  async publish(events: readonly HeraldEvent[]): Promise<void> {
    const sends: Array<Promise<void>> = [];
    for (const [channel, list] of groupByChannel(events)) {
      this.deliver('channel', channel, list);
      this.deliver('all', channel, list);
      // While down nothing can be sent: the events are in the log, and announced to the others once the link is back.
      if (this.state === 'up') sends.push(this.send(channel, list));
      else this.owe(channel, list[0]!.seq, list.at(-1)!.seq);
    }
    await Promise.all(sends);
  }

  subscribe(channel: string, listener: BusListener): () => void {
    return this.fanout.subscribe(channel, listener);
  }

  join(channel: string, sink: BusSink): void {
    this.fanout.join(channel, sink);
  }

  leave(channel: string, sink: BusSink): void {
    this.fanout.leave(channel, sink);
  }

  subscribeAll(listener: BusListener, position?: ListenerPosition): () => void {
    return this.fanout.subscribeAll(listener, position);
  }

  onStateChange(listener: (state: BusState) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  listenerCount(channel: string): number {
    return this.fanout.listenerCount(channel);
  }

  observePeers({ peersDown, gone }: PeerView): void {
    if (this.closed) return;
    const ended = this.peersDown && !peersDown;
    this.peersDown = peersDown;
    this.setPolling(this.state === 'down' || peersDown);
    // A peer back up, or gone: one more read finds whatever it appended since the last poll and did not announce.
    if (ended || gone) this.poll();
  }

  /** Channels whose place the whole-log follower remembers now (for tests and diagnostics). */
  get followedChannels(): number {
    return this.whole.followedChannels;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.setPolling(false);
    clearTimeout(this.owedTimer);
    this.channelPasses.stop();
    this.wholePasses.stop();
    this.fanout.clear();
    this.stateListeners.clear();
    await this.transport.close();
  }

  private deliver(scope: 'channel' | 'all', channel: string, events: readonly HeraldEvent[]): void {
    (scope === 'channel' ? this.perChannel : this.whole).accept(channel, events);
  }

  private async send(channel: string, events: readonly HeraldEvent[]): Promise<void> {
    const [first, last] = [events[0]!.seq, events.at(-1)!.seq];
    let message = encodeMessage(this.sender, channel, events);
    if (Buffer.byteLength(message) > this.transport.maxMessageBytes) {
      // Too big for the wire: say which seqs are new and let the receivers read them from the log.
      message = encodeMessage(this.sender, channel, undefined, [first, last]);
    }
    await this.transmit(channel, message, first, last);
  }

  /** Sends one message; if it fails, its seqs are owed (and announced again later), since it may not have gone out. */
  private async transmit(channel: string, message: string, first: number, last: number): Promise<boolean> {
    this.messagesSent += 1;
    try {
      await withTimeout(this.transport.publish(channel, message), this.publishTimeoutMs, 'bus publish');
      return true;
    } catch (error) {
      this.onError(error);
      this.owe(channel, first, last);
      return false;
    }
  }

  private owe(channel: string, first: number, last: number): void {
    if (this.closed) return;
    const range = this.owed.get(channel);
    if (range) {
      range[0] = Math.min(range[0], first);
      range[1] = Math.max(range[1], last);
    } else {
      this.owed.set(channel, [first, last]);
      if (this.owed.size > MAX_OWED_CHANNELS) {
        const [oldest] = this.owed.keys();
        this.owed.delete(oldest!);
        this.reportRepeated(
          'owed',
          new Error(
            `bus: more than ${MAX_OWED_CHANNELS} channels to announce again; one left out (the other nodes read them from the store while this node's heartbeat says its link is down, or with each channel's next event)`,
          ),
        );
      }
    }
    if (this.state === 'up') this.payLater();
  }

  /** Announces every owed range as a hint, while the link is up; what fails stays owed and is tried again later. */
  private async payOwed(): Promise<void> {
    if (this.paying || this.closed) return;
    this.paying = true;
    try {
      while (this.owed.size > 0 && this.state === 'up' && !this.closed) {
        const [channel, [first, last]] = this.owed.entries().next().value as [string, [number, number]];
        this.owed.delete(channel);
        if (!(await this.transmit(channel, encodeMessage(this.sender, channel, undefined, [first, last]), first, last))) break;
      }
    } finally {
      this.paying = false;
    }
    if (this.owed.size > 0 && this.state === 'up') this.payLater();
  }

  private payLater(): void {
    if (this.owedTimer || this.closed || this.paying) return;
    this.owedTimer = setTimeout(() => {
      this.owedTimer = undefined;
      void this.payOwed();
    }, this.pollIntervalMs);
    this.owedTimer.unref();
  }

  private receive(scope: 'channel' | 'all', raw: string): void {
    const message = decodeMessage(raw);
    if (!message) {
      this.onError(new Error('ignored a malformed bus message'));
      return;
    }
    if (message.node === this.nodeId || this.closed) return;
    if (message.cluster !== undefined && this.options.cluster !== undefined && message.cluster !== this.options.cluster) {
      // The fix is the operator's, and every message would say it again.
      this.foreignMessages += 1;
      this.reportRepeated('foreign', new Error("ignored a bus message from another Herald cluster (another store) on this bus's topics: give each cluster its own ?prefix= in bus.url"));
      return;
    }
    this.messagesReceived += 1;
    const key = `${scope}:${message.channel}`;
    const queued = this.queues.get(key);
    if (!queued && message.events) {
      this.deliver(scope, message.channel, message.events);
      return;
    }
    const next = (queued ?? Promise.resolve())
      .then(async () => {
        if (!message.events) return this.readHint(scope, message.channel, message.hint!);
        if (!this.closed) this.deliver(scope, message.channel, message.events);
      })
      .catch(this.onError);
    this.queues.set(key, next);
    void next.finally(() => {
      if (this.queues.get(key) === next) this.queues.delete(key);
    });
  }

  /** Reports an error of a kind that repeats while its fault lasts, within `REPEATED_ERRORS_PER_SECOND`. */
  private reportRepeated(kind: string, error: unknown): void {
    const admitted = this.repeated.admit(kind);
    if (!admitted) return;
    if (admitted.unlogged === 0) return this.onError(error);
    const message = error instanceof Error ? error.message : String(error);
    this.onError(new Error(`${message} (and ${admitted.unlogged} more of these since the last line)`, { cause: error }));
  }

  /** A hint's events, read from the log a page at a time (a node down for long can owe many). */
  private async readHint(scope: 'channel' | 'all', channel: string, [first, last]: [number, number]): Promise<void> {
    for (let after = first - 1; after < last && !this.closed; ) {
      const page = await this.options.store.read(channel, after, Math.min(HINT_PAGE, last - after));
      if (this.closed) return;
      const events = page.events.filter((e) => e.seq <= last);
      if (events.length === 0) return;
      this.deliver(scope, channel, events);
      after = events.at(-1)!.seq;
    }
  }

  private follow(channel: string): void {
    const ready = Promise.all([this.perChannel.track(channel), this.transport.subscribe({ channel })]);
    // Whatever was appended between the listener's arrival and the subscription taking effect.
    ready.then(() => this.perChannel.catchUp([channel])).catch(this.onError);
  }

  private unfollow(channel: string): void {
    this.perChannel.untrack(channel);
    this.transport.unsubscribe({ channel });
  }

  private followAll(): void {
    const ready = Promise.all([this.whole.start(), this.transport.subscribe('all')]);
    ready.then(() => this.wholePasses.run()).catch(this.onError);
  }

  private unfollowAll(): void {
    this.whole.stop();
    this.transport.unsubscribe('all');
  }

  private setState(state: BusState): void {
    if (state === this.state || this.closed) return;
    this.state = state;
    this.setPolling(state === 'down' || this.peersDown);
    // Back up and resubscribed: one read of the log picks up whatever was published while down, and what this node
    // published meanwhile is announced to the others.
    if (state === 'up') {
      this.poll();
      void this.payOwed();
    }
    for (const listener of this.stateListeners) listener(state);
  }

  private setPolling(on: boolean): void {
    if (on && !this.pollTimer && !this.closed) {
      this.pollTimer = setInterval(() => this.poll(), this.pollIntervalMs);
      this.pollTimer.unref();
    } else if (!on && this.pollTimer) {
      clearInterval(this.pollTimer);
      this.pollTimer = undefined;
    }
  }

  /** One pass over the log for every listener here; a call during a pass runs another after it. */
  private poll(): void {
    this.channelPasses.run();
    if (this.fanout.hasAll) this.wholePasses.run();
  }
}

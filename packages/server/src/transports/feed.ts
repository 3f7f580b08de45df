import type { GapInfo, HeraldEvent } from '@herald/protocol';
import type { EventLog } from '../log/event-log.js';
import type { ChannelState } from '../store/types.js';
import type { BusSink } from '../bus/types.js';
import { countSubscription } from '../metrics/index.js';
import type { ReplayReservation } from './replay-budget.js';

/**
 * Where a feed's output goes. Each call also names the feed, so one object
 * (a WebSocket session) can be the sink of all its subscriptions without a
 * closure per subscription.
 */
export interface FeedSink {
  /** Called for every event exactly once, in seq order. */
  event(event: HeraldEvent, feed: ChannelFeed): void;
  gap(gap: GapInfo, feed: ChannelFeed): void;
  /** While replaying a backlog, the feed waits on this before reading the next page. */
  drained?(feed: ChannelFeed): Promise<void> | undefined;
  /**
   * Room for the next replay page of `bytes` in the node's replay budget (replay-budget.ts; `continuing`: not the
   * replay's first page): the feed reads the page once it is ready and calls `done` once the page is handed over.
   * Undefined: no budget (or the sink is closing).
   */
  reserveReplay?(bytes: number, continuing: boolean, feed: ChannelFeed): ReplayReservation | undefined;
  /** The log could not be read; the sink should end the subscription. */
  failed(error: unknown, feed: ChannelFeed): void;
}

const PAGE_SIZE = 500;
/**
 * Bytes of events (data and meta) read per replay page: the next page is read only once the sink has drained this
 * one, so this, not PAGE_SIZE times the largest event, bounds what a replay holds beyond the socket's buffer.
 */
const PAGE_BYTES = 1024 * 1024;
/** Reads in a row that find a hole in the log (see catchUp), and the pause before each. */
const MAX_HOLE_READS = 50;
const HOLE_RETRY_MS = 20;
/** Live events held while a backlog replays; past this they are dropped and re-read from the log. */
const MAX_PENDING = 1000;

/**
 * One subscriber's view of one channel: the backlog after its position from
 * the log, then live events from the bus, with no gap and no duplicate at
 * the seam. The bus only says "there is news"; whenever its events do not
 * follow on from the position, the feed reads the log to fill the hole.
 * Every push transport (SSE, WebSocket) uses this.
 */
export class ChannelFeed<Sink extends FeedSink = FeedSink> implements BusSink {
  /** The seq of the last event handed to the sink (or skipped past by a gap). */
  position = 0;
  epoch = '';
  /** Live events held while catching up; undefined when none, so an idle feed holds no array. */
  private pending: HeraldEvent[] | undefined;
  private overflowed = false;
  private catchingUp = true;
  private stopped = false;
  /** The replay page's reservation while it waits for room: withdrawn if the feed stops. */
  private waitingFor: ReplayReservation | undefined;

  constructor(
    private readonly log: EventLog,
    readonly channel: string,
    protected readonly sink: Sink,
  ) {
    // Listen before reading anything, so no append can fall between the read and the live stream. The feed is
    // its own bus sink: an idle subscriber holds no closures for it.
    log.bus.join(channel, this);
    countSubscription(1);
  }

  /**
   * Sets the starting position: `after`, or the channel's head when undefined
   * (live only). Live events are held until `replay()`.
   */
  async open(after: number | undefined): Promise<ChannelState> {
    const state = await this.log.store.head(this.channel);
    this.epoch = state.epoch;
    this.position = after ?? state.head;
    return state;
  }

  /** Sends the backlog, then switches to live delivery. */
  replay(): Promise<void> {
    return this.catchUp();
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    countSubscription(-1);
    this.log.bus.leave(this.channel, this);
    this.pending = undefined;
    this.waitingFor?.done();
  }

  /** BusSink: live events of the channel. */
  onEvents(events: readonly HeraldEvent[]): void {
    if (this.stopped) return;
    if (this.catchingUp) {
      if ((this.pending?.length ?? 0) + events.length > MAX_PENDING) {
        this.pending = undefined;
        this.overflowed = true;
      } else {
        if (this.pending) this.pending.push(...events);
        else this.pending = events.slice();
      }
      return;
    }
    if (!this.deliverInOrder(events)) void this.catchUp();
  }

  /** Delivers what follows on from the position; false when there is a hole to fill from the log. */
  private deliverInOrder(events: readonly HeraldEvent[]): boolean {
    for (const event of events) {
      if (this.stopped) return true;
      if (event.seq <= this.position) continue;
      if (event.seq !== this.position + 1) return false;
      this.position = event.seq;
      this.sink.event(event, this);
    }
    return true;
  }

  private async catchUp(): Promise<void> {
    this.catchingUp = true;
    let holes = 0;
    let continuing = false;
    try {
      while (!this.stopped) {
        const read = await this.replayPage(continuing);
        continuing = true;
        if (read === 'stopped') return;
        if (read.hole !== undefined) {
          // A page that does not follow on from the position: a read that raced a trim and refill, read again. Not
          // at once and not forever: a store that keeps showing a hole it does not report as trimmed fails the feed
          // rather than spin the event loop (its reads can resolve without ever yielding to I/O).
          if (++holes > MAX_HOLE_READS) throw new Error(`The log of ${this.channel} skips from ${this.position} to ${read.hole}.`);
          await new Promise((resolve) => setTimeout(resolve, HOLE_RETRY_MS));
          continue;
        }
        holes = 0;
        const waiting = this.sink.drained?.(this);
        if (waiting) await waiting;
        if (read.more) continue;
        const held = this.pending ?? [];
        this.pending = undefined;
        if (this.overflowed) {
          this.overflowed = false;
          continue;
        }
        if (this.deliverInOrder(held)) return;
      }
    } catch (error) {
      if (!this.stopped) this.sink.failed(error, this);
    } finally {
      this.catchingUp = false;
    }
  }

  /**
   * Reads the page after the position, within the sink's replay budget, and hands it over. Its own function, so the
   * page's events (and the frames cached on them) are not kept alive while the replay then waits for the socket: a
   * page held through that wait doubled what each stalled replay held.
   *
   * `hole`: the seq the page skipped to, when it did not follow on from the position (nothing was handed over).
   * `more`: the log holds more than this page did (it was full, or cut short by PAGE_BYTES).
   */
  private async replayPage(continuing: boolean): Promise<'stopped' | { hole?: number | undefined; more: boolean }> {
    const reservation = this.sink.reserveReplay?.(PAGE_BYTES, continuing, this);
    if (reservation?.ready) {
      this.waitingFor = reservation;
      await reservation.ready;
      this.waitingFor = undefined;
    }
    try {
      if (this.stopped) return 'stopped';
      const page = await this.log.read(this.channel, this.position, PAGE_SIZE, PAGE_BYTES);
      if (this.stopped) return 'stopped';
      this.epoch = page.epoch;
      if (page.truncated) {
        const gap = { channel: this.channel, after: this.position, oldest: page.trimmed + 1 };
        // Past the gap before telling the sink, so a cursor it reads already skips the lost events.
        this.position = page.trimmed;
        this.sink.gap(gap, this);
      }
      if (!this.deliverInOrder(page.events)) return { hole: page.events[0]?.seq, more: true };
      return { more: page.events.length > 0 && this.position < page.head };
    } finally {
      // What the page queued is held against the budget until the socket has sent it.
      reservation?.done();
    }
  }
}

import type { HeraldEvent } from '@herald/protocol';
import type { Bus, BusSink } from '../../bus/types.js';

export interface Wait {
  /** Resolves with the first news (one channel's new events), or null on timeout, abort or shutdown. */
  news: Promise<readonly HeraldEvent[] | null>;
  /**
   * Nothing to answer yet: the request waits for `news`, counted against the node's bound on what parked polls hold.
   * False when it would pass the bound: the wait is cancelled, and the request is to be refused. `headerBytes`: what
   * the request's own line and headers hold (see {@link requestHeaderBytes}), counted with it.
   */
  park(headerBytes?: number): boolean;
  cancel(): void;
}

/**
 * What a parked long poll is counted as against `limits.parkedPollBytes`: about what one holds, measured on Node 20
 * (heap after a full GC, 2,000 parked polls, 8 pipelined per connection): 5.7 KB on one channel, 18.8 KB on 100, with
 * headers of a few hundred bytes. Its request line and headers past the first KiB come on top, in whole KiB, as the
 * client sent them (up to Node's 16 KiB): a client padding each poll's headers to 15 KB made each hold 19 KB, so polls
 * counted without them held 4× the bound.
 */
const PARKED_POLL_BYTES = 6 * 1024;
const PARKED_CHANNEL_BYTES = 128;
const HEADER_ALLOWANCE = 1024;

export function parkedPollCost(channels: number, headerBytes = 0): number {
  const headers = Math.ceil(Math.max(0, headerBytes - HEADER_ALLOWANCE) / 1024) * 1024;
  return PARKED_POLL_BYTES + channels * PARKED_CHANNEL_BYTES + headers;
}

/** What a request's line and headers hold, as Node keeps them (its URL and raw header strings). */
export function requestHeaderBytes(request: { url?: string | undefined; rawHeaders: readonly string[] }): number {
  let bytes = request.url?.length ?? 0;
  for (const part of request.rawHeaders) bytes += part.length;
  return bytes;
}

/**
 * One long poll's wait. It is itself the bus sink of each of its channels, so a wait on 100 channels holds 100 entries
 * in the bus's listener sets and nothing more per channel: with a closure and its contexts per channel (what
 * `bus.subscribe` returns), a parked 100-channel poll held 17 KB more.
 */
class Waiter implements Wait, BusSink {
  readonly news: Promise<readonly HeraldEvent[] | null>;
  private settle!: (news: readonly HeraldEvent[] | null) => void;
  private done = false;
  /** What this wait is counted as against the bound: 0 until it parks. */
  private counted = 0;
  private readonly timer: ReturnType<typeof setTimeout>;

  constructor(
    private readonly hub: LongPollHub,
    private readonly bus: Bus,
    private readonly channels: readonly string[],
    timeoutMs: number,
  ) {
    this.news = new Promise((resolve) => (this.settle = resolve));
    this.timer = setTimeout(this.cancel, timeoutMs);
    for (const channel of channels) bus.join(channel, this);
  }

  onEvents(events: readonly HeraldEvent[]): void {
    this.finish(events);
  }

  park(headerBytes = 0): boolean {
    // The news came while the log was read: answered at once, never parked.
    if (this.done) return true;
    const cost = parkedPollCost(this.channels.length, headerBytes);
    if (!this.hub.admit(cost)) {
      this.cancel();
      return false;
    }
    this.counted = cost;
    return true;
  }

  /** A bound function: it is the timer's callback, and what a closing request or a revoked credential calls. */
  readonly cancel = (): void => this.finish(null);

  private finish(value: readonly HeraldEvent[] | null): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    for (const channel of this.channels) this.bus.leave(channel, this);
    this.hub.ended(this, this.counted);
    this.settle(value);
  }
}

/**
 * Parks long-poll requests on the bus. A waiter is a bus sink and a timer, nothing more: no polling loop, and a few
 * hundred bytes each, so thousands can wait at once. How many may wait is bounded by what they hold together
 * (`limits.parkedPollBytes`), each counted by {@link parkedPollCost}, since that grows with its channels.
 */
export class LongPollHub {
  private readonly active = new Set<Waiter>();
  private parkedBytes = 0;

  constructor(
    private readonly bus: Bus,
    private readonly maxParkedBytes: number,
  ) {}

  /**
   * Call before reading the log, so no append can fall between the read and the wait; `channels` must be distinct
   * (each is joined once). Only `park()` counts the wait against the bound: a poll with something to answer at once
   * never parks.
   */
  wait(channels: readonly string[], timeoutMs: number): Wait {
    const waiter = new Waiter(this, this.bus, channels, timeoutMs);
    this.active.add(waiter);
    return waiter;
  }

  /** Requests waiting, parked or still reading the log. */
  get waiting(): number {
    return this.active.size;
  }

  /** What the parked polls are counted as, in bytes: what `limits.parkedPollBytes` bounds. */
  get parked(): number {
    return this.parkedBytes;
  }

  /** Answers every parked request now (with no events), for shutdown. */
  releaseAll(): void {
    for (const waiter of [...this.active]) waiter.cancel();
  }

  /** @internal A waiter counted as `bytes` would park: whether the bound leaves room for it (then it is counted). */
  admit(bytes: number): boolean {
    if (this.parkedBytes + bytes > this.maxParkedBytes) return false;
    this.parkedBytes += bytes;
    return true;
  }

  /** @internal */
  ended(waiter: Waiter, parkedBytes: number): void {
    this.active.delete(waiter);
    this.parkedBytes -= parkedBytes;
  }
}

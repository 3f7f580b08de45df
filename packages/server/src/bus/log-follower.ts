import type { HeraldEvent } from '@herald/protocol';
import type { EventStore } from '../store/types.js';

const PAGE = 500;
/** head() calls in flight at once during one pass. */
const CONCURRENCY = 16;
/** A tracked channel whose starting point is still being read. */
const PENDING = -1;
/** `all` scope with listener positions: channels whose marks stay in memory (see {@link ListenerPositions}). */
export const DEFAULT_MAX_FOLLOWED_CHANNELS = 10_000;

/**
 * Where whole-log listeners stand in each channel: the highest seq each has been handed and has taken in, the least
 * of them. With these the `all` scope keeps its per-channel marks as a bounded cache: a channel it has forgotten
 * starts again from the listeners' position, so memory does not grow with the number of channels ever written.
 */
export interface ListenerPositions {
  /** Whether every listener can say (one that cannot needs the marks kept). */
  available(): boolean;
  of(channel: string): Promise<number>;
}

/**
 * Reads the log on behalf of a set of listeners when the bus cannot be
 * trusted to have told them everything: while it is down, after it comes
 * back, and when a new subscription takes effect. Every delivery to those
 * listeners, from the wire or from the log, passes through `accept`, which
 * keeps each channel's seqs strictly increasing (no repeat when the log and
 * the wire both carry an event; a jump is a hole the listener reads) and
 * remembers where to read from next.
 *
 * `channels` scope follows channels that are `track`ed, from their head at
 * that moment. `all` scope follows every channel in the store: with
 * listener positions, each from where the listeners stand (marks of at most
 * `maxChannels` channels stay in memory, the least recently handed on
 * forgotten first); without, those that existed when `start` ran from their
 * head then, those created later from their first event.
 */
export class LogFollower {
  /** Per channel, the highest seq handed to the listeners. */
  private readonly delivered = new Map<string, number>();
  /** Per channel, where the next read of the log starts: at least `delivered`, or the head when following began. */
  private readonly from = new Map<string, number>();
  private started = false;
  /** Per channel, a fill from the log in progress, which later events wait behind. */
  private readonly filling = new Map<string, Promise<void>>();
  /** Bounded `all` scope: channels a catch-up is reading, never forgotten meanwhile (it needs their marks). */
  private readonly pins = new Map<string, number>();

  constructor(
    private readonly store: EventStore,
    private readonly scope: 'channels' | 'all',
    private readonly emit: (channel: string, events: readonly HeraldEvent[]) => void,
    private readonly positions?: ListenerPositions,
    private readonly maxChannels = DEFAULT_MAX_FOLLOWED_CHANNELS,
  ) {}

  /** `all` scope: whether a channel's marks may be forgotten and read back from the listeners' position. */
  private get bounded(): boolean {
    return this.scope === 'all' && this.positions !== undefined && this.positions.available();
  }

  /** How many channels' marks are in memory now (for tests and diagnostics). */
  get followedChannels(): number {
    return this.from.size;
  }

  /**
   * Hands the listeners what they have not had yet of `events`. When they
   * follow on from a hole (another node's append that has not arrived yet,
   * or arrives after this one), the hole is filled here with one read of the
   * log before anything is handed on, so the listeners get the channel in
   * order and none of them has to read the log itself: with a thousand
   * subscribers on a node, that is one read instead of a thousand. Later
   * events of the channel wait behind the fill.
   */
  accept(channel: string, events: readonly HeraldEvent[]): void {
    const filling = this.filling.get(channel);
    if (filling) {
      this.queueBehind(channel, filling.then(() => this.acceptNow(channel, events)));
      return;
    }
    if (this.started && !this.from.has(channel) && this.bounded) {
      // Forgotten (or never seen): where the listeners stand decides what is new, and whether there is a hole.
      this.queueBehind(channel, this.recall(channel).then(() => this.acceptNow(channel, events)));
      return;
    }
    const fill = this.acceptNow(channel, events);
    if (fill) this.queueBehind(channel, fill);
  }

  /** Reads a forgotten channel's mark back from the listeners' position. If they cannot say, the channel is treated as new. */
  private async recall(channel: string): Promise<void> {
    let position: number;
    try {
      position = await this.positions!.of(channel);
    } catch {
      return;
    }
    if (!this.started || this.from.has(channel)) return;
    this.mark(channel, position);
  }

  /** Delivers at once, or returns the fill it started. */
  private acceptNow(channel: string, events: readonly HeraldEvent[]): Promise<void> | undefined {
    const following = this.scope === 'channels' ? this.from.has(channel) : this.started;
    if (!following) {
      this.emit(channel, events);
      return undefined;
    }
    const last = this.delivered.get(channel) ?? 0;
    const fresh = events[0]!.seq > last ? events : events.filter((e) => e.seq > last);
    if (fresh.length === 0) return undefined;
    // Where the listeners stand: what was handed on, else the head when following began.
    const start = this.from.get(channel);
    const base = this.delivered.get(channel) ?? (start === undefined || start === PENDING ? undefined : start);
    if (base !== undefined && fresh[0]!.seq > base + 1) return this.fillThenAccept(channel, base, fresh);
    this.hand(channel, fresh);
    return undefined;
  }

  private hand(channel: string, fresh: readonly HeraldEvent[]): void {
    const top = fresh.at(-1)!.seq;
    if (this.bounded) this.mark(channel, top);
    else {
      this.delivered.set(channel, top);
      if (top > (this.from.get(channel) ?? 0)) this.from.set(channel, top);
    }
    this.emit(channel, fresh);
  }

  /**
   * Bounded `all` scope: the channel's marks move to `seq` at least and become the most recently used; past the bound
   * the least recently used are forgotten, except a channel with a fill or recall in progress (it sets marks when done).
   */
  private mark(channel: string, seq: number): void {
    const top = Math.max(seq, this.delivered.get(channel) ?? 0, this.from.get(channel) ?? 0);
    // Under the bound nothing is forgotten and the order does not matter yet: the live path skips the reordering.
    if (this.from.size >= this.maxChannels) {
      this.delivered.delete(channel);
      this.from.delete(channel);
    }
    this.delivered.set(channel, top);
    this.from.set(channel, top);
    this.forgetOverBound(channel);
  }

  /** Forgets the least recently used channels past the bound, but not `keep` nor one with work in progress. */
  private forgetOverBound(keep?: string): void {
    if (this.from.size <= this.maxChannels || !this.bounded) return;
    for (const name of this.from.keys()) {
      if (this.from.size <= this.maxChannels) break;
      if (name === keep || this.filling.has(name) || this.pins.has(name)) continue;
      this.from.delete(name);
      this.delivered.delete(name);
    }
  }

  private async fillThenAccept(channel: string, last: number, fresh: readonly HeraldEvent[]): Promise<void> {
    let filled: readonly HeraldEvent[] = [];
    try {
      const page = await this.store.read(channel, last, fresh[0]!.seq - 1 - last);
      filled = page.events.filter((e) => e.seq < fresh[0]!.seq);
    } catch {
      // The log cannot be read now: hand on what arrived; listeners see the hole and deal with it as before.
    }
    // Unfollowed while reading: nothing to hand on.
    if (this.scope === 'channels' ? !this.from.has(channel) : !this.started) return;
    const current = this.delivered.get(channel) ?? 0;
    const all = [...filled, ...fresh].filter((e) => e.seq > current);
    if (all.length > 0) this.hand(channel, all);
  }

  private queueBehind(channel: string, work: Promise<void>): void {
    const next = work.catch(() => {});
    this.filling.set(channel, next);
    void next.finally(() => {
      if (this.filling.get(channel) !== next) return;
      this.filling.delete(channel);
      // Kept while its work ran: forgotten now if the bound says so.
      this.forgetOverBound();
    });
  }

  /** `channels` scope: starts following a channel from its current head. */
  async track(channel: string): Promise<void> {
    if (this.from.has(channel)) return;
    this.from.set(channel, PENDING);
    await this.baseline(channel);
  }

  untrack(channel: string): void {
    this.from.delete(channel);
    this.delivered.delete(channel);
  }

  /** `all` scope: starts following every channel, from the listeners' position when they can say, else from its current head. */
  async start(): Promise<void> {
    this.started = true;
    if (this.bounded) return;
    await this.forEach(await this.store.channels(), (channel) => this.baseline(channel));
  }

  stop(): void {
    this.started = false;
    this.from.clear();
    this.delivered.clear();
  }

  /** One pass: delivers everything in the log after what was seen, for `channels` (the tracked ones by default). */
  async catchUp(channels?: Iterable<string>): Promise<void> {
    if (this.scope === 'all') {
      if (!this.started) return;
      channels ??= await this.store.channels();
    }
    await this.forEach(channels ?? [...this.from.keys()], (channel) => this.catchUpOne(channel));
  }

  private async baseline(channel: string): Promise<void> {
    const { head } = await this.store.head(channel);
    const current = this.from.get(channel);
    // Untracked meanwhile.
    if (this.scope === 'channels' && current === undefined) return;
    if (current === undefined || head > current) this.from.set(channel, head);
  }

  private async catchUpOne(channel: string): Promise<void> {
    if (!this.bounded) return this.catchUpFrom(channel);
    this.pins.set(channel, (this.pins.get(channel) ?? 0) + 1);
    try {
      await this.catchUpFrom(channel);
    } finally {
      const left = this.pins.get(channel)! - 1;
      if (left === 0) this.pins.delete(channel);
      else this.pins.set(channel, left);
      this.forgetOverBound();
    }
  }

  private async catchUpFrom(channel: string): Promise<void> {
    let after = this.from.get(channel);
    if (after === undefined && this.scope === 'all' && this.started && this.bounded) {
      // Forgotten, or never seen here: read on from where the listeners stand.
      if (!this.filling.has(channel)) this.queueBehind(channel, this.recall(channel));
      await this.filling.get(channel);
      after = this.from.get(channel);
      if (after === undefined) return;
    }
    if (after === undefined) {
      if (this.scope === 'channels') return;
      // A channel first seen now was created after `start`: all of it is news.
      after = 0;
      this.from.set(channel, 0);
    }
    if (after === PENDING) return this.baseline(channel);
    const { head } = await this.store.head(channel);
    while (head > after) {
      const page = await this.store.read(channel, after, PAGE);
      const last = page.events.at(-1)?.seq;
      // Untracked (or forgotten) while reading: nothing more to do.
      if (last === undefined || !this.from.has(channel)) return;
      this.accept(channel, page.events);
      if (last > this.from.get(channel)!) this.from.set(channel, last);
      after = last;
    }
  }

  private async forEach(channels: Iterable<string>, run: (channel: string) => Promise<void>): Promise<void> {
    const queue = [...channels];
    const worker = async () => {
      for (let channel = queue.pop(); channel !== undefined; channel = queue.pop()) await run(channel);
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, queue.length) }, worker));
  }
}

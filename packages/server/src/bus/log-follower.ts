import type { HeraldEvent } from '@herald/protocol';
import { channelPages, type EventStore } from '../store/types.js';
import { Counts } from '../util/counts.js';

const PAGE = 500;
/** head() calls in flight at once during one pass. */
const CONCURRENCY = 16;
/** A tracked channel whose starting point is still being read. */
const PENDING = -1;
/** `all` scope with listener positions: channels whose marks stay in memory (see {@link ListenerPositions}). */
export const DEFAULT_MAX_FOLLOWED_CHANNELS = 10_000;

/**
 * Where whole-log listeners stand in each channel: the highest seq each has been handed and has taken in (the least
 * of them, if several can say). With these the `all` scope keeps its per-channel marks as a bounded cache: a channel
 * it has forgotten starts again from the listeners' position, so memory does not grow with the number of channels
 * ever written.
 */
export interface ListenerPositions {
  /** Whether the listeners can say; asked once per `start`, which decides how that run of following keeps its marks. */
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
  /** `all` scope: whether this run of following (from `start` to `stop`) keeps its marks as a bounded cache. */
  private bounded = false;
  /** Counts `stop`s, so work begun before one cannot set marks after the next `start`. */
  private runs = 0;
  /** Per channel, a fill from the log in progress, which later events wait behind. */
  private readonly filling = new Map<string, Promise<void>>();
  /** Bounded `all` scope: channels a catch-up is reading, never forgotten meanwhile (it needs their marks). */
  private readonly pins = new Counts<string>();

  constructor(
    private readonly store: EventStore,
    private readonly scope: 'channels' | 'all',
    private readonly emit: (channel: string, events: readonly HeraldEvent[]) => void,
    private readonly positions?: ListenerPositions,
    private readonly maxChannels = DEFAULT_MAX_FOLLOWED_CHANNELS,
  ) {}

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

  /**
   * Reads a forgotten channel's marks back from the listeners' position; false if they could not say (the live path
   * then treats the channel as new: the listener sees any hole and reads the log itself).
   */
  private async recall(channel: string): Promise<boolean> {
    const run = this.runs;
    let position: number;
    try {
      position = await this.positions!.of(channel);
    } catch {
      return false;
    }
    if (run !== this.runs || !this.started) return false;
    if (!this.from.has(channel)) {
      this.delivered.set(channel, position);
      this.from.set(channel, position);
      this.forgetOverBound(channel);
    }
    return true;
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
    this.delivered.set(channel, top);
    // `from` can be ahead: a catch-up read further, and its pages wait behind a fill to be handed on.
    const from = Math.max(top, this.from.get(channel) ?? 0);
    // Bounded: the channel becomes the most recently used. Under the bound nothing is forgotten and the order does not
    // matter yet, so the live path skips the reordering.
    if (this.bounded && this.from.size >= this.maxChannels) this.from.delete(channel);
    this.from.set(channel, from);
    if (this.bounded) this.forgetOverBound(channel);
    this.emit(channel, fresh);
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
    this.bounded = this.positions?.available() ?? false;
    if (this.bounded) return;
    for await (const page of channelPages(this.store)) await this.forEach(page, (channel) => this.baseline(channel));
  }

  stop(): void {
    this.started = false;
    this.bounded = false;
    this.runs += 1;
    this.from.clear();
    this.delivered.clear();
  }

  /**
   * One pass: delivers everything in the log after what was seen, for `channels` (by default the tracked ones, or in
   * `all` scope every channel in the store, a page at a time). A channel that fails does not stop the pass; the pass
   * then throws its first failure.
   */
  async catchUp(channels?: Iterable<string>): Promise<void> {
    if (this.scope === 'all' && !this.started) return;
    if (channels === undefined && this.scope === 'all') {
      let failure: { error: unknown } | undefined;
      for await (const page of channelPages(this.store)) {
        if (!this.started) return;
        await this.forEach(page, (channel) => this.catchUpOne(channel)).catch((error: unknown) => (failure ??= { error }));
      }
      if (failure) throw failure.error;
      return;
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
    this.pins.add(channel);
    try {
      await this.catchUpFrom(channel);
    } finally {
      this.pins.release(channel);
      this.forgetOverBound();
    }
  }

  private async catchUpFrom(channel: string): Promise<void> {
    let after = this.from.get(channel);
    if (after === undefined && this.scope === 'all' && this.started && this.bounded) {
      // Forgotten, or never seen here: read on from where the listeners stand (the channel is pinned meanwhile).
      if (!this.filling.has(channel)) this.queueBehind(channel, this.recall(channel).then(() => undefined));
      await this.filling.get(channel);
      after = this.from.get(channel);
      if (after === undefined) {
        if (!this.started) return;
        // The pass fails (after the other channels), so the bus runs another.
        throw new Error(`the whole-log listeners could not say where they stand in ${channel}`);
      }
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

  /** Runs every channel, even when some fail; then throws the first failure. */
  private async forEach(channels: Iterable<string>, run: (channel: string) => Promise<void>): Promise<void> {
    const queue = [...channels];
    let failure: { error: unknown } | undefined;
    const worker = async () => {
      for (let channel = queue.pop(); channel !== undefined; channel = queue.pop()) {
        try {
          await run(channel);
        } catch (error) {
          failure ??= { error };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, queue.length) }, worker));
    if (failure) throw failure.error;
  }
}

import type { HeraldEvent } from '@herald/protocol';
import type { EventStore } from '../store/types.js';

const PAGE = 500;
/** head() calls in flight at once during one pass. */
const CONCURRENCY = 16;
/** A tracked channel whose starting point is still being read. */
const PENDING = -1;

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
 * that moment. `all` scope follows every channel in the store: those that
 * existed when `start` ran from their head then, those created later from
 * their first event.
 */
export class LogFollower {
  /** Per channel, the highest seq handed to the listeners. */
  private readonly delivered = new Map<string, number>();
  /** Per channel, where the next read of the log starts: at least `delivered`, or the head when following began. */
  private readonly from = new Map<string, number>();
  private started = false;

  constructor(
    private readonly store: EventStore,
    private readonly scope: 'channels' | 'all',
    private readonly emit: (channel: string, events: readonly HeraldEvent[]) => void,
  ) {}

  /** Hands the listeners what they have not had yet of `events`. */
  accept(channel: string, events: readonly HeraldEvent[]): void {
    const following = this.scope === 'channels' ? this.from.has(channel) : this.started;
    if (!following) {
      this.emit(channel, events);
      return;
    }
    const last = this.delivered.get(channel) ?? 0;
    const fresh = events[0]!.seq > last ? events : events.filter((e) => e.seq > last);
    if (fresh.length === 0) return;
    const top = fresh.at(-1)!.seq;
    this.delivered.set(channel, top);
    if (top > (this.from.get(channel) ?? 0)) this.from.set(channel, top);
    this.emit(channel, fresh);
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

  /** `all` scope: starts following every channel from its current head. */
  async start(): Promise<void> {
    this.started = true;
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
    let after = this.from.get(channel);
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
      // Untracked while reading: nothing more to do.
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

import type { HeraldEvent } from '@herald/protocol';
import type { BusListener, BusSink, ListenerPosition } from './types.js';

/** Splits a batch into per-channel runs, keeping each channel's order. */
export function groupByChannel(events: readonly HeraldEvent[]): Map<string, readonly HeraldEvent[]> {
  const first = events[0]?.channel;
  // The common case is one channel per publish; avoid grouping work for it.
  if (first !== undefined && events.every((e) => e.channel === first)) return new Map([[first, events]]);
  const byChannel = new Map<string, HeraldEvent[]>();
  for (const event of events) {
    const list = byChannel.get(event.channel);
    if (list) list.push(event);
    else byChannel.set(event.channel, [event]);
  }
  return byChannel;
}

/**
 * The listeners of one process, per channel and for every channel. Both the
 * in-process bus and the cluster bus hand events to listeners through this,
 * and the cluster bus uses its interest hooks to follow only the channels
 * that have listeners here.
 */
export class Fanout {
  private readonly listeners = new Map<string, Set<BusListener | BusSink>>();
  /** Whole-log listeners, each with its position if it gave one. */
  private readonly everything = new Map<BusListener, ListenerPosition | undefined>();

  constructor(
    private readonly interest: {
      /** A channel got its first listener, or lost its last. */
      channel?(channel: string, wanted: boolean): void;
      /** The first whole-log listener came, or the last went. */
      all?(wanted: boolean): void;
    } = {},
  ) {}

  emit(channel: string, events: readonly HeraldEvent[]): void {
    this.emitChannel(channel, events);
    this.emitAll(events);
  }

  /** To the channel's own listeners only. */
  emitChannel(channel: string, events: readonly HeraldEvent[]): void {
    const set = this.listeners.get(channel);
    if (!set) return;
    for (const listener of set) {
      if (typeof listener === 'function') listener(events);
      else listener.onEvents(events);
    }
  }

  /** To the whole-log listeners only. */
  emitAll(events: readonly HeraldEvent[]): void {
    for (const listener of this.everything.keys()) listener(events);
  }

  subscribe(channel: string, listener: BusListener): () => void {
    // A listener subscribed twice must still be removable twice, so a second subscription gets its own entry;
    // the first is the listener itself, which saves a closure per subscriber.
    const entry: BusListener = this.listeners.get(channel)?.has(listener) ? (events) => listener(events) : listener;
    this.join(channel, entry);
    let active = true;
    return () => {
      // Once only: the entry may be the listener itself, subscribed again since.
      if (!active) return;
      active = false;
      this.leave(channel, entry);
    };
  }

  join(channel: string, sink: BusListener | BusSink): void {
    let set = this.listeners.get(channel);
    if (!set) {
      set = new Set();
      this.listeners.set(channel, set);
      this.interest.channel?.(channel, true);
    }
    set.add(sink);
  }

  leave(channel: string, sink: BusListener | BusSink): void {
    const set = this.listeners.get(channel);
    if (!set?.delete(sink) || set.size > 0) return;
    this.listeners.delete(channel);
    this.interest.channel?.(channel, false);
  }

  subscribeAll(listener: BusListener, position?: ListenerPosition): () => void {
    const entry: BusListener = this.everything.has(listener) ? (events) => listener(events) : listener;
    this.everything.set(entry, position);
    if (this.everything.size === 1) this.interest.all?.(true);
    let active = true;
    return () => {
      if (!active) return;
      active = false;
      if (!this.everything.delete(entry)) return;
      if (this.everything.size === 0) this.interest.all?.(false);
    };
  }

  /** Channels with at least one listener of their own. */
  channels(): IterableIterator<string> {
    return this.listeners.keys();
  }

  get hasAll(): boolean {
    return this.everything.size > 0;
  }

  /**
   * The whole-log listeners' positions: available when each of them gave one; the least of those given (a listener
   * that came later without one starts where the others stand).
   */
  readonly allPositions = {
    available: (): boolean => this.everything.size > 0 && [...this.everything.values()].every((p) => p !== undefined),
    of: async (channel: string): Promise<number> => {
      const positions = [...this.everything.values()].filter((p) => p !== undefined);
      if (positions.length === 0) throw new Error('no whole-log listener gave its position');
      return Math.min(...(await Promise.all(positions.map((p) => p(channel)))));
    },
  };

  listenerCount(channel: string): number {
    return this.listeners.get(channel)?.size ?? 0;
  }

  clear(): void {
    this.listeners.clear();
    this.everything.clear();
  }
}

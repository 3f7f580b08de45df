import type { HeraldEvent } from '@herald/protocol';
import type { Bus, BusListener } from './types.js';

/** The single-process bus: listeners are called synchronously, in subscription order. */
export class LocalBus implements Bus {
  private readonly listeners = new Map<string, Set<BusListener>>();
  private readonly everything = new Set<BusListener>();

  async publish(events: readonly HeraldEvent[]): Promise<void> {
    if (events.length === 0) return;
    const first = events[0]!.channel;
    // The common case is one channel per publish; avoid grouping work for it.
    if (events.every((e) => e.channel === first)) {
      this.emit(first, events);
      return;
    }
    const byChannel = new Map<string, HeraldEvent[]>();
    for (const event of events) {
      const list = byChannel.get(event.channel);
      if (list) list.push(event);
      else byChannel.set(event.channel, [event]);
    }
    for (const [channel, list] of byChannel) this.emit(channel, list);
  }

  private emit(channel: string, events: readonly HeraldEvent[]): void {
    const set = this.listeners.get(channel);
    if (set) for (const listener of set) listener(events);
    for (const listener of this.everything) listener(events);
  }

  subscribeAll(listener: BusListener): () => void {
    this.everything.add(listener);
    return () => this.everything.delete(listener);
  }

  subscribe(channel: string, listener: BusListener): () => void {
    let set = this.listeners.get(channel);
    if (!set) {
      set = new Set();
      this.listeners.set(channel, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.listeners.get(channel) === set) this.listeners.delete(channel);
    };
  }

  /** How many listeners a channel has; for tests and metrics. */
  listenerCount(channel: string): number {
    return this.listeners.get(channel)?.size ?? 0;
  }

  async close(): Promise<void> {
    this.listeners.clear();
    this.everything.clear();
  }
}

import type { HeraldEvent } from '@herald/protocol';
import type { Bus, BusListener, BusSink, BusState } from './types.js';
import { Fanout, groupByChannel } from './fanout.js';

/** The single-process bus: listeners are called synchronously, in subscription order. Always `up`. */
export class LocalBus implements Bus {
  readonly state: BusState = 'up';
  private readonly fanout = new Fanout();

  async publish(events: readonly HeraldEvent[]): Promise<void> {
    for (const [channel, list] of groupByChannel(events)) this.fanout.emit(channel, list);
  }

  /** Nothing is ever missed in one process, so the listener's position is never needed. */
  subscribeAll(listener: BusListener): () => void {
    return this.fanout.subscribeAll(listener);
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

  onStateChange(): () => void {
    return () => {};
  }

  /** One process: no other node can have appended. */
  observePeers(): void {}

  /** How many listeners a channel has; for tests and metrics. */
  listenerCount(channel: string): number {
    return this.fanout.listenerCount(channel);
  }

  async close(): Promise<void> {
    this.fanout.clear();
  }
}

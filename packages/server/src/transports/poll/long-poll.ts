import type { HeraldEvent } from '@herald/protocol';
import type { Bus } from '../../bus/types.js';

export interface Wait {
  /** Resolves with the first news (one channel's new events), or null on timeout, abort or shutdown. */
  news: Promise<readonly HeraldEvent[] | null>;
  cancel(): void;
}

/**
 * Parks long-poll requests on the bus. A waiter is a bus listener and a
 * timer, nothing more: no polling loop, and a few hundred bytes each, so
 * thousands can wait at once.
 */
export class LongPollHub {
  private readonly active = new Set<() => void>();

  constructor(private readonly bus: Bus) {}

  /** Call before reading the log, so no append can fall between the read and the wait. */
  wait(channels: readonly string[], timeoutMs: number): Wait {
    let settle!: (news: readonly HeraldEvent[] | null) => void;
    const news = new Promise<readonly HeraldEvent[] | null>((resolve) => (settle = resolve));
    let done = false;
    const unsubscribes: Array<() => void> = [];
    const finish = (value: readonly HeraldEvent[] | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      for (const off of unsubscribes) off();
      this.active.delete(cancel);
      settle(value);
    };
    const cancel = () => finish(null);
    const timer = setTimeout(cancel, timeoutMs);
    for (const channel of channels) unsubscribes.push(this.bus.subscribe(channel, finish));
    this.active.add(cancel);
    return { news, cancel };
  }

  get waiting(): number {
    return this.active.size;
  }

  /** Answers every parked request now (with no events), for shutdown. */
  releaseAll(): void {
    for (const cancel of [...this.active]) cancel();
  }
}

import type { HeraldEvent } from '@herald/protocol';

/** Called with one channel's newly appended events, in seq order. */
export type BusListener = (events: readonly HeraldEvent[]) => void;

/**
 * Live notification of appends. The log is the source of truth; the bus
 * only says "there is news", so a listener that sees a hole in the seqs
 * reads the log to fill it. Async so a Redis pub/sub bus can implement it.
 */
export interface Bus {
  /** Announces events that are already durable in the log. */
  publish(events: readonly HeraldEvent[]): Promise<void>;
  /** Returns the function that stops the subscription. */
  subscribe(channel: string, listener: BusListener): () => void;
  /** Every channel's appends; for consumers of the whole log, such as outbound delivery. */
  subscribeAll(listener: BusListener): () => void;
  close(): Promise<void>;
}

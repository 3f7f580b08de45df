import type { BusState } from './types.js';

/** What a transport subscribes to: one Herald channel's topic, or the topic every publish also goes to. */
export type Topic = { channel: string } | 'all';

export interface TransportHandler {
  /** A message that arrived on `topic`, exactly as some node passed it to `publish`. */
  message(topic: 'all' | 'channel', message: string): void;
  /**
   * `up` only once every wanted topic is subscribed again (so a read of the log
   * made after it misses nothing); `down` as soon as the link is known lost.
   */
  state(state: BusState): void;
  /** Errors the transport recovers from itself; for the log. */
  error(error: unknown): void;
}

/**
 * The wire between nodes, under `ClusterBus`: topics and strings, no events.
 * It keeps the set of wanted topics itself so it can resubscribe after a
 * reconnect, and reconnects on its own.
 */
export interface BusTransport {
  /** Largest message, in UTF-8 bytes, it carries; the cluster bus sends a bigger batch as a hint. */
  readonly maxMessageBytes: number;
  /** Connects and subscribes; resolves once `up`, or after `timeoutMs` still `down` (and still retrying). */
  start(handler: TransportHandler, timeoutMs: number): Promise<void>;
  /**
   * Resolves once the subscription is in effect on the server, or at once
   * while `down` (it is made on reconnect). Never rejects.
   */
  subscribe(topic: Topic): Promise<void>;
  unsubscribe(topic: Topic): void;
  /** Sends `message` to the channel's topic and to the all-topic. */
  publish(channel: string, message: string): Promise<void>;
  /** Sends `message` to that one topic: messages outside the log (presence, ephemeral publishes), which the all-topic's whole-log consumers must not see. */
  send(topic: Topic, message: string): Promise<void>;
  close(): Promise<void>;
}

import type { HeraldEvent } from '@herald/protocol';

/** Called with one channel's newly appended events, in seq order. */
export type BusListener = (events: readonly HeraldEvent[]) => void;

/**
 * A whole-log listener's position in a channel: the highest seq it has been handed and has taken in (work it queued
 * for earlier events done). A networked bus that is told it keeps what it remembers of each channel for the
 * listener as a bounded cache, and reads a channel it has forgotten on from there.
 */
export type ListenerPosition = (channel: string) => Promise<number>;

/**
 * A listener that is an object (a subscriber's feed): it joins and leaves a channel with no closure of its own,
 * which matters when every idle connection holds one.
 */
export interface BusSink {
  onEvents(events: readonly HeraldEvent[]): void;
}

/** `down`: the link to the other nodes is lost and listeners are being served from the log instead. */
export type BusState = 'up' | 'down';

/** What the cluster's heartbeats (in the shared store) say of the other nodes; see `Bus.observePeers`. */
export interface PeerView {
  /** Some live node's own link to the bus is `down`: what it appends, it cannot announce. */
  peersDown: boolean;
  /** Some node stopped beating (it died, or stopped) since the last view: it may have appended and not announced. */
  gone: boolean;
}

/**
 * Live notification of appends. The log is the source of truth; the bus
 * only says "there is news", so a listener that sees a hole in the seqs
 * reads the log to fill it. Async so a networked bus can implement it.
 *
 * What every implementation guarantees (and `bus.conformance.ts` checks):
 *
 * - **Grouping.** A listener is called with one channel's events at a time,
 *   in seq order within the call: one call per channel per published batch
 *   (what is read from the log, below, comes in pages instead).
 * - **Ordering.** The batches one node publishes on one channel reach every
 *   listener in the order they were published. Between nodes the wire has no
 *   order (node A's seq 5 may arrive after node B's seq 6), so a networked bus
 *   restores it: a batch that does not follow on from what its listeners had
 *   waits while the hole before it is read from the log, once per node, and
 *   then both go out in seq order. A listener that still sees seqs jump (the
 *   log could not be read) reads the log itself, as `ChannelFeed` and the
 *   dispatcher do.
 * - **At most once from the wire.** A message lost with a connection is not
 *   resent by the bus. A networked bus makes up for that from the log: while
 *   `down` it polls the log of every channel that has a local listener (about
 *   once a second) and delivers what it finds, and when the link comes back it
 *   resubscribes, turns `up` and reads the log once more, so an append made
 *   during the outage still reaches the listeners, seconds late. A new
 *   subscription that takes a moment to reach the server is covered the same
 *   way: once it is in effect, the log is read from the channel's head at
 *   `subscribe`. The other nodes may be `up` while one is `down` (only its
 *   own link failed), and then they are not polling: so what a node published
 *   while `down`, and every send of its own that failed or timed out, it
 *   announces again once its link is back, as a hint the others read from
 *   the log.
 * - **Interest.** A node receives a channel's traffic only while it has a
 *   listener for it; `subscribeAll` receives every channel's.
 * - **Publish never fails the caller for the link's sake.** It resolves
 *   (within about a second) even while `down`; the events are durable in the
 *   log already and other nodes find them there.
 * - **Local first.** Listeners on the publishing node are called before
 *   `publish` resolves, whatever the link's state, unless a hole before the
 *   batch is being filled from the log; then right after the fill.
 */
export interface Bus {
  /** Announces events that are already durable in the log. */
  publish(events: readonly HeraldEvent[]): Promise<void>;
  /** Returns the function that stops the subscription. */
  subscribe(channel: string, listener: BusListener): () => void;
  /** As `subscribe`, for a sink, until `leave`. A sink joins a given channel once. */
  join(channel: string, sink: BusSink): void;
  leave(channel: string, sink: BusSink): void;
  /**
   * Every channel's appends; for consumers of the whole log, such as outbound delivery. With `position`, what the
   * listener is handed after a link outage, or after its subscription takes effect, starts from its own position in
   * each channel (where it would otherwise start from the channel's head at `subscribeAll`), and a networked bus keeps
   * no state per channel ever written for it. The first whole-log listener's choice holds until the last one leaves.
   * Several that give positions share the least of them: one further ahead may be handed again events at or below its
   * own position, and must skip them (outbound delivery has one whole-log listener per node, the dispatcher).
   */
  subscribeAll(listener: BusListener, position?: ListenerPosition): () => void;
  /** Always `up` for the in-process bus. */
  readonly state: BusState;
  /** Called on every change of `state`; returns the function that stops it. */
  onStateChange(listener: (state: BusState) => void): () => void;
  /**
   * Told after each heartbeat what the store says of the other nodes. A networked bus polls the log for its listeners
   * while any live node's link is down (as it does while its own is), since that node's appends reach no one through
   * the wire, and reads it once more when that ends or when a node stops beating (it may have died between its commit
   * and its announcement). The in-process bus has no other nodes and ignores it.
   */
  observePeers(view: PeerView): void;
  close(): Promise<void>;
}

import type { EventLog } from '../../log/event-log.js';
import type { EphemeralFrames } from '../../presence/frames.js';
import type { EphemeralListener, FrameSink } from '../../presence/service.js';
import { ChannelFeed, type FeedSink } from '../feed.js';

/** The socket a subscription belongs to: its feed's sink, and where the channel's ephemeral publishes go. */
export interface SubscriptionOwner extends FeedSink, FrameSink {}

/**
 * One subscription of a WebSocket: its feed, and the `ref` of the `subscribe` op (for the error of a failed
 * read). It is also the listener of the channel's ephemeral publishes, so a socket keeps no list of the
 * channels it listens to.
 */
export class Subscription extends ChannelFeed<SubscriptionOwner> implements EphemeralListener {
  constructor(
    log: EventLog,
    channel: string,
    owner: SubscriptionOwner,
    readonly ref: string | undefined,
  ) {
    super(log, channel, owner);
  }

  ephemeral(frames: EphemeralFrames): void {
    this.sink.sendFrame(frames.websocket);
  }
}

/**
 * A socket's subscriptions by channel. Most sockets hold one, and a Map with its table costs an idle socket
 * about 180 bytes: one subscription is held as itself, two or more in a Map. A socket holds at most
 * `limits.channelsPerRequest`.
 */
export type Subscriptions = Subscription | Map<string, Subscription> | undefined;

export function findSubscription(subs: Subscriptions, channel: string): Subscription | undefined {
  if (subs instanceof Map) return subs.get(channel);
  return subs?.channel === channel ? subs : undefined;
}

/** `subs` with `sub` in it, in place of any subscription to the same channel. */
export function withSubscription(subs: Subscriptions, sub: Subscription): Subscriptions {
  if (subs === undefined || (!(subs instanceof Map) && subs.channel === sub.channel)) return sub;
  if (subs instanceof Map) return subs.set(sub.channel, sub);
  return new Map([
    [subs.channel, subs],
    [sub.channel, sub],
  ]);
}

/** `subs` without the subscription to `channel`; a Map left with one goes back to being that one. */
export function withoutSubscription(subs: Subscriptions, channel: string): Subscriptions {
  if (!(subs instanceof Map)) return subs?.channel === channel ? undefined : subs;
  subs.delete(channel);
  if (subs.size > 1) return subs;
  return subs.values().next().value;
}

export function subscriptionCount(subs: Subscriptions): number {
  if (subs instanceof Map) return subs.size;
  return subs === undefined ? 0 : 1;
}

export function allSubscriptions(subs: Subscriptions): Subscription[] {
  if (subs instanceof Map) return [...subs.values()];
  return subs === undefined ? [] : [subs];
}

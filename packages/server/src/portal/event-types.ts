import { matchesAny } from '../auth/patterns.js';
import type { EventStore } from '../store/types.js';

/** How far one look at the log goes: the picker wants the usual types, not an audit of every event ever sent. */
export const SEEN_TYPES_LIMITS = { channels: 100, eventsPerChannel: 200, types: 200 } as const;

/**
 * The event types recently seen on the channels a session may use: the last
 * `eventsPerChannel` events of up to `channels` matching channels, sorted.
 * Bounded, so a tenant with many channels costs one small read per channel.
 */
export async function seenEventTypes(store: EventStore, patterns: readonly string[], limits = SEEN_TYPES_LIMITS): Promise<string[]> {
  if (patterns.length === 0) return [];
  const channels = (await store.channels()).filter((name) => matchesAny(patterns, name)).slice(0, limits.channels);
  const types = new Set<string>();
  for (const channel of channels) {
    const { head } = await store.head(channel);
    const { events } = await store.read(channel, Math.max(0, head - limits.eventsPerChannel), limits.eventsPerChannel);
    for (const event of events) {
      types.add(event.type);
      if (types.size >= limits.types) return [...types].sort();
    }
  }
  return [...types].sort();
}

import { matchesAny } from '../auth/patterns.js';
import { channelPages, type EventStore } from '../store/types.js';

/**
 * How far one look at the log goes: the picker wants the usual types, not an audit of every event ever sent.
 * `namesScanned`: channel names looked at to find the matching ones, so a session costs the same however many
 * channels the store holds.
 */
export interface SeenTypesLimits {
  channels: number;
  eventsPerChannel: number;
  types: number;
  namesScanned: number;
}

export const SEEN_TYPES_LIMITS: Readonly<SeenTypesLimits> = { channels: 100, eventsPerChannel: 200, types: 200, namesScanned: 10_000 };

/** Names read per query. */
const NAME_PAGE = 1000;

/** The text before each pattern's first `*`, without those another one already covers: where its channels can be. */
function literalPrefixes(patterns: readonly string[]): string[] {
  const prefixes = [...new Set(patterns.map((p) => p.split('*', 1)[0]!))].sort();
  return prefixes.filter((p, i) => !prefixes.slice(0, i).some((shorter) => p.startsWith(shorter)));
}

/** Up to `limits.channels` channels that match `patterns`, looking at no more than `limits.namesScanned` names. */
async function matchingChannels(store: EventStore, patterns: readonly string[], limits: Readonly<SeenTypesLimits>): Promise<string[]> {
  const found: string[] = [];
  let scanned = 0;
  for (const prefix of literalPrefixes(patterns)) {
    for await (const page of channelPages(store, Math.min(NAME_PAGE, limits.namesScanned), prefix)) {
      for (const name of page) {
        if (scanned++ >= limits.namesScanned) return found;
        if (matchesAny(patterns, name)) found.push(name);
        if (found.length >= limits.channels) return found;
      }
    }
  }
  return found;
}

/**
 * The event types recently seen on the channels a session may use: the last
 * `eventsPerChannel` events of up to `channels` matching channels, sorted.
 * Bounded, so a tenant with many channels costs one small read per channel.
 */
export async function seenEventTypes(store: EventStore, patterns: readonly string[], limits: Readonly<SeenTypesLimits> = SEEN_TYPES_LIMITS): Promise<string[]> {
  if (patterns.length === 0) return [];
  const channels = await matchingChannels(store, patterns, limits);
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

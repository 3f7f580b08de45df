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
  /**
   * Bytes of `data` and `meta` read in all, shared by the channels (each reads at least one event), so a look costs
   * about this much memory and parsing however large the events are: 200 events of a megabyte on each of 100
   * channels made one request load hundreds of megabytes, and a few at once exhaust the heap.
   */
  bytes: number;
}

export const SEEN_TYPES_LIMITS: Readonly<SeenTypesLimits> = { channels: 100, eventsPerChannel: 200, types: 200, namesScanned: 10_000, bytes: 1024 * 1024 };

/** An event's `data` and `meta` as they are stored (JSON), as the store's `maxBytes` counts them. */
const storedBytes = (event: { data: unknown; meta?: unknown }) =>
  Buffer.byteLength(JSON.stringify(event.data) ?? '') + (event.meta === undefined ? 0 : Buffer.byteLength(JSON.stringify(event.meta) ?? ''));

/** Names read per query. */
const NAME_PAGE = 1000;

/** The text before each pattern's first `*`, longest first: where each pattern's channels can be. */
function literalPrefixes(patterns: readonly string[]): string[] {
  return [...new Set(patterns.map((p) => p.split('*', 1)[0]!))].sort((a, b) => b.length - a.length);
}

/**
 * Up to `limits.channels` channels that match `patterns`. Each pattern's prefix gets its share of
 * `limits.namesScanned` names, so a broad pattern (`*:audit`) cannot use up the look of a narrow one (`acme:*`).
 */
async function matchingChannels(store: EventStore, patterns: readonly string[], limits: Readonly<SeenTypesLimits>): Promise<string[]> {
  const found = new Set<string>();
  const prefixes = literalPrefixes(patterns);
  const share = Math.max(1, Math.floor(limits.namesScanned / prefixes.length));
  for (const prefix of prefixes) {
    let scanned = 0;
    pages: for await (const page of channelPages(store, Math.min(NAME_PAGE, share), prefix)) {
      for (const name of page) {
        if (scanned++ >= share) break pages;
        if (matchesAny(patterns, name)) found.add(name);
        if (found.size >= limits.channels) return [...found];
      }
    }
  }
  return [...found];
}

/**
 * The event types recently seen on the channels a session may use: the last
 * `eventsPerChannel` events of up to `channels` matching channels, sorted.
 * Bounded, so a tenant with many channels costs a few small reads per channel,
 * and by `bytes`, so large events cost no more than small ones (the newest are read first).
 */
export async function seenEventTypes(store: EventStore, patterns: readonly string[], limits: Readonly<SeenTypesLimits> = SEEN_TYPES_LIMITS): Promise<string[]> {
  if (patterns.length === 0) return [];
  const channels = await matchingChannels(store, patterns, limits);
  const types = new Set<string>();
  const share = Math.max(1, Math.floor(limits.bytes / Math.max(1, channels.length)));
  let left = limits.bytes;
  for (const channel of channels) {
    if (left <= 0) break;
    const { head } = await store.head(channel);
    const oldest = Math.max(0, head - limits.eventsPerChannel);
    let budget = Math.min(share, left);
    // Newest first, in windows that double going back (1, 2, 4, … events): a read goes oldest first and stops at the
    // budget, so one read of the whole window would offer the types of 200 events ago and miss the latest ones.
    for (let to = head, size = 1; to > oldest && budget > 0; to -= size, size *= 2) {
      const from = Math.max(oldest, to - size);
      const { events } = await store.read(channel, from, to - from, budget);
      for (const event of events) {
        if (event.seq > to) break; // trimmed meanwhile: the read went on into a window already seen
        const bytes = storedBytes(event);
        budget -= bytes;
        left -= bytes;
        types.add(event.type);
        if (types.size >= limits.types) return [...types].sort();
      }
    }
  }
  return [...types].sort();
}

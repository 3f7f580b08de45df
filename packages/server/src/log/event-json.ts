import type { HeraldEvent } from '@herald/protocol';

/**
 * What is made once per event object and then sent many times: its JSON text and each transport's frame of it
 * (frames.ts). The bus hands the same object to every subscriber, so the object itself carries them, under a
 * symbol and not enumerable: JSON, spreads, copies and deep comparisons of the event never see or take them. Not
 * a WeakMap: an entry per event costs about a microsecond more (in its set, and in the garbage collector's
 * ephemeron passes), as much as serializing a small event.
 */
export interface EventWire {
  json?: string;
  wsFrame?: Buffer;
  /** SSE bytes by kind (frames.ts `sseEvent`), bare and as an HTTP/1.1 chunk. */
  sse?: Partial<Record<string, Buffer>>;
}

const WIRE = Symbol('herald.eventWire');
type Carrier = HeraldEvent & { [WIRE]?: EventWire };

/** An event, or a copy shown without its data and meta (a publish's answer to a caller who may not read them). */
export type ShownEvent = Omit<HeraldEvent, 'data' | 'meta'> & Partial<Pick<HeraldEvent, 'data' | 'meta'>>;

/** The record the event itself carries: its own property only, so an object made with the event as prototype has none. */
const carried = (event: ShownEvent): EventWire | undefined => (Object.hasOwn(event, WIRE) ? (event as Carrier)[WIRE] : undefined);

/**
 * The event's wire texts, made on first use: only for an event sent to many (a frame). A frozen event (none the
 * log makes) gets a fresh record each time.
 */
export function eventWire(event: HeraldEvent): EventWire {
  let wire = carried(event);
  if (wire === undefined) {
    wire = {};
    if (Object.isExtensible(event)) Object.defineProperty(event, WIRE, { value: wire });
  }
  return wire;
}

/** The event's JSON text, made once for every subscriber's frame (see eventWire). */
export function sharedEventJson(event: HeraldEvent): string {
  const wire = eventWire(event);
  return (wire.json ??= JSON.stringify(event));
}

/**
 * The event's JSON text for one sender (a publish's answer, a poll page, an outbound delivery): the one its
 * subscribers' frames were made from when there is one, else made and not kept, so an event nobody subscribes to
 * carries nothing. A copy (one shown without its data) never carries the original's.
 */
export function eventJson(event: ShownEvent): string {
  return carried(event)?.json ?? JSON.stringify(event);
}

/**
 * Events as a JSON array, each as {@link eventJson} writes it. When none carries a text, one JSON.stringify of the
 * whole list, which writes the same bytes: one call for a 100-event batch costs 0.39 µs per event, one per event
 * and a join 0.58 (bench:publish's batch, serialized alone).
 */
export function eventListJson(events: readonly ShownEvent[]): string {
  if (!events.some((event) => carried(event) !== undefined)) return JSON.stringify(events);
  return `[${events.map(eventJson).join(',')}]`;
}

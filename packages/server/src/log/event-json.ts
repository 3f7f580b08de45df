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

/**
 * The event's wire texts, made on first use: only for an event sent to many (a frame). A frozen event (none the
 * log makes) gets a fresh record each time.
 */
export function eventWire(event: HeraldEvent): EventWire {
  let wire = (event as Carrier)[WIRE];
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

/** The JSON text its subscribers' frames were made from, if the event has been sent to any. */
export function keptEventJson(event: HeraldEvent): string | undefined {
  return (event as Carrier)[WIRE]?.json;
}

/**
 * The event's JSON text for one sender (a poll page, an outbound delivery): the one its subscribers' frames were
 * made from when there is one, else made and not kept, so an event nobody subscribes to carries nothing.
 */
export function eventJson(event: HeraldEvent): string {
  return keptEventJson(event) ?? JSON.stringify(event);
}

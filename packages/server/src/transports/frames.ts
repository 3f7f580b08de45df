import type { HeraldEvent } from '@herald/protocol';

/**
 * Each event is serialized once per transport and the same bytes go to every
 * subscriber: the bus hands all of them the same event object, so a WeakMap
 * keyed by it is the cache, and it empties itself when the event is gone.
 */
function cached(build: (event: HeraldEvent) => Buffer): (event: HeraldEvent) => Buffer {
  const cache = new WeakMap<HeraldEvent, Buffer>();
  return (event) => {
    let frame = cache.get(event);
    if (!frame) {
      frame = build(event);
      cache.set(event, frame);
    }
    return frame;
  };
}

/** `data: <event JSON>` and the blank line that ends an SSE event. */
export const sseData = cached((event) => Buffer.from(`data: ${JSON.stringify(event)}\n\n`));

/** `id: <seq>` plus the data: the whole frame of a single-channel stream. */
export const sseSingleChannelFrame = cached((event) =>
  Buffer.concat([Buffer.from(`id: ${event.seq}\n`), sseData(event)]),
);

/** The WebSocket `event` op. */
export const wsEventFrame = cached((event) => Buffer.from(JSON.stringify({ op: 'event', ...event })));

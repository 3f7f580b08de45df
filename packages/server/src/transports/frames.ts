import type { HeraldEvent } from '@herald/protocol';
import { sharedEventJson, eventWire } from '../log/event-json.js';

/**
 * Each event is serialized once per transport and the same bytes go to every
 * subscriber: the bus hands all of them the same event object, which carries
 * its frames (log/event-json.ts). Other bytes sent to many (an ephemeral
 * broadcast, the ping) are cached in a WeakMap keyed by their payload, which
 * empties itself when the payload is gone. The bytes are what goes on the
 * wire, framing included: a server's WebSocket frames are never masked and an
 * SSE chunk's length does not depend on the reader, so nothing is left to do
 * per socket but write them.
 */
function cached<K extends object>(build: (key: K) => Buffer): (key: K) => Buffer {
  const cache = new WeakMap<K, Buffer>();
  return (key) => {
    let frame = cache.get(key);
    if (!frame) {
      frame = build(key);
      cache.set(key, frame);
    }
    return frame;
  };
}

/** The length of the header of an unmasked frame (RFC 6455 §5.2) carrying `length` bytes. */
const wsHeaderLength = (length: number) => (length < 126 ? 2 : length < 65_536 ? 4 : 10);

/** Writes the header of an unmasked, final text frame carrying `length` bytes at the start of `frame`. */
function writeWsHeader(frame: Buffer, length: number): void {
  frame[0] = 0x81;
  if (length < 126) {
    frame[1] = length;
  } else if (length < 65_536) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    frame.writeUInt32BE(length >>> 0, 6);
  }
}

/**
 * A whole WebSocket text message as a server sends it: header and UTF-8 payload in one buffer, allocated once
 * (a text is encoded straight into it, not into a buffer of its own that is then copied).
 */
export function wsTextFrame(text: string | Buffer): Buffer {
  const length = typeof text === 'string' ? Buffer.byteLength(text) : text.length;
  const header = wsHeaderLength(length);
  const frame = Buffer.allocUnsafe(header + length);
  writeWsHeader(frame, length);
  if (typeof text === 'string') frame.write(text, header);
  else text.copy(frame, header);
  return frame;
}

/** The wire frame of a payload that is sent to many sockets (an ephemeral broadcast), framed once. */
export const wsSharedFrame = cached<Buffer>(wsTextFrame);

/** The WebSocket `event` op, framed: the event's own JSON with `"op":"event"` first (no copy of the event to add it). */
export function wsEventFrame(event: HeraldEvent): Buffer {
  const wire = eventWire(event);
  return (wire.wsFrame ??= wsTextFrame(`{"op":"event",${sharedEventJson(event).slice(1)}`));
}

/** One HTTP/1.1 chunk (`<hex length>\r\n<bytes>\r\n`): how SSE bytes travel in a chunked response. */
export function httpChunk(bytes: string | Buffer): Buffer {
  const body = typeof bytes === 'string' ? Buffer.from(bytes) : bytes;
  return Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, CRLF]);
}
const CRLF = Buffer.from('\r\n');

/** SSE bytes that go to many streams (an event, an ephemeral broadcast, the ping), chunked once. */
export const sharedChunk = cached<Buffer>(httpChunk);

/**
 * An event's SSE bytes: `data` is `data: <event JSON>` and the blank line that ends an SSE event (a multi-channel
 * stream writes its own id before it); `single` adds `id: <seq>` first, the whole event of a single-channel stream.
 */
export type SseEventKind = 'data' | 'single';

/** The event's SSE bytes of that kind, bare or as one HTTP/1.1 chunk, made once for every stream. */
export function sseEvent(event: HeraldEvent, kind: SseEventKind, chunked: boolean): Buffer {
  const wire = eventWire(event);
  const made = (wire.sse ??= {});
  const key = chunked ? (kind === 'single' ? 'singleChunk' : 'dataChunk') : kind;
  let bytes = made[key];
  if (bytes === undefined) {
    bytes = chunked
      ? httpChunk(sseEvent(event, kind, false))
      : Buffer.from(`${kind === 'single' ? `id: ${event.seq}\n` : ''}data: ${sharedEventJson(event)}\n\n`);
    made[key] = bytes;
  }
  return bytes;
}

import { EVENT_ID_PATTERN, HeraldError, type ClientOp } from '@herald/protocol';

import { normalizeTraceparent } from '../../tracing/traceparent.js';
import { parseJsonText, refusePoisonedKeys } from '../../http/json-body.js';
import { frameChannel } from '../../http/channels.js';
import { isEphemeral, parseSend, presenceOf } from '../../presence/ops.js';

/** The longest token an `auth` frame may carry. */
const AUTH_TOKEN_MAX = 65_536;
const REF_MAX = 128;

function optionalString(value: unknown, name: string, max: number): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length === 0 || value.length > max) {
    throw new HeraldError('bad_request', `\`${name}\` must be a string of 1 to ${max} characters.`);
  }
  return value;
}

/** A client frame's JSON, parsed once: {@link clientOpOf} validates it, {@link refOfFrame} reads its `ref`. */
export function parseFrame(text: string): unknown {
  return parseJsonText(text, 'frame', () => 'Frames are JSON text.');
}

/**
 * The `ref` of a frame {@link clientOpOf} refused, so its error can still be matched to the request: present when
 * the frame is a JSON object with a string `ref` of 1 to 128 characters, whatever else is wrong with it.
 */
export function refOfFrame(frame: unknown): string | undefined {
  if (typeof frame !== 'object' || frame === null || Array.isArray(frame)) return undefined;
  const ref = (frame as Record<string, unknown>).ref;
  return typeof ref === 'string' && ref.length > 0 && ref.length <= REF_MAX ? ref : undefined;
}

/** Where the JSON string that opens at `start` (a quote) ends: the index of its closing quote, or -1. */
function stringEnd(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5c) i++;
    else if (c === 0x22) return i;
  }
  return -1;
}

const skipSpace = (text: string, i: number): number => {
  while (i < text.length && /\s/.test(text[i]!)) i++;
  return i;
};

/**
 * The `ref` of a frame refused before it was parsed (nested too deep): the string value of the top-level object's
 * `ref` key, read from the text, so the client can still match the refusal to its request (the SDK puts `ref` after
 * the data). Strings are skipped whole, and a `ref` inside the data is not the frame's. Linear in the text, and run
 * only on that refusal; written by hand, as JSON.parse is what the frame was refused to spare.
 */
export function refOfUnparsedFrame(text: string): string | undefined {
  let depth = 0;
  let keyNext = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      const end = stringEnd(text, i);
      if (end < 0) return undefined;
      if (depth === 1 && keyNext) {
        const colon = skipSpace(text, end + 1);
        if (text.charCodeAt(colon) !== 0x3a) return undefined;
        if (text.slice(i, end + 1) === '"ref"') {
          const value = skipSpace(text, colon + 1);
          if (text.charCodeAt(value) !== 0x22) return undefined;
          const valueEnd = stringEnd(text, value);
          if (valueEnd < 0 || valueEnd - value > 6 * REF_MAX) return undefined;
          try {
            return refOfFrame({ ref: JSON.parse(text.slice(value, valueEnd + 1)) as unknown });
          } catch {
            return undefined; // an escape JSON does not know (`\x`): no ref, and nothing thrown from the socket's handler
          }
        }
        keyNext = false;
        i = colon;
      } else {
        i = end;
      }
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth === 1) keyNext = c === 0x7b;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    } else if (c === 0x2c && depth === 1) {
      keyNext = true;
    }
  }
  return undefined;
}

/** Validates one client frame (`frame`, parsed from `text`); throws a HeraldError with a stable code for anything else. */
export function clientOpOf(frame: unknown, text: string): ClientOp {
  if (typeof frame !== 'object' || frame === null || Array.isArray(frame)) {
    throw new HeraldError('bad_request', 'A frame is a JSON object with an `op` field.');
  }
  refusePoisonedKeys(text, frame, 'frame');
  const f = frame as Record<string, unknown>;
  const ref = optionalString(f.ref, 'ref', REF_MAX);
  switch (f.op) {
    case 'auth': {
      // A token `POST /v1/tokens` mints may pass 35 KB (100 channel and 100 publish patterns of 128 characters); the
      // frame itself is bounded by ws.maxMessageBytes. An `auth` frame without a usable token is a refused credential
      // (`unauthorized`): the session closes the socket with 1008, as for a token that is not valid.
      const token = f.token;
      if (typeof token !== 'string' || token.length === 0 || token.length > AUTH_TOKEN_MAX) {
        throw new HeraldError('unauthorized', '`auth` needs a `token`: a non-empty string of at most 64 KiB.');
      }
      return { op: 'auth', token };
    }
    case 'subscribe': {
      const after = f.after;
      if (after !== undefined && !(Number.isSafeInteger(after) && (after as number) >= 0)) {
        throw new HeraldError('bad_request', '`after` must be a seq (an integer ≥ 0).');
      }
      const presence = presenceOf(f.presence);
      return { op: 'subscribe', channel: frameChannel(f), ...(after === undefined ? {} : { after: after as number }), ...(ref ? { ref } : {}), ...(presence ? { presence } : {}) };
    }
    case 'unsubscribe':
      return { op: 'unsubscribe', channel: frameChannel(f), ...(ref ? { ref } : {}) };
    case 'publish': {
      if (ref === undefined) throw new HeraldError('bad_request', '`publish` needs a `ref` to acknowledge.');
      if (!('data' in f)) throw new HeraldError('bad_request', '`publish` needs `data`.');
      const type = optionalString(f.type, 'type', 128);
      if (isEphemeral(f)) return { op: 'publish', channel: frameChannel(f), data: f.data, ref, ephemeral: true, ...(type ? { type } : {}) };
      const id = optionalString(f.id, 'id', 128);
      if (id !== undefined && !EVENT_ID_PATTERN.test(id)) throw new HeraldError('bad_request', '`id` must match [A-Za-z0-9_.:-]{1,128}.');
      // As an HTTP publish takes it: before, a frame's `meta` was acked and silently left out of the event.
      const meta = f.meta;
      if (meta !== undefined && (typeof meta !== 'object' || meta === null || Array.isArray(meta))) {
        throw new HeraldError('bad_request', '`meta` must be a JSON object.');
      }
      // W3C trace context: an invalid value is ignored, as the spec asks.
      const traceparent = normalizeTraceparent(f.traceparent);
      return {
        op: 'publish',
        channel: frameChannel(f),
        data: f.data,
        ref,
        ...(type ? { type } : {}),
        ...(meta ? { meta: meta as Record<string, unknown> } : {}),
        ...(id ? { id } : {}),
        ...(traceparent ? { traceparent } : {}),
      };
    }
    case 'send':
      return parseSend(f, ref);
    case 'ping':
      return { op: 'ping' };
    default:
      throw new HeraldError('bad_request', `Unknown op ${JSON.stringify(f.op)}.`);
  }
}

import { HeraldError } from './errors.js';
import { isValidChannel } from './events.js';

// Browser-safe base64url (no Buffer): the SDK encodes cursors too.
function toBase64Url(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64Url(text: string): string {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) throw new HeraldError('invalid_cursor');
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  return new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)));
}

/**
 * The multi-channel cursor: per-channel positions (the last seq seen), as
 * base64url JSON. Servers treat it as opaque input; the SDK builds it from the
 * positions it tracks. `v` lets a later format be told apart.
 */
export function encodeCursor(positions: ReadonlyMap<string, number>): string {
  return toBase64Url(JSON.stringify({ v: 1, p: Object.fromEntries(positions) }));
}

/**
 * Longest cursor accepted: 100 channels (the most one request may follow) with 128-character names and
 * 16-digit seqs come to about 20,000 characters. A longer one is refused before it is decoded.
 */
export const MAX_CURSOR_LENGTH = 32 * 1024;

export function decodeCursor(cursor: string | undefined): Map<string, number> {
  const positions = new Map<string, number>();
  if (cursor === undefined || cursor === '') return positions;
  if (cursor.length > MAX_CURSOR_LENGTH) throw new HeraldError('invalid_cursor', `A cursor is at most ${MAX_CURSOR_LENGTH} characters.`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(fromBase64Url(cursor));
  } catch {
    throw new HeraldError('invalid_cursor');
  }
  const p = (parsed as { p?: unknown } | null)?.p;
  if ((parsed as { v?: unknown } | null)?.v !== 1 || typeof p !== 'object' || p === null || Array.isArray(p)) {
    throw new HeraldError('invalid_cursor');
  }
  for (const [channel, seq] of Object.entries(p)) {
    // Names that were channels before `.` and `..` were refused: a cursor issued then still resumes its other channels.
    if (channel === '.' || channel === '..') continue;
    if (!isValidChannel(channel) || !Number.isSafeInteger(seq) || (seq as number) < 0) throw new HeraldError('invalid_cursor');
    positions.set(channel, seq as number);
  }
  return positions;
}

/**
 * The id of a multi-channel SSE stream (`/v1/stream?channel=a&channel=b`), version 2: `2.<fp>.<seq>.<seq>…`,
 * one seq per channel in the order of the URL's channel list, and `fp` a short fingerprint of that list so an
 * id is never applied to another list. Its length depends on the number of channels and the size of their
 * seqs, never on the channel names (which are in the URL already): 100 channels at seq 1,000,000 take about
 * 800 characters, where the v1 cursor took up to 20,000.
 */
export const STREAM_ID_VERSION = '2';

function channelListFingerprint(channels: readonly string[]): string {
  // FNV-1a, 32 bits: a guard against a mixed-up list, not a security measure.
  let hash = 0x811c9dc5;
  for (const channel of channels) {
    for (let i = 0; i < channel.length; i++) hash = Math.imul(hash ^ channel.charCodeAt(i), 0x01000193);
    hash = Math.imul(hash ^ 0x0a, 0x01000193);
  }
  return (hash >>> 0).toString(36);
}

/**
 * What every stream id of one channel list starts with: made once per stream, as the fingerprint walks every
 * channel name (up to 100 of 128 characters), which per event made a multi-channel stream cost 10× a single one.
 */
export const streamIdPrefix = (channels: readonly string[]): string => `${STREAM_ID_VERSION}.${channelListFingerprint(channels)}.`;

export function encodeStreamId(channels: readonly string[], seqs: readonly number[]): string {
  return `${streamIdPrefix(channels)}${seqs.join('.')}`;
}

/** Whether `id` is in the v2 stream-id form (the v1 cursor is base64url, which has no `.`). */
export const isStreamId = (id: string): boolean => id.startsWith(`${STREAM_ID_VERSION}.`);

/** The per-channel positions of a v2 stream id, in the order of `channels`; `invalid_cursor` if it is not one for this list. */
export function decodeStreamId(id: string, channels: readonly string[]): number[] {
  if (id.length > MAX_CURSOR_LENGTH) throw new HeraldError('invalid_cursor', `A cursor is at most ${MAX_CURSOR_LENGTH} characters.`);
  const [version, fingerprint, ...seqs] = id.split('.');
  if (version !== STREAM_ID_VERSION || seqs.length === 0 || !seqs.every((s) => /^\d{1,15}$/.test(s))) {
    throw new HeraldError('invalid_cursor');
  }
  if (fingerprint !== channelListFingerprint(channels) || seqs.length !== channels.length) {
    throw new HeraldError('invalid_cursor', 'This stream id was issued for another channel list: resume with the same ?channel= list, in the same order.');
  }
  return seqs.map(Number);
}

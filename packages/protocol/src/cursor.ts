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
    if (!isValidChannel(channel) || !Number.isSafeInteger(seq) || (seq as number) < 0) throw new HeraldError('invalid_cursor');
    positions.set(channel, seq as number);
  }
  return positions;
}

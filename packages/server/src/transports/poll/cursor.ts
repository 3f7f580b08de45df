import { HeraldError, isValidChannel } from '@herald/protocol';

/**
 * The multi-channel cursor: per-channel positions, base64url JSON. Opaque to
 * clients so its format can change; `v` lets a later server read old ones.
 */
export function encodeCursor(positions: ReadonlyMap<string, number>): string {
  return Buffer.from(JSON.stringify({ v: 1, p: Object.fromEntries(positions) })).toString('base64url');
}

export function decodeCursor(cursor: string | undefined): Map<string, number> {
  const positions = new Map<string, number>();
  if (cursor === undefined || cursor === '') return positions;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new HeraldError('invalid_cursor');
  }
  const p = (parsed as { v?: unknown; p?: unknown } | null)?.p;
  if ((parsed as { v?: unknown }).v !== 1 || typeof p !== 'object' || p === null || Array.isArray(p)) {
    throw new HeraldError('invalid_cursor');
  }
  for (const [channel, seq] of Object.entries(p)) {
    if (!isValidChannel(channel) || !Number.isSafeInteger(seq) || (seq as number) < 0) {
      throw new HeraldError('invalid_cursor');
    }
    positions.set(channel, seq as number);
  }
  return positions;
}

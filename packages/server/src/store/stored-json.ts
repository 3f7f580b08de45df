import { exceedsDepth } from '@herald/protocol';

/**
 * The deepest data a read hands on. Writes refuse anything past
 * `limits.jsonDepth` (at most 1000), but older versions stored whatever
 * they were sent, and a value thousands of levels deep parses fine yet
 * overflows the stack when serialized again (in a poll answer, an SSE
 * frame, a webhook payload), so one such event would break every read of
 * its channel.
 */
export const READ_DEPTH_MAX = 1000;

export interface StoredJson {
  value: unknown;
  /** Set when the stored value cannot be served; `value` is then null. */
  tooDeep: boolean;
}

/**
 * Parses a stored JSON column. Text shorter than twice the depth bound cannot
 * nest that deep (each level costs an opening and a closing bracket), so the
 * common small event skips the depth walk entirely.
 */
export function parseStoredJson(text: string): StoredJson {
  const value: unknown = JSON.parse(text);
  if (text.length > 2 * READ_DEPTH_MAX && exceedsDepth(value, READ_DEPTH_MAX)) return { value: null, tooDeep: true };
  return { value, tooDeep: false };
}

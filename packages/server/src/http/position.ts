import { HeraldError } from '@herald/protocol';

/**
 * The one resume position a request's query gives, under any of `names`, or undefined. Two of them, or one of them
 * twice, is 400 `invalid_cursor`: following one and ignoring the other would be a guess, and a wrong guess replays
 * or skips events without a word. (A query given twice arrives as an array: these routes have no schema for it.)
 */
export function queryPosition(query: unknown, names: readonly string[]): string | undefined {
  let given: { name: string; value: unknown } | undefined;
  for (const name of names) {
    const value = (query as Record<string, unknown>)[name];
    if (value === undefined) continue;
    if (given !== undefined || typeof value !== 'string') {
      throw new HeraldError('invalid_cursor', `Give the position once: one of ${names.map((n) => `?${n}=`).join(', ')}, not two, and not repeated.`);
    }
    given = { name, value };
  }
  return given?.value as string | undefined;
}

/**
 * A seq given as a resume position (`?after=`, `Last-Event-ID`): digits only, or nothing (undefined). Read by hand, not
 * by the schema's coercion, which took `0x10` as 16 and a space as 0: a position misread replays or skips events.
 */
export function parseSeq(token: string | undefined): number | undefined {
  if (token === undefined || token === '') return undefined;
  // At most 16 digits read, so the number is cheap to make; up to 2^53 - 1, as a WebSocket `after` or a cursor takes.
  const seq = /^\d{1,16}$/.test(token) ? Number(token) : NaN;
  if (!Number.isSafeInteger(seq)) {
    throw new HeraldError('invalid_cursor', `Cannot resume from ${JSON.stringify(token)}: expected a seq (an integer from 0 to 9007199254740991).`);
  }
  return seq;
}

/** The default deepest nesting of arrays and objects accepted in event data. */
export const DEFAULT_MAX_JSON_DEPTH = 64;

/**
 * True when `value` nests arrays/objects deeper than `max` (a scalar is depth
 * 0, `[]` and `{}` depth 1). Walks with an explicit stack, never recursion,
 * and stops at the first level past `max`, so a hostile value costs at most
 * one pass over what was already parsed and cannot overflow the call stack.
 */
export function exceedsDepth(value: unknown, max: number): boolean {
  return walk(value, max, false) === 'too_deep';
}

/**
 * What keeps parsed JSON `value` out of the log, found in the one walk {@link exceedsDepth} makes: nesting deeper
 * than `max`, or a number JSON cannot write. JSON.parse reads a number beyond ±1.8e308 (`1e400`) as Infinity, which
 * JSON.stringify writes as `null`: stored, the publisher's value would be replaced without a word.
 */
export function payloadFault(value: unknown, max: number): 'too_deep' | 'non_finite' | undefined {
  return walk(value, max, true);
}

function walk(value: unknown, max: number, numbers: boolean): 'too_deep' | 'non_finite' | undefined {
  if (typeof value !== 'object' || value === null) return numbers && typeof value === 'number' && !Number.isFinite(value) ? 'non_finite' : undefined;
  const stack: Array<{ value: object; depth: number }> = [{ value, depth: 1 }];
  while (stack.length > 0) {
    const top = stack.pop()!;
    if (top.depth > max) return 'too_deep';
    const children = Array.isArray(top.value) ? top.value : Object.values(top.value);
    for (const child of children) {
      if (typeof child === 'object' && child !== null) stack.push({ value: child, depth: top.depth + 1 });
      else if (numbers && typeof child === 'number' && !Number.isFinite(child)) return 'non_finite';
    }
  }
  return undefined;
}

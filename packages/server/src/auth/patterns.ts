const cache = new Map<string, RegExp>();

function compile(pattern: string): RegExp {
  let re = cache.get(pattern);
  if (!re) {
    const body = pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\-]/g, '\\$&')).join('.*');
    re = new RegExp(`^${body}$`);
    if (cache.size > 10_000) cache.clear();
    cache.set(pattern, re);
  }
  return re;
}

/** Channel patterns: `*` matches any run of characters, everything else is literal. */
export function matchesPattern(pattern: string, channel: string): boolean {
  if (!pattern.includes('*')) return pattern === channel;
  return compile(pattern).test(channel);
}

export function matchesAny(patterns: readonly string[], channel: string): boolean {
  for (const p of patterns) if (matchesPattern(p, channel)) return true;
  return false;
}

/**
 * Whether every channel `requested` can match is also matched by one of
 * `granted`. Matching the requested pattern as a literal string is enough:
 * channel names cannot contain `*`, so each `*` in it can only be matched by
 * a `*` of the granting pattern, which matches whatever replaces it too.
 */
export function patternCovered(granted: readonly string[], requested: string): boolean {
  return matchesAny(granted, requested);
}

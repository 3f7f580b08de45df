import { HeraldError } from '@herald/protocol';

/** Longest pattern accepted anywhere (keys, tokens, endpoints, config): the longest channel name. */
export const MAX_PATTERN_LENGTH = 128;
/** Most `*` in one pattern; more buys nothing a user needs and only widens the input an attacker controls. */
export const MAX_PATTERN_STARS = 8;

const PATTERN_CHARS = /^[A-Za-z0-9_.:*-]+$/;

/**
 * The same rule as `isValidPattern`, as a JSON-schema regex for request and
 * config schemas. Each group ends at its own `*` and the class excludes `*`,
 * so the regex cannot backtrack.
 */
export const PATTERN_SCHEMA_REGEX = `^(?:[A-Za-z0-9_.:-]*\\*){0,${MAX_PATTERN_STARS}}[A-Za-z0-9_.:-]*$`;

/** The rule of a valid pattern, as refusals state it. */
export const PATTERN_RULE = `1 to ${MAX_PATTERN_LENGTH} of [A-Za-z0-9_.:*-], at most ${MAX_PATTERN_STARS} \`*\``;

export function isValidPattern(pattern: unknown): pattern is string {
  if (typeof pattern !== 'string' || pattern.length === 0 || pattern.length > MAX_PATTERN_LENGTH) return false;
  if (!PATTERN_CHARS.test(pattern)) return false;
  let stars = 0;
  for (let i = 0; i < pattern.length; i++) if (pattern.charCodeAt(i) === 42) stars++;
  return stars <= MAX_PATTERN_STARS;
}

export function assertPattern(pattern: unknown): asserts pattern is string {
  if (!isValidPattern(pattern)) {
    throw new HeraldError(
      'invalid_pattern',
      `Invalid channel pattern ${JSON.stringify(pattern)}: ${PATTERN_RULE}.`,
    );
  }
}

/**
 * A pattern split at its stars, with a KMP failure table per middle part.
 * Compiled once per pattern string: auth checks run on every request.
 */
interface Compiled {
  prefix: string;
  suffix: string;
  middles: Array<{ part: string; fail: Int32Array }>;
}

const cache = new Map<string, Compiled>();
const CACHE_MAX = 10_000;

function failureTable(part: string): Int32Array {
  const fail = new Int32Array(part.length);
  let k = 0;
  for (let i = 1; i < part.length; i++) {
    while (k > 0 && part.charCodeAt(i) !== part.charCodeAt(k)) k = fail[k - 1]!;
    if (part.charCodeAt(i) === part.charCodeAt(k)) k++;
    fail[i] = k;
  }
  return fail;
}

function compile(pattern: string): Compiled {
  let compiled = cache.get(pattern);
  if (!compiled) {
    const parts = pattern.split('*');
    compiled = {
      prefix: parts[0]!,
      suffix: parts[parts.length - 1]!,
      middles: parts
        .slice(1, -1)
        .filter((p) => p.length > 0)
        .map((part) => ({ part, fail: failureTable(part) })),
    };
    if (cache.size >= CACHE_MAX) cache.clear();
    cache.set(pattern, compiled);
  }
  return compiled;
}

/** The index just past the first occurrence of `part` in text[from, end), or -1. KMP: never re-reads text. */
function findAfter(text: string, from: number, end: number, part: string, fail: Int32Array): number {
  let k = 0;
  for (let i = from; i < end; i++) {
    const c = text.charCodeAt(i);
    while (k > 0 && c !== part.charCodeAt(k)) k = fail[k - 1]!;
    if (c === part.charCodeAt(k)) k++;
    if (k === part.length) return i + 1;
  }
  return -1;
}

/**
 * Channel patterns: `*` matches any run of characters, everything else is
 * literal, anchored at both ends. Written by hand rather than as a regex
 * because a regex with several `.*` backtracks: a token holding
 * `a*a*a*a*…b` could stall the event loop for hours. Here the prefix and
 * suffix are fixed, and the middle parts are found leftmost-first with KMP
 * (taking the earliest occurrence never loses a match when `*` is the only
 * wildcard), so one check is O(pattern length + name length).
 */
export function matchesPattern(pattern: string, name: string): boolean {
  if (!pattern.includes('*')) return pattern === name;
  const { prefix, suffix, middles } = compile(pattern);
  if (name.length < prefix.length + suffix.length) return false;
  if (!name.startsWith(prefix) || !name.endsWith(suffix)) return false;
  let at = prefix.length;
  const end = name.length - suffix.length;
  for (const { part, fail } of middles) {
    at = findAfter(name, at, end, part, fail);
    if (at < 0) return false;
  }
  return true;
}

export function matchesAny(patterns: readonly string[], name: string): boolean {
  for (const p of patterns) if (matchesPattern(p, name)) return true;
  return false;
}

/**
 * Whether every channel `requested` (a pattern, or a channel name) can match is also matched by one of `granted`.
 * Matching the requested pattern as a literal string is enough: channel names cannot contain `*`, so each `*` in it
 * can only be matched by a `*` of the granting pattern, which matches whatever replaces it too.
 *
 * Herald's own channels (`herald:…`) are covered only by a pattern that names them (one that starts `herald:`), never
 * by a wider one such as `*`: `herald:system` names every endpoint and its URL, and a key granted `*` to publish
 * appended forged system events there; one granted `*` to read (or anyone, under a public `*`) read it.
 */
export function patternCovered(granted: readonly string[], requested: string): boolean {
  if (!isReservedChannel(requested)) return matchesAny(granted, requested);
  for (const p of granted) if (isReservedChannel(p) && matchesPattern(p, requested)) return true;
  return false;
}

/**
 * Herald's own channels (`herald:system`, which tells of every endpoint, `herald:test`) begin with this. No tenant
 * may follow them: they speak of every tenant at once.
 */
export const RESERVED_CHANNEL_PREFIX = 'herald:';

/**
 * Whether a channel name is one of Herald's own; for a pattern, whether every channel it matches is (its text up
 * to the first `*` starts with the prefix, which holds no `*`).
 */
export const isReservedChannel = (nameOrPattern: string): boolean => nameOrPattern.startsWith(RESERVED_CHANNEL_PREFIX);

/** Whether `channel` is kept from `endpoint`: one of Herald's own channels, and the endpoint a tenant's. */
export const keptFromTenant = (endpoint: { tenant?: string | undefined }, channel: string): boolean =>
  endpoint.tenant !== undefined && isReservedChannel(channel);

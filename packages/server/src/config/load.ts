import { readFileSync, existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { maxHeaderSize } from 'node:http';
import { distance as editDistance } from 'fastest-levenshtein';
import { Value } from '@sinclair/typebox/value';
import type { TSchema, TObject } from '@sinclair/typebox';
import { ConfigSchema, maxSourceTolerance, type HeraldConfig } from './schema.js';
import { parseCidr } from '../delivery/ssrf.js';
import { parkedPollCost } from '../transports/poll/long-poll.js';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Json = Record<string, unknown>;

export interface ConfigSources {
  /** A path to a JSON file; `herald.json` in the working directory is read when present and none is given. */
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Flag values, already keyed by config path (`port`, `dataDir`, …). */
  flags?: Json;
  /** Working directory for the default file and relative paths. */
  cwd?: string;
}

/** `delivery.retrySchedule` → `HERALD_DELIVERY_RETRY_SCHEDULE`. */
export function envName(path: readonly string[]): string {
  return 'HERALD_' + path.map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_');
}

function isObjectSchema(schema: TSchema): schema is TObject {
  return schema.type === 'object' && typeof schema.properties === 'object';
}

function isPlainObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Leaves a user can set from the environment: scalars, lists of scalars, and lists of objects (as JSON). */
function envLeaves(schema: TObject, prefix: string[] = []): Array<{ path: string[]; schema: TSchema }> {
  const out: Array<{ path: string[]; schema: TSchema }> = [];
  for (const [key, child] of Object.entries(schema.properties)) {
    const path = [...prefix, key];
    if (isObjectSchema(child)) out.push(...envLeaves(child, path));
    else out.push({ path, schema: child });
  }
  return out;
}

const isObjectList = (schema: TSchema): boolean => schema.type === 'array' && isObjectSchema(schema.items as TSchema);

/** A list of objects from the environment, written as JSON; text that is not JSON is left for validation to refuse. */
function jsonFromEnv(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

function coerceScalar(raw: string, schema: TSchema): unknown {
  if (schema.type === 'integer' || schema.type === 'number') {
    // Decimal only, and finite: Number() also reads `0x1A2B` (a port of 6699) and `Infinity`, which the check then
    // showed as `got null`. Left as text, such a value is refused showing what was given.
    const text = raw.trim();
    const n = Number(text);
    return /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(text) && Number.isFinite(n) ? n : raw;
  }
  if (schema.type === 'boolean') {
    if (/^(true|1|yes)$/i.test(raw)) return true;
    if (/^(false|0|no)$/i.test(raw)) return false;
  }
  return raw;
}

function fromEnv(env: NodeJS.ProcessEnv): Json {
  const out: Json = {};
  for (const { path, schema } of envLeaves(ConfigSchema)) {
    const raw = env[envName(path)];
    if (raw === undefined || raw === '') continue; // an empty variable counts as unset
    // A list of objects (retention.rules) cannot be comma-separated: it is JSON. Skipped before, it was silently ignored.
    const value = isObjectList(schema)
      ? jsonFromEnv(raw)
      : schema.type === 'array'
        ? raw.split(',').map((s) => s.trim()).filter((s) => s !== '').map((s) => coerceScalar(s, schema.items as TSchema))
        : coerceScalar(raw, schema);
    setPath(out, path, value);
  }
  return out;
}

/** HERALD_ variables that are not settings: the config file's name, the CLI client's, and the test suite's. */
const OTHER_HERALD_ENV = new Set(['HERALD_CONFIG', 'HERALD_URL', 'HERALD_KEY', 'HERALD_MIGRATE_CRASH_AFTER']);

/**
 * `HERALD_` variables that name no setting (`HERALD_LIMITS_BODY_BYTEZ`), each with the setting it is nearest to when
 * one is close. An environment is shared with other programs, so they are told, not refused as a file's unknown keys
 * are; `herald serve` logs each. A setting misspelt was silently left at its default (HERALD_STORE for HERALD_STORE_URL
 * ran on SQLite).
 */
export function unknownEnvNames(env: NodeJS.ProcessEnv): Array<{ name: string; nearest: string | undefined }> {
  const known = envLeaves(ConfigSchema).map(({ path }) => envName(path));
  return Object.keys(env)
    .filter((name) => name.startsWith('HERALD_') && !name.startsWith('HERALD_TEST_') && !OTHER_HERALD_ENV.has(name) && !known.includes(name))
    .sort()
    .map((name) => ({ name, nearest: nearestName(name, known) }));
}

/** The known name within a few edits of `name` (a typo, a missing or extra part), if one is. */
function nearestName(name: string, known: readonly string[]): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const candidate of known) {
    if (candidate.startsWith(`${name}_`)) return candidate;
    const distance = editDistance(name, candidate);
    if (distance <= 3 && (!best || distance < best.distance)) best = { name: candidate, distance };
  }
  return best?.name;
}

function setPath(target: Json, path: readonly string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    if (!isPlainObject(node[key])) node[key] = {};
    node = node[key] as Json;
  }
  node[path[path.length - 1]!] = value;
}

function deepMerge(base: Json, over: Json): Json {
  const out: Json = { ...base };
  for (const [key, value] of Object.entries(over)) {
    if (value === undefined) continue;
    out[key] = isPlainObject(value) && isPlainObject(out[key]) ? deepMerge(out[key] as Json, value) : value;
  }
  return out;
}

/** Unknown keys are named with the source they came from, so a typo is easy to find. */
function rejectUnknownKeys(value: Json, schema: TObject, source: string, prefix = ''): void {
  for (const [key, child] of Object.entries(value)) {
    const childSchema = schema.properties[key];
    const path = prefix ? `${prefix}.${key}` : key;
    if (!childSchema) {
      const known = Object.keys(schema.properties).join(', ');
      throw new ConfigError(`Unknown config key "${path}" in ${source}. Known keys here: ${known}.`);
    }
    if (isObjectSchema(childSchema) && isPlainObject(child)) rejectUnknownKeys(child, childSchema, source, path);
  }
}

function readFile(path: string): Json {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError(`Cannot read config file ${path}: ${(err as Error).message}`);
  }
  if (!isPlainObject(parsed)) throw new ConfigError(`Config file ${path} must hold a JSON object.`);
  return parsed;
}

/** For a setting that is one of a few words (`logLevel`, `store.synchronous`): the words, in place of TypeBox's "Expected union value". */
function choices(schema: TSchema): string | undefined {
  const options = (schema as { anyOf?: TSchema[] }).anyOf;
  if (!options?.length || !options.every((o) => typeof o.const === 'string')) return undefined;
  return `Expected one of ${options.map((o) => o.const as string).join(', ')}`;
}

/** Whether `value` holds something at `path` (list indexes included). */
function holds(value: unknown, path: readonly string[]): boolean {
  let at = value;
  for (const key of path) {
    if (typeof at !== 'object' || at === null || !Object.hasOwn(at, key)) return false;
    at = (at as Record<string, unknown>)[key];
  }
  return at !== undefined;
}

/**
 * Where an invalid setting's value came from, the source that won (a flag, else the environment, else the file), so
 * the message points at what to change; the environment variable when it came from there or from no source.
 */
function sourceOf(path: readonly string[], from: { flags: Json; env: NodeJS.ProcessEnv; file: Json; fileName: string | undefined }): string {
  // A list is set by one variable, a list of objects too (as JSON): `retention.rules.0.maxEvents` comes from
  // HERALD_RETENTION_RULES, not from a HERALD_RETENTION_RULES_MAX_EVENTS that nothing reads.
  const index = path.findIndex((s) => /^\d+$/.test(s));
  const setting = index < 0 ? path : path.slice(0, index);
  if (setting.length === 0) return '';
  const variable = envName(setting);
  // With its list indexes: whether the flags or the file hold this very entry.
  if (holds(from.flags, path)) return ' (from a command-line flag)';
  // An empty variable counts as unset (fromEnv), so it is not what to change.
  if (!from.env[variable] && from.fileName !== undefined && holds(from.file, path)) return ` (in ${from.fileName})`;
  return ` (env ${variable})`;
}

/** Settings whose value is a secret: an error names the setting, never echoes the value (stderr ends up in logs). */
const SECRET_SETTINGS = new Set(['adminKey', 'tokenSecret']);

/**
 * The password of a URL with any scheme (RFC 3986 3.1: letters, digits, `+`, `-`, `.`): the value was refused, perhaps
 * for its very scheme (`redis-cluster://`, a slip for `redis+cluster://`). Not util/redact-url.ts, which parses
 * the URL and so shows a refused value that is no valid URL as "(invalid URL)".
 */
const URL_PASSWORD = /^([a-z][a-z0-9+.-]*:\/\/[^/?#:]*:)[^/?#]*@/i;

/** A rejected value as the error shows it: a secret as its length, a URL's password as `***`. */
function shown(key: string, value: unknown): string {
  if (SECRET_SETTINGS.has(key)) return typeof value === 'string' ? `a value of ${value.length} characters` : typeof value;
  return JSON.stringify(typeof value === 'string' ? value.replace(URL_PASSWORD, '$1***@') : value);
}

const invalidConfiguration = (lines: readonly string[]) => new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);

/** Builds the one validated config object: defaults < file < environment < flags. */
export function loadConfig(sources: ConfigSources = {}): HeraldConfig {
  const cwd = sources.cwd ?? process.cwd();
  const env = sources.env ?? process.env;
  const filePath = sources.file ?? env.HERALD_CONFIG;
  // The file named, which must exist, else `./herald.json` when there is one.
  const named = filePath ? resolve(cwd, filePath) : undefined;
  if (named !== undefined && !existsSync(named)) throw new ConfigError(`Config file ${named} does not exist.`);
  const fallback = resolve(cwd, 'herald.json');
  const fileName = named ?? (existsSync(fallback) ? fallback : undefined);
  const file: Json = fileName === undefined ? {} : readFile(fileName);
  if (fileName !== undefined) rejectUnknownKeys(file, ConfigSchema, fileName);
  const flags = sources.flags ?? {};
  rejectUnknownKeys(flags, ConfigSchema, 'command-line flags');

  const merged = deepMerge(deepMerge(file, fromEnv(env)), flags);
  // Before Value.Default, which fills `merged` in place: whether the tolerance was set, or is the default.
  const toleranceSet = (merged as { ingest?: { tolerance?: unknown } }).ingest?.tolerance !== undefined;
  const withDefaults = Value.Default(ConfigSchema, merged) as Json;
  const problems = [...Value.Errors(ConfigSchema, withDefaults)];
  /** One line of the error: the setting, where its value came from, what is wrong, and the value (secrets hidden). */
  const problem = (path: readonly string[], message: string, value: unknown): string => {
    const key = path.join('.') || '(root)';
    return `  ${key}${sourceOf(path, { flags, env, file, fileName })}: ${message}, got ${shown(key, value)}`;
  };
  if (problems.length > 0) {
    const lines = problems.slice(0, 10).map((p) => problem(p.path.replace(/^\//, '').split('/').filter(Boolean), choices(p.schema) ?? p.message, p.value));
    throw invalidConfiguration(lines);
  }
  const config = withDefaults as HeraldConfig;
  // Checked here, not when the SSRF guard is built: a typo is then a configuration error naming where it came from
  // (exit 2), not a stack trace out of the server's start.
  for (const setting of ['delivery', 'portal'] as const) {
    config[setting].allowPrivateNetworks.forEach((cidr, i) => {
      try {
        parseCidr(cidr);
      } catch {
        throw invalidConfiguration([problem([setting, 'allowPrivateNetworks', String(i)], 'Expected a CIDR (10.0.0.0/8, fd00::/8) or an IP address', cidr)]);
      }
    });
  }
  // The default tolerance (300 s) gives way to the cap on a short dedupe lifetime; a tolerance set over it is refused.
  const toleranceCap = maxSourceTolerance(config);
  if (!toleranceSet) config.ingest.tolerance = Math.min(config.ingest.tolerance, toleranceCap);
  if (config.ingest.tolerance > toleranceCap) {
    const why = `at most ${toleranceCap} s, half the longer of retention.maxAge and ingest.dedupeWindow (a replay within a longer tolerance could outlive its dedupe id)`;
    throw invalidConfiguration([problem(['ingest', 'tolerance'], why, config.ingest.tolerance)]);
  }
  // Below it, a poll of as many channels as a request may name, with headers as large as Node takes, could never park,
  // and its client would retry for ever.
  const { parkedPollBytes, channelsPerRequest } = config.limits;
  const largest = parkedPollCost(channelsPerRequest, maxHeaderSize);
  if (parkedPollBytes < largest) {
    const why = `at least ${largest}, what one poll of limits.channelsPerRequest (${channelsPerRequest}) channels with ${maxHeaderSize} bytes of headers is counted as, or such a poll could never wait`;
    throw invalidConfiguration([problem(['limits', 'parkedPollBytes'], why, parkedPollBytes)]);
  }
  // A default above its own bound was clamped without a word: the operator meant one of the two, and says which.
  if (config.portal.sessionTtl > config.portal.maxSessionTtl) {
    throw invalidConfiguration([problem(['portal', 'sessionTtl'], `at most portal.maxSessionTtl (${config.portal.maxSessionTtl})`, config.portal.sessionTtl)]);
  }
  const breaker = config.delivery.circuitBreaker;
  if (breaker.cooldown > breaker.maxCooldown) {
    throw invalidConfiguration([problem(['delivery', 'circuitBreaker', 'cooldown'], `at most delivery.circuitBreaker.maxCooldown (${breaker.maxCooldown})`, breaker.cooldown)]);
  }
  const { metrics } = config;
  if (metrics.enabled && metrics.port > 0 && metrics.port === config.port && (metrics.host ?? config.host) === config.host) {
    throw invalidConfiguration([problem(['metrics', 'port'], 'a port of its own, not the API port (which serves /metrics too: see metrics.public)', metrics.port)]);
  }
  config.dataDir = resolve(cwd, config.dataDir);
  return config;
}

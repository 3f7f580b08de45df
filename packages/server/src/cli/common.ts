import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { isValidChannel, payloadFault, type ErrorBody } from '@herald/protocol';
import { secretWeakness } from '@herald/webhooks';

/** A failure the CLI reports as one line on stderr, with its exit code: 2 for usage, 1 for everything else. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export const usage = (message: string) => new CliError(message, 2);

export const CONNECTION_OPTIONS = {
  url: { type: 'string' },
  key: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

export const CONNECTION_HELP = `  --url <url>   the Herald server (env HERALD_URL, default http://127.0.0.1:7700)
  --key <key>   an API key, the admin key or a token (env HERALD_KEY, else HERALD_ADMIN_KEY)
  -h, --help    show this help`;

type Options = NonNullable<ParseArgsConfig['options']>;

export interface Parsed {
  values: Record<string, string | boolean | string[] | undefined> & { url?: string; key?: string; help?: boolean };
  positionals: string[];
}

/** parseArgs with the connection options added; strict, so a misspelt flag is an error (exit 2). */
export function parse(argv: string[], options: Options): Parsed {
  return parseArgs({ args: argv, options: { ...CONNECTION_OPTIONS, ...options }, allowPositionals: true, strict: true }) as Parsed;
}

/** A channel named on the command line: one the server takes (`..` would not even reach it: see CHANNEL_PATTERN). */
export function assertChannelArg(channel: string): void {
  if (!isValidChannel(channel)) throw usage(`invalid channel name ${JSON.stringify(channel)}: names match [A-Za-z0-9_.:-]{1,128}, other than . and ..`);
}

/** Refuses arguments past the `takes` a command has room for, naming its usage. */
export function refuseExtraArguments(positionals: readonly string[], takes: number, usageLine: string): void {
  if (positionals.length > takes) throw usage(`unexpected argument ${JSON.stringify(positionals[takes])}: ${usageLine}`);
}

/** An option that names a URL. */
export function assertUrlArg(value: string, option: string): void {
  try {
    new URL(value);
  } catch {
    throw usage(`${option} ${JSON.stringify(value)} is not a URL`);
  }
}

/** A string option's value. */
export function opt(values: Parsed['values'], name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

/** An option that names a seq (`--after`, `--until`), checked; undefined when not given. */
export function seqOption(values: Parsed['values'], name: string): number | undefined {
  const text = opt(values, name);
  if (text === undefined) return undefined;
  const seq = Number(text);
  if (!Number.isSafeInteger(seq) || seq < 0) throw usage(`--${name} takes a seq (an integer ≥ 0)`);
  return seq;
}

/**
 * `--secret`, to sign with as a Standard Webhooks sender (listen, replay): one given is held to what an endpoint's
 * secret must be (an endpoint refuses a weak one with `weak_secret`); undefined when not given.
 */
export function signingSecretOption(values: Parsed['values']): string | undefined {
  const secret = opt(values, 'secret');
  if (secret === undefined) return undefined;
  const weakness = secretWeakness('standard', secret);
  if (weakness) throw usage(`--secret is too weak to sign with: ${weakness} (left out, a new one is made and printed)`);
  return secret;
}

/** A repeatable string option's values. */
export function opts(values: Parsed['values'], name: string): string[] {
  const v = values[name];
  return Array.isArray(v) ? v : typeof v === 'string' ? [v] : [];
}

export interface Connection {
  url: string;
  key: string | undefined;
}

export function connection(values: { url?: string | boolean | undefined; key?: string | boolean | undefined }): Connection {
  const url = (typeof values.url === 'string' ? values.url : process.env.HERALD_URL) ?? 'http://127.0.0.1:7700';
  // HERALD_KEY is the CLI's credential, whatever kind; the server's HERALD_ADMIN_KEY serves when it is unset.
  const key = typeof values.key === 'string' ? values.key : process.env.HERALD_KEY || process.env.HERALD_ADMIN_KEY;
  assertUrlArg(url, '--url');
  return { url: url.replace(/\/+$/, ''), key: key || undefined };
}

/** One API call; a non-2xx answer becomes a CliError carrying the server's error code and message. */
export async function api<T = unknown>(conn: Connection, method: string, path: string, body?: unknown): Promise<T> {
  let res: Response;
  try {
    res = await fetch(conn.url + path, {
      method,
      headers: { ...(conn.key ? { authorization: `Bearer ${conn.key}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    throw new CliError(`cannot reach ${conn.url}: ${(error as Error & { cause?: Error }).cause?.message ?? (error as Error).message}`);
  }
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? (JSON.parse(text) as unknown) : undefined;
  } catch {
    // A proxy's error page, or something that is not Herald at that URL.
    const start = text.length > 200 ? `${text.slice(0, 200)}…` : text;
    throw new CliError(`${conn.url} answered ${res.status} with a body that is not JSON (is it Herald?): ${JSON.stringify(start)}`);
  }
  if (!res.ok) {
    const error = (parsed as ErrorBody | undefined)?.error;
    const hint = res.status === 401 ? ' (set --key, HERALD_KEY or HERALD_ADMIN_KEY; lost the admin key? herald admin-key reset)' : '';
    throw new CliError(`${res.status} ${error?.code ?? 'error'}: ${error?.message ?? text}${hint}`);
  }
  return parsed as T;
}

/** The positional body argument, or stdin when it is `-`. */
export function readBody(arg: string | undefined): string | undefined {
  if (arg === '-') return readFileSync(0, 'utf8');
  return arg;
}

/**
 * JSON given on the command line. A number beyond what JSON carries (`1e400`) is refused here, as the server would:
 * parsed, it is Infinity, which the request would carry as `null`, and the server could no longer tell.
 */
export function parseJson(text: string, what: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw usage(`${what} is not valid JSON: ${(error as Error).message}`);
  }
  if (payloadFault(value, Number.MAX_SAFE_INTEGER) === 'non_finite') {
    throw usage(`${what} holds a number beyond what JSON can carry (±1.8e308, such as 1e400): it would be sent as null. Give it as a string.`);
  }
  return value;
}

export function list(value: string | undefined): string[] | undefined {
  return value === undefined ? undefined : value.split(',').map((s) => s.trim()).filter(Boolean);
}

export function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Resolves on the first SIGINT or SIGTERM: long-running commands end cleanly on Ctrl-C. */
export function untilInterrupted(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
}

import { createHmac, timingSafeEqual } from 'node:crypto';
import { fail } from './errors.js';

/** A raw body: never parsed, never re-serialized. Strings are taken as UTF-8. */
export type Bytes = string | Uint8Array;

export type HeadersInput =
  | { get(name: string): string | null }
  | Record<string, string | readonly string[] | undefined>;

/** Headers longer than this are refused before any parsing, so a hostile header costs nothing. */
export const MAX_HEADER_LENGTH = 64 * 1024;

export function toBuffer(bytes: Bytes): Buffer {
  if (typeof bytes === 'string') return Buffer.from(bytes, 'utf8');
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Reads one header from a fetch `Headers` or a plain object (Node's IncomingHttpHeaders), in any casing. */
export function header(headers: HeadersInput, name: string): string | undefined {
  let value: string | readonly string[] | null | undefined;
  if (typeof (headers as { get?: unknown }).get === 'function') {
    value = (headers as { get(name: string): string | null }).get(name);
  } else {
    const record = headers as Record<string, string | readonly string[] | undefined>;
    value = record[name];
    if (value === undefined) {
      const key = Object.keys(record).find((k) => k.toLowerCase() === name);
      value = key === undefined ? undefined : record[key];
    }
  }
  const text = Array.isArray(value) ? value.join(',') : (value as string | null | undefined);
  if (text === undefined || text === null || text === '') return undefined;
  if (text.length > MAX_HEADER_LENGTH) fail('malformed_header', `${name} is over ${MAX_HEADER_LENGTH} bytes.`);
  return text;
}

export function requireHeader(headers: HeadersInput, name: string): string {
  return header(headers, name) ?? fail('missing_header', `The ${name} header is missing.`);
}

export function hmacSha256(key: Bytes, ...parts: Bytes[]): Buffer {
  const mac = createHmac('sha256', typeof key === 'string' ? key : toBuffer(key));
  for (const part of parts) mac.update(typeof part === 'string' ? part : toBuffer(part));
  return mac.digest();
}

const HEX = /^[0-9a-fA-F]+$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * Decodes a presented signature; undefined when it is not well-formed, so it simply matches nothing.
 * Base64 must be canonical (padded, unused low bits zero): otherwise several spellings would decode to
 * the same bytes, and a signature altered in its last character would still verify.
 */
export function decodeSignature(text: string, encoding: 'hex' | 'base64'): Buffer | undefined {
  if (encoding === 'hex') return text.length % 2 === 0 && HEX.test(text) ? Buffer.from(text, 'hex') : undefined;
  if (text.length % 4 !== 0 || !BASE64.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? bytes : undefined;
}

/** Constant-time: the comparison takes as long whichever byte differs. */
export function sameBytes(expected: Buffer, presented: Buffer | undefined): boolean {
  return presented !== undefined && presented.length === expected.length && timingSafeEqual(expected, presented);
}

export function secretsOf(options: { secret?: string | undefined; secrets?: string | readonly string[] | undefined }): string[] {
  const list = [...(options.secret === undefined ? [] : [options.secret]), ...(typeof options.secrets === 'string' ? [options.secrets] : options.secrets ?? [])];
  if (list.length === 0) fail('invalid_secret', 'Give at least one secret.');
  for (const s of list) if (typeof s !== 'string' || s === '') fail('invalid_secret', 'Secrets are non-empty strings.');
  return list;
}

/** Unix seconds, checked against `now` within `tolerance` seconds either way. */
export function checkTimestamp(text: string, now: number, tolerance: number): number {
  if (!/^\d{1,12}$/.test(text)) fail('malformed_header', `Timestamp ${JSON.stringify(text.slice(0, 32))} is not unix seconds.`);
  const timestamp = Number(text);
  if (Math.abs(now - timestamp) > tolerance) {
    fail('timestamp_outside_tolerance', `Timestamp ${timestamp} is more than ${tolerance} s from now (${now}).`);
  }
  return timestamp;
}

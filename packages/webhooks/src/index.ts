import { randomBytes } from 'node:crypto';
import { secretsOf, toBuffer, type Bytes, type HeadersInput } from './bytes.js';
import { fail } from './errors.js';
import type { Scheme, SchemeImpl } from './types.js';
import { standard } from './schemes/standard.js';
import { stripe } from './schemes/stripe.js';
import { github, shopify } from './schemes/body-hmac.js';
import { slack } from './schemes/slack.js';

export { WebhookVerificationError, VerificationErrorCodes, type VerificationErrorCode } from './errors.js';
export type { Bytes, HeadersInput } from './bytes.js';
export type { Scheme } from './types.js';
export { secretWeakness, SECRET_MINIMUMS } from './strength.js';

const SCHEMES: Record<Scheme, SchemeImpl> = { standard, stripe, github, shopify, slack };
export const SCHEME_NAMES = Object.keys(SCHEMES) as Scheme[];

/** Five minutes either way, as Stripe, Slack and Standard Webhooks recommend. */
export const DEFAULT_TOLERANCE_SECONDS = 300;

export interface SignOptions {
  secret?: string;
  /** Several secrets sign together (rotation); schemes with one signature use the first. */
  secrets?: string | readonly string[];
  /** The delivery id: Standard Webhooks' `webhook-id`, GitHub's `x-github-delivery`, Shopify's `x-shopify-webhook-id`; a random `msg_…` when absent. */
  id?: string;
  /** Unix seconds; now when absent. */
  timestamp?: number;
  body: Bytes;
}

export interface VerifyOptions {
  secret?: string;
  /** Any one matching is enough (rotation). */
  secrets?: string | readonly string[];
  headers: HeadersInput;
  /** The raw body, exactly as received. */
  body: Bytes;
  /** Seconds either side of now; default 300. */
  tolerance?: number;
  /** Unix seconds, or a Date; default now. */
  now?: number | Date;
}

export interface VerifyResult {
  ok: true;
  scheme: Scheme;
  /** The delivery id where the scheme carries one in its headers. */
  id?: string;
  /** Unix seconds, for schemes that sign a timestamp. */
  timestamp?: number;
}

function schemeOf(name: Scheme): SchemeImpl {
  return SCHEMES[name] ?? fail('invalid_secret', `Unknown scheme ${JSON.stringify(name)}; use one of ${SCHEME_NAMES.join(', ')}.`);
}

/** The headers to send with `body` under `scheme`. */
export function sign(scheme: Scheme, options: SignOptions): Record<string, string> {
  return schemeOf(scheme).sign({
    secrets: secretsOf(options),
    id: options.id ?? `msg_${randomBytes(16).toString('base64url')}`,
    timestamp: options.timestamp ?? Math.floor(Date.now() / 1000),
    body: toBuffer(options.body),
  });
}

/** Checks a received webhook; throws a WebhookVerificationError with a stable `code` when it does not hold. */
export function verify(scheme: Scheme, options: VerifyOptions): VerifyResult {
  const now = options.now instanceof Date ? Math.floor(options.now.getTime() / 1000) : options.now ?? Math.floor(Date.now() / 1000);
  const verified = schemeOf(scheme).verify({
    secrets: secretsOf(options),
    headers: options.headers,
    body: toBuffer(options.body),
    tolerance: options.tolerance ?? DEFAULT_TOLERANCE_SECONDS,
    now,
  });
  return { ok: true, scheme, ...verified };
}

/** The same as `verify`, under the name the client SDK re-exports for receivers. */
export const verifyWebhook = verify;

/** A fresh Standard Webhooks secret: `whsec_` and 32 random bytes in base64. */
export function generateSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

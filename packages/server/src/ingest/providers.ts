import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { Provider } from '@herald/protocol';
import { decodeJsonBody, parseJsonText } from '../http/json-body.js';

type Json = Record<string, unknown>;

const asObject = (value: unknown): Json => (typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : {});
const asString = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);
const headerOf = (headers: IncomingHttpHeaders, name: string): string | undefined => asString(headers[name]);

/**
 * The body as the provider meant it: JSON, a form (Slack commands), or text. Decoded strictly, as every body is:
 * bytes that are not UTF-8 are `invalid_json`, not stored with U+FFFD in their place.
 */
export function parseBody(body: Buffer, contentType: string | undefined): unknown {
  const type = (contentType ?? '').toLowerCase();
  const text = decodeJsonBody(body);
  if (type.includes('json') || (!type.includes('form') && /^\s*[[{]/.test(text))) {
    return parseJsonText(text, 'body', () => 'The webhook body is signed but is not valid JSON.');
  }
  if (type.includes('application/x-www-form-urlencoded')) {
    const form: Json = Object.fromEntries(new URLSearchParams(text));
    // Slack interactivity sends its JSON in a `payload` field.
    if (typeof form.payload === 'string') {
      try {
        form.payload = JSON.parse(form.payload);
      } catch {
        // left as text
      }
    }
    return form;
  }
  return text;
}

/**
 * Slack's SSL check: now and then Slack posts `ssl_check=1` (and a deprecated verification token) to a slash command's
 * URL, to check its certificate, and expects 200. It is no event: Slack's own SDK (Bolt) answers it before verifying
 * anything, so Herald does too, and stores nothing (storing it would hand the token to the channel's readers).
 */
export function isSlackSslCheck(body: Buffer, contentType: string | undefined): boolean {
  if (!(contentType ?? '').toLowerCase().includes('application/x-www-form-urlencoded')) return false;
  return new URLSearchParams(body.toString('latin1')).get('ssl_check') === '1';
}

export interface Described {
  /** The provider's own event id, for dedupe. */
  eventId: string;
  type: string;
  /** When set, the answer the provider expects instead of an append (Slack's url_verification). */
  reply?: unknown;
}

const TYPE_MAX = 128;

/** Where each provider keeps its event id and type. */
export function describe(provider: Provider, headers: IncomingHttpHeaders, data: unknown, body: Buffer, verifiedId: string | undefined): Described {
  const d = asObject(data);
  // A form whose JSON is in its `payload` field (parseBody parses it): GitHub's form content type, Slack's interactivity.
  const form = (headers['content-type'] ?? '').toLowerCase().includes('application/x-www-form-urlencoded') ? asObject(d.payload) : {};
  let eventId: string | undefined;
  let type: string | undefined;
  switch (provider) {
    case 'stripe':
      eventId = asString(d.id);
      type = asString(d.type);
      break;
    case 'standard':
      eventId = verifiedId;
      type = asString(d.type);
      break;
    case 'github': {
      eventId = headerOf(headers, 'x-github-delivery');
      const event = headerOf(headers, 'x-github-event');
      const action = asString(d.action) ?? asString(form.action);
      type = event && action ? `${event}.${action}` : event;
      break;
    }
    case 'shopify':
      eventId = headerOf(headers, 'x-shopify-webhook-id');
      type = headerOf(headers, 'x-shopify-topic');
      break;
    case 'slack': {
      if (d.type === 'url_verification') {
        return { eventId: '', type: 'url_verification', reply: { challenge: d.challenge } };
      }
      eventId = asString(d.event_id);
      type = asString(asObject(d.event).type) ?? asString(d.type) ?? asString(form.type);
      break;
    }
  }
  // Without an id of the provider's, the body itself is the identity: the same bytes are the same event.
  eventId ??= `sha256:${createHash('sha256').update(body).digest('hex')}`;
  return { eventId, type: (type ?? `${provider}.webhook`).slice(0, TYPE_MAX) };
}

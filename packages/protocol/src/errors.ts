/**
 * The one catalogue of Herald error codes. Codes are stable API: clients
 * branch on them, so a code is never renamed or reused for another meaning.
 * Each entry carries the HTTP status the gateway answers with.
 */
export const ErrorCodes = {
  bad_request: { status: 400, message: 'The request is malformed.' },
  invalid_json: { status: 400, message: 'The body is not valid JSON.' },
  invalid_channel: { status: 400, message: 'Channel names match [A-Za-z0-9_.:-]{1,128}, other than . and ..' },
  invalid_cursor: { status: 400, message: 'The cursor is not one this server issued.' },
  payload_too_deep: { status: 400, message: 'The JSON is nested deeper than the limit allows.' },
  invalid_pattern: { status: 400, message: "The portal's channel pattern, with the tenant put in, is no valid pattern." },
  invalid_header: { status: 400, message: 'A header name or value is not allowed.' },
  weak_secret: { status: 400, message: 'The secret is too short or too predictable.' },
  unauthorized: { status: 401, message: 'A valid credential is required.' },
  webhook_signature_invalid: { status: 401, message: 'The webhook signature is missing or does not verify.' },
  webhook_timestamp_expired: { status: 401, message: 'The webhook timestamp is outside the tolerance: a replay, or a clock off.' },
  forbidden: { status: 403, message: 'The credential does not cover this operation.' },
  not_found: { status: 404, message: 'No such resource.' },
  not_present: { status: 404, message: "No connection with this client id is in the channel's presence set." },
  method_not_allowed: { status: 405, message: 'Method not allowed.' },
  request_timeout: { status: 408, message: 'The request was not received in time.' },
  conflict: { status: 409, message: 'A resource with this name already exists.' },
  presence_full: { status: 409, message: "The channel's presence set is full (limits.presenceMembers)." },
  event_id_conflict: { status: 409, message: 'This event id is already used on another channel.' },
  payload_too_large: { status: 413, message: 'The body is over the size limit.' },
  uri_too_long: { status: 414, message: 'The URL is too long.' },
  unsupported_media_type: { status: 415, message: 'Send the body as application/json.' },
  unprocessable: { status: 422, message: 'The request is well-formed but cannot be processed.' },
  upgrade_required: { status: 426, message: 'Only WebSocket version 13 (RFC 6455) is spoken here.' },
  too_many_requests: { status: 429, message: 'Too many requests.' },
  headers_too_large: { status: 431, message: 'The request line and headers are over the size limit (a long URL or Last-Event-ID counts too).' },
  internal: { status: 500, message: 'Internal server error.' },
  unavailable: { status: 503, message: 'The server is not ready or is shutting down.' },
  /**
   * The store cannot take writes: PostgreSQL unreachable, or the disk full (SQLite `SQLITE_FULL`, `ENOSPC`,
   * PostgreSQL `53100`; then `details.reason` is `disk_full`). One code for both: either way nothing was
   * written and the same request may be retried after `Retry-After`.
   */
  store_unavailable: { status: 503, message: 'The event store cannot take writes; nothing was written. Retry later.' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ErrorCodes;

/** The JSON body of every error answer. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: unknown };
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ErrorCodes, value);
}

/** A typed error with a stable code; the gateway turns it into an ErrorBody. */
export class HeraldError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: unknown;

  constructor(code: ErrorCode, message?: string, details?: unknown) {
    super(message ?? ErrorCodes[code].message);
    this.name = 'HeraldError';
    this.code = code;
    this.status = ErrorCodes[code].status;
    this.details = details;
  }

  toJSON(): ErrorBody {
    const error: ErrorBody['error'] = { code: this.code, message: this.message };
    if (this.details !== undefined) error.details = this.details;
    return { error };
  }
}

/**
 * The `webhook-id` an event is sent under: its id, stable across retries, so receivers dedupe on it. Standard
 * Webhooks signs `id.timestamp.body`, so its ids may hold no full stop (the signer refuses one: an id holding
 * `.` could shift bytes between id, timestamp and body under one signature), but a publisher's chosen event id
 * may (`[A-Za-z0-9_.:-]`). Under that scheme each `.` is written `~`, a character no event id holds: the mapping
 * stays one to one, and an id without a full stop is sent as it is. The body still carries the event's own id.
 */
export function webhookIdOf(scheme: string, eventId: string): string {
  return scheme === 'standard' && eventId.includes('.') ? eventId.replaceAll('.', '~') : eventId;
}

/** The start of an event's JSON as Herald writes it (log/event-json.ts: id, channel, seq, then type), up to its type. */
const TYPE_AT_START = /^\{"id":"(?:[^"\\]|\\.)*","channel":"(?:[^"\\]|\\.)*","seq":-?\d+,"type":("(?:[^"\\]|\\.)*")/;
/** Visible ASCII: what a header value may hold as it is. */
const HEADER_SAFE = /^[!-~]+$/;

/**
 * Headers a scheme's receivers expect beside the signature. GitHub's: `x-github-event`, the event's type (GitHub's
 * own libraries refuse a delivery without it, as they do one without `x-github-delivery`, which the signer adds).
 * Read from the start of the payload, which is the event's JSON, without parsing the whole of it; a type that a
 * header cannot carry as it is (spaces, control or non-ASCII characters) is left out. An endpoint's `own` header of
 * that name wins, as it did before Herald set it (set by hand, it was the way to satisfy GitHub's libraries); compared
 * without case, since sent under both spellings the two values would arrive joined ("push, order.created").
 */
export function schemeHeaders(scheme: string, payload: string, own: Readonly<Record<string, string>> = {}): Record<string, string> {
  if (scheme !== 'github' || Object.keys(own).some((name) => name.toLowerCase() === 'x-github-event')) return {};
  const quoted = TYPE_AT_START.exec(payload)?.[1];
  const type = quoted === undefined ? undefined : (JSON.parse(quoted) as string);
  return type !== undefined && HEADER_SAFE.test(type) ? { 'x-github-event': type } : {};
}

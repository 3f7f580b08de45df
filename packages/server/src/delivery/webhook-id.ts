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

import { HeraldError, payloadFault } from '@herald/protocol';

/**
 * Refuses event data (or meta) nested deeper than `max` (`limits.jsonDepth`), or holding a number JSON cannot write
 * (`1e400`, read as Infinity), before it reaches the log. Every way in (HTTP, batch, WebSocket, presence, test events)
 * calls this, so nothing deeper is ever stored, and no number is stored as `null` in its place.
 */
export function assertStorablePayload(max: number, input: { data: unknown; meta?: unknown }): void {
  const fault = payloadFault(input.data, max) ?? payloadFault(input.meta, max);
  if (fault === 'too_deep') {
    throw new HeraldError('payload_too_deep', `Event data and meta may nest at most ${max} levels deep (limits.jsonDepth).`);
  }
  if (fault === 'non_finite') {
    throw new HeraldError(
      'bad_request',
      'Event data and meta hold a number beyond what JSON can carry (±1.8e308, such as 1e400): it would be stored as null. Send it as a string.',
    );
  }
}

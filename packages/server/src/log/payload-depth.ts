import { HeraldError, exceedsDepth } from '@herald/protocol';

/**
 * Refuses event data (or meta) nested deeper than `max` (`limits.jsonDepth`)
 * before it reaches the log. Every way in (HTTP, batch, WebSocket, ingest)
 * calls this, so nothing deeper is ever stored.
 */
export function assertPayloadDepth(max: number, input: { data: unknown; meta?: unknown }): void {
  if (exceedsDepth(input.data, max) || exceedsDepth(input.meta, max)) {
    throw new HeraldError('payload_too_deep', `Event data and meta may nest at most ${max} levels deep (limits.jsonDepth).`);
  }
}

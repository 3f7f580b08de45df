import { families, tally, type AttemptOutcome, type IngestOutcome, type RefusalReason, type StoreKind, type Transport, type WayIn } from './registry.js';

/**
 * The functions the rest of Herald calls to record what happened. Each is a
 * counter add or a histogram observation with fixed labels; the per-socket
 * ones are plain integer adds.
 */

/** One event written to one realtime subscriber: an integer add, folded into the counter at scrape time. */
export function countRealtimeDelivery(transport: 'ws' | 'sse'): void {
  tally.realtime[transport] += 1;
}

/** A subscription opened (+1) or ended (-1). */
export function countSubscription(delta: 1 | -1): void {
  tally.subscriptions += delta;
}

export function countRefused(transport: Transport, reason: RefusalReason): void {
  families.connectionsRefused.inc({ transport, reason });
}

/** A long poll refused (503, reason too_many_waiting) at the bound on what parked polls hold (limits.parkedPollBytes). */
export function countLongPollRefused(): void {
  families.longPollsRefused.inc();
}

/** A replay page that had to wait for room under limits.replayBytes. */
export function countReplayWait(): void {
  families.replayWaits.inc();
}

export function countDroppedConnection(): void {
  families.connectionsDropped.inc();
}

/** The refusal reason an HTTP status stands for. */
export function refusalReason(status: number): RefusalReason {
  switch (status) {
    case 400:
      return 'bad_request';
    case 401:
      return 'unauthorized';
    case 403:
      return 'forbidden';
    case 404:
      return 'not_found';
    case 503:
      return 'unavailable';
    default:
      return 'other';
  }
}

export function countSlowConsumer(transport: Transport): void {
  families.slowConsumers.inc({ transport });
}

/** After an append: how many events were new, and how long the publish took to be durable. */
export function recordAppend(via: WayIn, appended: number, seconds: number): void {
  if (appended > 0) families.eventsAppended.inc({ via }, appended);
  families.publishDuration.observe({ via }, seconds);
}

export function observeFanoutLag(seconds: number): void {
  families.fanoutLag.observe(seconds);
}

/** A SQLite checkpoint on the checkpoint thread that failed (store/sqlite/checkpointer.ts). */
export function countCheckpointFailure(): void {
  families.checkpointFailures.inc();
}

/** One store transaction: how many writes it carried and how long it took. */
export function recordCommit(store: StoreKind, writes: number, seconds: number): void {
  families.groupCommitBatch.observe({ store }, writes);
  families.storeCommitDuration.observe({ store }, seconds);
}

export function countInboundWebhook(provider: string, outcome: IngestOutcome): void {
  families.inboundWebhooks.inc({ provider, outcome });
}

/** What one outbound attempt came to, from its status code or its error. */
export function attemptOutcome(statusCode: number | undefined, error: string | undefined): AttemptOutcome {
  if (statusCode !== undefined) {
    if (statusCode >= 200 && statusCode < 300) return 'success';
    return statusCode >= 500 ? 'http_5xx' : 'http_4xx';
  }
  const text = error ?? '';
  if (text.startsWith('SSRF guard') || text.startsWith('ESSRF')) return 'ssrf_refused';
  if (/TIMEOUT|ETIMEDOUT|timed? ?out/i.test(text)) return 'timeout';
  return 'network';
}

/** One outbound attempt; `createdAt` is when the delivery was created, for the latency of a success. */
export function recordAttempt(statusCode: number | undefined, error: string | undefined, createdAt: number, now: number): void {
  const outcome = attemptOutcome(statusCode, error);
  families.outboundAttempts.inc({ outcome });
  if (outcome === 'success') families.deliveryLatency.observe(Math.max(0, now - createdAt) / 1000);
}

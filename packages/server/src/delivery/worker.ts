import { performance } from 'node:perf_hooks';
import { isIP } from 'node:net';
import { Agent, request } from 'undici';
import type { FastifyBaseLogger } from 'fastify';
import { sign, type Scheme } from '@herald/webhooks';
import type { HeraldConfig } from '../config/schema.js';
import type { EventLog } from '../log/event-log.js';
import type { DeliveryRecord, DeliveryStore, EndpointRecord } from '../store/types.js';
import { judge, nextAttemptAt } from './outcome.js';
import { TokenBucket } from './rate-limit.js';
import { liveSecrets } from '../auth/rotation.js';
import type { UrlGuard } from './ssrf.js';

export const SYSTEM_CHANNEL = 'herald:system';
const RESPONSE_KEPT = 1024;
/** Past this much response body the connection is dropped rather than read to the end. */
const RESPONSE_READ_MAX = 64 * 1024;
/** The pump runs at least this often, so a delivery never waits on a lost timer. */
const IDLE_TICK_MS = 1000;

interface Sent {
  statusCode?: number;
  retryAfter?: string;
  responseBody?: string;
  error?: string;
  durationMs: number;
}

/**
 * Sends due deliveries. Each endpoint has its own concurrency and rate limit,
 * and the pump asks the store for each endpoint's due work separately, so a
 * slow or dead endpoint only ever holds its own slots: no head-of-line
 * blocking, and memory is bounded by the slots, not by the backlog.
 */
export class DeliveryWorker {
  private readonly agent: Agent;
  private readonly inFlight = new Map<string, Set<string>>();
  private readonly buckets = new Map<string, TokenBucket>();
  private pumping: Promise<void> | undefined;
  private pumpAgain = false;
  /** Attempts under way, so stop() can wait for them to settle before the store closes. */
  private readonly attempts = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly userAgent: string;

  constructor(
    private readonly config: HeraldConfig['delivery'],
    private readonly store: DeliveryStore,
    private readonly log: EventLog,
    private readonly guard: UrlGuard,
    private readonly logger: FastifyBaseLogger,
    version: string,
  ) {
    this.userAgent = `Herald/${version}`;
    // One keep-alive pool per origin (undici's Agent), and the SSRF guard on every connection's DNS answer.
    this.agent = new Agent({ connect: { lookup: guard.lookup, timeout: config.timeout * 1000 }, keepAliveTimeout: 30_000 });
  }

  start(): void {
    this.kick();
  }

  /** Asks for a pump soon; calls made while one runs fold into one more run. */
  kick(): void {
    if (this.stopped) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = new Promise((resolve) => setImmediate(() => void this.pump().finally(resolve)));
  }

  private async pump(): Promise<void> {
    try {
      do {
        this.pumpAgain = false;
        await this.pumpOnce();
      } while (this.pumpAgain && !this.stopped);
      if (!this.stopped) await this.scheduleNext();
    } catch (err) {
      if (!this.stopped) this.logger.error({ err }, 'delivery pump failed');
    } finally {
      this.pumping = undefined;
    }
  }

  private async pumpOnce(): Promise<void> {
    const now = Date.now();
    for (const endpoint of await this.store.listEndpoints()) {
      if (!endpoint.enabled) continue;
      const flying = this.inFlight.get(endpoint.id) ?? new Set<string>();
      let room = endpoint.maxConcurrency - flying.size;
      const bucket = this.bucketFor(endpoint, now);
      if (bucket) room = Math.min(room, bucket.available(now));
      if (room <= 0) continue;
      // Ask for enough to skip the ones already in flight (they stay pending until their attempt is recorded).
      const due = (await this.store.due(endpoint.id, now, room + flying.size)).filter((d) => !flying.has(d.id)).slice(0, room);
      for (const delivery of due) {
        bucket?.take();
        flying.add(delivery.id);
        this.inFlight.set(endpoint.id, flying);
        const running: Promise<void> = this.attempt(endpoint, delivery)
          .catch((err: unknown) => {
            if (!this.stopped) this.logger.error({ err, delivery: delivery.id }, 'recording an attempt failed');
          })
          .finally(() => {
            this.attempts.delete(running);
            flying.delete(delivery.id);
            this.kick();
          });
        this.attempts.add(running);
      }
    }
  }

  private bucketFor(endpoint: EndpointRecord, now: number): TokenBucket | undefined {
    if (!endpoint.rateLimit) return undefined;
    let bucket = this.buckets.get(endpoint.id);
    if (!bucket) {
      bucket = new TokenBucket(endpoint.rateLimit, now);
      this.buckets.set(endpoint.id, bucket);
    }
    return bucket;
  }

  /** Sleeps until the earliest due delivery, or the idle tick, whichever is first. */
  private async scheduleNext(): Promise<void> {
    clearTimeout(this.timer);
    const next = await this.store.nextDue();
    const wait = next === undefined ? IDLE_TICK_MS : Math.min(IDLE_TICK_MS, Math.max(5, next - Date.now()));
    this.timer = setTimeout(() => this.kick(), wait);
    this.timer.unref();
  }

  /** Forgets per-endpoint state after an endpoint changes, so new limits apply. */
  endpointChanged(id: string): void {
    this.buckets.delete(id);
    this.kick();
  }

  private async attempt(endpoint: EndpointRecord, delivery: DeliveryRecord): Promise<void> {
    const at = Date.now();
    const sent = await this.send(endpoint, delivery);
    // Cut off by shutdown: record nothing, so the delivery stays pending and is retried after restart.
    if (this.stopped) return;
    const done = Date.now();
    const verdict = sent.statusCode === undefined ? { kind: 'retry' as const } : judge(sent.statusCode, sent.retryAfter, done, this.config.retryAfterMax * 1000);
    const attempts = delivery.attempts + 1;
    let status: DeliveryRecord['status'] = 'pending';
    let next = done;
    if (verdict.kind === 'success') {
      status = 'succeeded';
    } else if (verdict.kind === 'gone' || delivery.finalAttempt) {
      status = 'failed';
    } else {
      const when = nextAttemptAt(attempts, done, this.config.retrySchedule, this.config.jitter, verdict.retryAfterMs);
      if (when === undefined) status = 'failed';
      else next = when;
    }
    await this.store.recordAttempt({
      attempt: { deliveryId: delivery.id, at, statusCode: sent.statusCode, durationMs: sent.durationMs, error: sent.error, responseBody: sent.responseBody },
      status,
      attempts,
      nextAttemptAt: next,
    });
    await this.trackHealth(endpoint.id, verdict.kind, done);
  }

  /** Success ends a failing streak; 410, or failing without a break for too long, disables the endpoint. */
  private async trackHealth(endpointId: string, verdict: 'success' | 'gone' | 'retry', now: number): Promise<void> {
    const endpoint = await this.store.getEndpoint(endpointId);
    if (!endpoint) return;
    if (verdict === 'success') {
      if (endpoint.failingSince !== undefined) await this.store.updateEndpoint({ ...endpoint, failingSince: undefined });
      return;
    }
    if (!endpoint.enabled) return;
    if (verdict === 'gone') return this.disable(endpoint, 'The endpoint answered 410 Gone.');
    const since = endpoint.failingSince ?? now;
    if (now - since >= this.config.disableAfter * 1000) {
      return this.disable({ ...endpoint, failingSince: since }, `The endpoint failed without a break for ${this.config.disableAfter} s.`);
    }
    if (endpoint.failingSince === undefined) await this.store.updateEndpoint({ ...endpoint, failingSince: since });
  }

  private async disable(endpoint: EndpointRecord, reason: string): Promise<void> {
    await this.store.updateEndpoint({ ...endpoint, enabled: false, disabledReason: reason });
    this.logger.warn({ endpoint: endpoint.id, reason }, 'endpoint disabled');
    await this.log.publish([{ channel: SYSTEM_CHANNEL, type: 'endpoint.disabled', data: { endpointId: endpoint.id, url: endpoint.url, reason } }]);
  }

  private async send(endpoint: EndpointRecord, delivery: DeliveryRecord): Promise<Sent> {
    const started = performance.now();
    const elapsed = () => Math.round((performance.now() - started) * 10) / 10;
    const url = new URL(endpoint.url);
    // A literal IP never goes through DNS, so the lookup hook cannot see it: check it here.
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const refused = isIP(host) ? this.guard.refusal(host) : undefined;
    if (refused) return { error: `SSRF guard: ${refused}`, durationMs: elapsed() };
    const secrets = liveSecrets(endpoint.secrets).map((s) => s.secret);
    const signed = sign(endpoint.scheme as Scheme, { secrets, id: delivery.eventId, body: delivery.payload });
    try {
      const res = await request(url, {
        method: 'POST',
        dispatcher: this.agent,
        headers: { ...endpoint.headers, ...signed, 'content-type': 'application/json', 'user-agent': this.userAgent },
        body: delivery.payload,
        headersTimeout: this.config.timeout * 1000,
        bodyTimeout: this.config.timeout * 1000,
        signal: AbortSignal.timeout(this.config.timeout * 1000),
      });
      const kept: Buffer[] = [];
      let keptBytes = 0;
      let read = 0;
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        read += chunk.length;
        if (keptBytes < RESPONSE_KEPT) {
          kept.push(chunk.subarray(0, RESPONSE_KEPT - keptBytes));
          keptBytes += Math.min(chunk.length, RESPONSE_KEPT - keptBytes);
        }
        if (read > RESPONSE_READ_MAX) {
          res.body.destroy();
          break;
        }
      }
      const retryAfter = res.headers['retry-after'];
      return {
        statusCode: res.statusCode,
        ...(typeof retryAfter === 'string' ? { retryAfter } : {}),
        responseBody: Buffer.concat(kept).toString('utf8'),
        durationMs: elapsed(),
      };
    } catch (err) {
      const error = err as Error & { code?: string; cause?: { code?: string; message?: string } };
      const code = error.code ?? error.cause?.code;
      return { error: `${code ? `${code}: ` : ''}${error.cause?.message ?? error.message}`, durationMs: elapsed() };
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    // In-flight attempts are abandoned; their deliveries stay pending and are retried after restart.
    await this.agent.destroy();
    await this.pumping;
    await Promise.allSettled([...this.attempts]);
  }
}

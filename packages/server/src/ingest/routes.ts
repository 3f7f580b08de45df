import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HeraldError } from '@herald/protocol';
import { verify, WebhookVerificationError } from '@herald/webhooks';
import type { AppContext } from '../http/context.js';
import { activeSecrets, appliedTolerance } from './sources-api.js';
import { maxSourceTolerance } from '../config/schema.js';
import { describe, isSlackSslCheck, parseBody } from './providers.js';
import type { IngestRecord, IngestStats } from './stats.js';
import type { SourceRecord } from '../store/types.js';
import { LogBudget } from '../util/log-budget.js';
import { assertStorablePayload } from '../log/storable-payload.js';
import { idempotencyStoreKey } from '../log/idempotency.js';
import { countInboundWebhook, type IngestOutcome } from '../metrics/index.js';
import { inSpanSync, normalizeTraceparent, parentContext } from '../tracing/index.js';

/** `webhook refused` lines per source per second, in bursts of as many; the rest are counted into the next line. */
const REFUSAL_LINES_PER_SECOND = 10;

/** The metric's outcome for a refused request, from the error code it was answered with. */
function refusalOutcome(code: string, status: number): IngestOutcome {
  if (code === 'webhook_timestamp_expired') return 'expired';
  if (code === 'webhook_signature_invalid') return 'invalid_signature';
  if (code === 'payload_too_large') return 'too_large';
  return status >= 500 ? 'error' : 'invalid';
}

/** Signature verification in a `herald.ingest.verify` span, parented on the sender's trace context. */
function verifySpan<T>(traceparent: string | undefined, provider: string, fn: () => T): T {
  return inSpanSync('herald.ingest.verify', () => parentContext(traceparent), () => ({ 'herald.provider': provider }), fn);
}

/**
 * `POST /v1/ingest/{source}`: providers deliver here. The body is kept as raw
 * bytes until the signature verifies (no JSON parse before), then deduped on
 * the provider's event id and appended durably; the 2xx goes out right after
 * the append, and fan-out happens after the answer.
 */
export function ingestRoutes(app: FastifyInstance, ctx: AppContext, stats: IngestStats): void {
  const toleranceCap = maxSourceTolerance(ctx.config);
  // `webhook refused` lines per source: anyone who knows a source's URL can send it forged requests as fast as they
  // like. The rest still count in metrics and the source's recent ingests.
  const refusalLog = new LogBudget(REFUSAL_LINES_PER_SECOND);
  const existingSource = async (name: string): Promise<SourceRecord> => {
    const source = await ctx.sources.get(name);
    if (!source) throw new HeraldError('not_found', `No source ${name}.`);
    return source;
  };
  /** Each request's source, looked up as it arrives (see onRequest below). */
  const sourceOf = new WeakMap<FastifyRequest, SourceRecord>();
  /**
   * Every answer but a 2xx, in one place: the source's stats and recent ingests, the metric, and for the sender's
   * own faults (4xx) a `webhook refused` line within the budget. `detail`: the verifier's own reason, finer than
   * the error code the sender is told.
   */
  const refused = (request: FastifyRequest, source: SourceRecord, record: Omit<IngestRecord, 'outcome'> & { status: number; reason: string }, detail?: string): void => {
    stats.record(source.name, { ...record, outcome: 'refused' });
    countInboundWebhook(source.provider, refusalOutcome(record.reason, record.status));
    // Herald's own failures (the store down, say) are logged where they happen, once per code a minute.
    if (record.status >= 500) return;
    const logged = refusalLog.admit(source.name);
    if (!logged) return;
    // Never the secret, never the body: its size and the reason are enough to debug.
    const fields = { source: source.name, provider: source.provider, reason: detail ?? record.reason, bytes: record.bytes };
    request.log.warn(logged.unlogged > 0 ? { ...fields, unlogged: logged.unlogged } : fields, 'webhook refused');
  };
  // An encapsulated scope: here, and only here, every body is a Buffer.
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    // A body over the limit is refused before the handler runs: count it here, under the source's provider.
    scope.addHook('onResponse', async (request, reply) => {
      if (reply.statusCode !== 413) return;
      const source = sourceOf.get(request);
      if (!source) return;
      const bytes = Number(request.headers['content-length'] ?? 0) || 0;
      refused(request, source, { at: new Date().toISOString(), status: 413, reason: 'payload_too_large', message: 'The body is over limits.bodyBytes.', bytes });
    });
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: ctx.config.limits.bodyBytes }, (_request, body, done) => done(null, body));

    scope.post<{ Params: { source: string }; Body: Buffer | undefined }>(
      '/v1/ingest/:source',
      {
        config: { signedByProvider: true },
        // Before the body is read: a request for no source is refused at once, not after its body (up to
        // limits.bodyBytes) was read and held, which anyone could make hundreds of connections do at a time.
        onRequest: async (request) => {
          sourceOf.set(request, await existingSource(request.params.source));
        },
      },
      async (request, reply) => {
        // Looked up again now the body is here: it can take up to limits.requestTimeout to arrive, and a source deleted
        // meanwhile (or a secret removed from it, a leaked one say) must not take it. With the record from onRequest
        // alone, it did: the event was appended and the deleted source's stats came back to life under its name.
        const source = await existingSource(request.params.source);
        const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
        if (source.provider === 'slack' && isSlackSslCheck(body, request.headers['content-type'])) return reply.code(200).send();
        const at = new Date().toISOString();
        // Every answer from here on is listed among the source's recent ingests, refusals with their reason.
        let verificationFailure: string | undefined;
        try {
          const traceparent = normalizeTraceparent(request.headers.traceparent);
          let verifiedId: string | undefined;
          try {
            verifiedId = verifySpan(traceparent, source.provider, () =>
              verify(source.provider, { secrets: activeSecrets(source), headers: request.headers, body, tolerance: appliedTolerance(source, toleranceCap) }).id,
            );
          } catch (error) {
            if (!(error instanceof WebhookVerificationError)) throw error;
            verificationFailure = error.code;
            const expired = error.code === 'timestamp_outside_tolerance';
            throw new HeraldError(expired ? 'webhook_timestamp_expired' : 'webhook_signature_invalid', error.message);
          }

          const data = parseBody(body, request.headers['content-type']);
          assertStorablePayload(ctx.config.limits.jsonDepth, { data });
          const described = describe(source.provider, request.headers, data, body, verifiedId);
          if (described.reply !== undefined) return described.reply;

          const result = await ctx.log.publish(
            [{ channel: source.channel, type: described.type, data, meta: { source: source.name, provider: source.provider, providerEventId: described.eventId } }],
            idempotencyStoreKey('ingest', source.name, described.eventId),
            { via: 'ingest', traceparent },
          );
          const event = result.events[0];
          countInboundWebhook(source.provider, result.replayed ? 'duplicate' : 'accepted');
          stats.record(source.name, {
            at,
            outcome: result.replayed ? 'duplicate' : 'accepted',
            status: 200,
            bytes: body.length,
            ...(event ? { event: { id: event.id, seq: event.seq } } : {}),
          });
          return reply.code(200).send({
            received: true,
            duplicate: result.replayed,
            ...(event ? { event: { id: event.id, channel: event.channel, seq: event.seq } } : {}),
          });
        } catch (error) {
          const refusal = error instanceof HeraldError ? error : new HeraldError('internal');
          refused(request, source, { at, status: refusal.status, reason: refusal.code, message: refusal.message, bytes: body.length }, verificationFailure);
          throw error;
        }
      },
    );
  });
}

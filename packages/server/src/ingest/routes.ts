import type { FastifyInstance } from 'fastify';
import { HeraldError } from '@herald/protocol';
import { verify, WebhookVerificationError } from '@herald/webhooks';
import type { AppContext } from '../http/context.js';
import { activeSecrets } from './sources-api.js';
import { describe, parseBody } from './providers.js';
import type { IngestStats } from './stats.js';
import { assertPayloadDepth } from '../log/payload-depth.js';
import { idempotencyStoreKey } from '../log/idempotency.js';

/**
 * `POST /v1/ingest/{source}`: providers deliver here. The body is kept as raw
 * bytes until the signature verifies (no JSON parse before), then deduped on
 * the provider's event id and appended durably; the 2xx goes out right after
 * the append, and fan-out happens after the answer.
 */
export function ingestRoutes(app: FastifyInstance, ctx: AppContext, stats: IngestStats): void {
  // An encapsulated scope: here, and only here, every body is a Buffer.
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: ctx.config.limits.bodyBytes }, (_request, body, done) => done(null, body));

    scope.post<{ Params: { source: string }; Body: Buffer | undefined }>(
      '/v1/ingest/:source',
      { config: { signedByProvider: true } },
      async (request, reply) => {
        const source = await ctx.sources.get(request.params.source);
        if (!source) throw new HeraldError('not_found', `No source ${request.params.source}.`);
        const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
        const counters = stats.of(source.name);

        let verifiedId: string | undefined;
        try {
          verifiedId = verify(source.provider, { secrets: activeSecrets(source), headers: request.headers, body, tolerance: source.tolerance }).id;
        } catch (error) {
          if (!(error instanceof WebhookVerificationError)) throw error;
          counters.refused += 1;
          // Never the secret, never the body: its size and the reason are enough to debug.
          request.log.warn({ source: source.name, provider: source.provider, reason: error.code, bytes: body.length }, 'webhook refused');
          const expired = error.code === 'timestamp_outside_tolerance';
          throw new HeraldError(expired ? 'webhook_timestamp_expired' : 'webhook_signature_invalid', error.message);
        }

        const data = parseBody(body, request.headers['content-type']);
        assertPayloadDepth(ctx.config.limits.jsonDepth, { data });
        const described = describe(source.provider, request.headers, data, body, verifiedId);
        if (described.reply !== undefined) return described.reply;

        const result = await ctx.log.publish(
          [{ channel: source.channel, type: described.type, data, meta: { source: source.name, provider: source.provider, providerEventId: described.eventId } }],
          idempotencyStoreKey('ingest', source.name, described.eventId),
        );
        const event = result.events[0];
        if (result.replayed) counters.duplicates += 1;
        else counters.accepted += 1;
        return reply.code(200).send({
          received: true,
          duplicate: result.replayed,
          ...(event ? { event: { id: event.id, channel: event.channel, seq: event.seq } } : {}),
        });
      },
    );
  });
}

import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { secretWeakness } from '@herald/webhooks';
import { adminOnly } from '../http/admin.js';
import { liveSecrets, rotate } from '../auth/rotation.js';
import { HeraldError, PROVIDERS, type Provider, type SourceInfo } from '@herald/protocol';
import type { AppContext } from '../http/context.js';
import { maxSourceTolerance } from '../config/schema.js';
import { assertChannel } from '../http/channels.js';
import type { SourceRecord } from '../store/types.js';
import type { IngestStats } from './stats.js';

export const SOURCE_NAME = '^[A-Za-z0-9_.-]{1,64}$';
const DAY = 86_400;

/** Secrets that still verify at `now`: the current one, and older ones inside their grace period. */
export function activeSecrets(record: SourceRecord, now = Date.now()): string[] {
  return liveSecrets(record.secrets, now).map((s) => s.secret);
}

/**
 * How a secret is shown: `sha256:` and the first 12 hex digits of its
 * SHA-256. Enough to tell secrets apart and to check one you hold
 * (`printf %s "$SECRET" | sha256sum`), and no character of the secret itself.
 */
export function secretFingerprint(secret: string): string {
  return `sha256:${createHash('sha256').update(secret, 'utf8').digest('hex').slice(0, 12)}`;
}

/** A secret the provider would never issue, or one too short to resist guessing, is refused (400 `weak_secret`). */
function assertStrongSecret(provider: Provider, secret: string): void {
  const weakness = secretWeakness(provider, secret);
  if (weakness) throw new HeraldError('weak_secret', weakness);
}

/**
 * The timestamp tolerance ingest applies to a source: its own, held to `cap` (maxSourceTolerance), which a source
 * made before the cap, or under a longer window since shortened, may exceed.
 */
export function appliedTolerance(record: SourceRecord, cap: number): number {
  return Math.min(record.tolerance, cap);
}

/** A source as the API shows it, with the tolerance ingest applies. */
function toInfo(record: SourceRecord, stats: IngestStats, toleranceCap: number): SourceInfo {
  const now = Date.now();
  return {
    name: record.name,
    provider: record.provider,
    channel: record.channel,
    tolerance: appliedTolerance(record, toleranceCap),
    secrets: liveSecrets(record.secrets, now).map((s) => ({ fingerprint: secretFingerprint(s.secret), ...(s.expiresAt === undefined ? {} : { expiresAt: new Date(s.expiresAt).toISOString() }) })),
    createdAt: new Date(record.createdAt).toISOString(),
    stats: { ...stats.of(record.name) },
  };
}

const secretList = { type: 'array', minItems: 1, maxItems: 10, items: { type: 'string', minLength: 1, maxLength: 1024 } } as const;

/** Admin API for inbound webhook sources: one per provider account, each with its secrets and channel. */
export function sourceRoutes(app: FastifyInstance, ctx: AppContext, stats: IngestStats): void {
  const cap = maxSourceTolerance(ctx.config);
  const admin = adminOnly(ctx);
  const load = async (name: string) => (await ctx.sources.get(name)) ?? Promise.reject(new HeraldError('not_found', `No source ${name}.`));

  app.post<{ Body: { name: string; provider: Provider; secrets: string[]; channel?: string; tolerance?: number } }>(
    '/v1/sources',
    {
      ...admin,
      schema: {
        body: {
          type: 'object',
          required: ['name', 'provider', 'secrets'],
          additionalProperties: false,
          properties: {
            name: { type: 'string', pattern: SOURCE_NAME },
            provider: { type: 'string', enum: PROVIDERS },
            secrets: secretList,
            channel: { type: 'string' },
            tolerance: { type: 'integer', minimum: 1, maximum: 7 * DAY },
          },
        },
      },
    },
    async (request, reply) => {
      const { name, provider, secrets, channel = name, tolerance = ctx.config.ingest.tolerance } = request.body;
      assertChannel(channel);
      if (tolerance > cap) {
        throw new HeraldError(
          'bad_request',
          `A tolerance of ${tolerance} s would accept replays after their dedupe id is forgotten: at most ${cap} s, half the longer of retention.maxAge and ingest.dedupeWindow.`,
        );
      }
      for (const secret of secrets) assertStrongSecret(provider, secret);
      const record: SourceRecord = { name, provider, channel, tolerance, secrets: secrets.map((secret) => ({ secret })), createdAt: Date.now() };
      if (!(await ctx.sources.insert(record))) throw new HeraldError('conflict', `A source named ${name} exists already.`);
      return reply.code(201).send(toInfo(record, stats, cap));
    },
  );

  app.get('/v1/sources', admin, async () => ({ sources: (await ctx.sources.list()).map((r) => toInfo(r, stats, cap)) }));

  app.get<{ Params: { name: string } }>('/v1/sources/:name', admin, async (request) => toInfo(await load(request.params.name), stats, cap));

  // The latest requests to the source's ingest URL, newest first, refusals with their reason: what a person
  // checks when a provider says it delivered and nothing arrived.
  app.get<{ Params: { name: string } }>('/v1/sources/:name/ingests', admin, async (request) => {
    const record = await load(request.params.name);
    return { ingests: stats.recent(record.name) };
  });

  app.delete<{ Params: { name: string } }>('/v1/sources/:name', admin, async (request, reply) => {
    if (!(await ctx.sources.delete(request.params.name))) throw new HeraldError('not_found', `No source ${request.params.name}.`);
    stats.forget(request.params.name);
    return reply.code(204).send();
  });

  app.post<{ Params: { name: string }; Body: { secret: string; graceSeconds: number } }>(
    '/v1/sources/:name/rotate',
    {
      ...admin,
      schema: {
        body: {
          type: 'object',
          required: ['secret'],
          additionalProperties: false,
          properties: {
            secret: { type: 'string', minLength: 1, maxLength: 1024 },
            graceSeconds: { type: 'integer', minimum: 0, maximum: 30 * DAY, default: DAY },
          },
        },
      },
    },
    async (request) => {
      const record = await load(request.params.name);
      assertStrongSecret(record.provider, request.body.secret);
      // The new secret is current; the old ones keep verifying until the grace period ends.
      record.secrets = rotate(record.secrets, request.body.secret, request.body.graceSeconds);
      await ctx.sources.setSecrets(record.name, record.secrets);
      return toInfo(record, stats, cap);
    },
  );
}

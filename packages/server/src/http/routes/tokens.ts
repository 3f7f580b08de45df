import type { FastifyInstance } from 'fastify';
import { HeraldError } from '@herald/protocol';
import { patternCovered } from '../../auth/patterns.js';
import type { Principal } from '../../auth/principal.js';
import type { AppContext } from '../context.js';
import { channelPatternList } from '../schemas.js';

const MAX_TTL = 30 * 24 * 3600;

interface MintBody {
  sub: string;
  channels: string[];
  publish?: string[];
  ttl: number;
}

/** Who may mint at all: an API key (or the admin key), never a token. Checked before the body is read. */
function assertMayMint(principal: Principal | undefined): asserts principal is Principal {
  if (!principal) throw new HeraldError('unauthorized', 'Minting a token needs the admin key or an API key.');
  if (!principal.admin && principal.kind !== 'key') throw new HeraldError('forbidden', 'Only the admin key or an API key can mint tokens, not a token.');
}

/** A key may mint tokens only for what it can do itself; a token can mint nothing. */
function assertMayGrant(principal: Principal | undefined, body: MintBody): void {
  assertMayMint(principal);
  if (principal.admin) return;
  for (const pattern of body.channels) {
    if (!patternCovered(principal.subscribe, pattern)) {
      throw new HeraldError('forbidden', `This key may not grant reading ${pattern}.`);
    }
  }
  for (const pattern of body.publish ?? []) {
    if (!patternCovered(principal.publish, pattern)) {
      throw new HeraldError('forbidden', `This key may not grant publishing to ${pattern}.`);
    }
  }
}

export function tokenRoutes(app: FastifyInstance, ctx: AppContext): void {
  app.post<{ Body: MintBody }>(
    '/v1/tokens',
    {
      schema: {
        body: {
          type: 'object',
          required: ['sub', 'channels'],
          additionalProperties: false,
          properties: {
            sub: { type: 'string', minLength: 1, maxLength: 256 },
            channels: channelPatternList,
            publish: channelPatternList,
            ttl: { type: 'integer', minimum: 1, maximum: MAX_TTL, default: 3600 },
          },
        },
      },
      // A caller who may not mint is refused before its body is read.
      onRequest: async (request) => assertMayMint(request.principal),
    },
    async (request, reply) => {
      const body = request.body;
      assertMayGrant(request.principal, body);
      const claims = body.publish ? { sub: body.sub, channels: body.channels, publish: body.publish } : { sub: body.sub, channels: body.channels };
      // The token names its minting key (not the admin key), so revoking that key ends the token too.
      const keyId = request.principal!.kind === 'key' ? request.principal!.id : undefined;
      const { token, expiresAt } = await ctx.auth.tokens.mint(claims, body.ttl, keyId);
      return reply.code(201).send({ token, expiresAt: new Date(expiresAt * 1000).toISOString(), ...claims });
    },
  );
}

import type { FastifyInstance } from 'fastify';
import { adminOnly } from '../admin.js';
import { HeraldError, type ApiKeyInfo, type CreatedApiKey, type Scope } from '@herald/protocol';
import type { ApiKeyRecord } from '../../store/types.js';
import { generateApiKey, randomId } from '../../auth/secrets.js';
import type { AppContext } from '../context.js';
import { channelPatternList, scopeList } from '../schemas.js';

function toInfo(record: ApiKeyRecord): ApiKeyInfo {
  return {
    id: record.id,
    name: record.name,
    scopes: record.scopes,
    channels: record.channels,
    prefix: record.prefix,
    createdAt: new Date(record.createdAt).toISOString(),
    revokedAt: record.revokedAt === undefined ? undefined : new Date(record.revokedAt).toISOString(),
  };
}

/** API keys: created, listed and revoked by an admin. The key itself is shown once. */
export function keyRoutes(app: FastifyInstance, ctx: AppContext): void {
  const admin = adminOnly(ctx);

  app.post<{ Body: { name: string; scopes: Scope[]; channels: string[] } }>(
    '/v1/keys',
    {
      ...admin,
      schema: {
        body: {
          type: 'object',
          required: ['name', 'scopes', 'channels'],
          additionalProperties: false,
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 200 },
            scopes: scopeList,
            channels: { ...channelPatternList, minItems: 1 },
          },
        },
      },
    },
    async (request, reply) => {
      const { key, hash, prefix } = generateApiKey();
      const record: ApiKeyRecord = {
        id: randomId('key_'),
        name: request.body.name,
        scopes: request.body.scopes,
        channels: request.body.channels,
        prefix,
        hash,
        createdAt: Date.now(),
      };
      await ctx.keys.insert(record);
      const created: CreatedApiKey = { ...toInfo(record), key };
      return reply.code(201).send(created);
    },
  );

  app.get('/v1/keys', admin, async () => ({ keys: (await ctx.keys.list()).map(toInfo) }));

  app.get<{ Params: { id: string } }>('/v1/keys/:id', admin, async (request) => {
    const record = await ctx.keys.get(request.params.id);
    if (!record) throw new HeraldError('not_found', `No key ${request.params.id}.`);
    return toInfo(record);
  });

  app.delete<{ Params: { id: string } }>('/v1/keys/:id', admin, async (request) => {
    const { id } = request.params;
    if (!(await ctx.keys.get(id))) throw new HeraldError('not_found', `No key ${id}.`);
    await ctx.keys.revoke(id, Date.now());
    ctx.auth.liveness.forget(id);
    return toInfo((await ctx.keys.get(id))!);
  });
}

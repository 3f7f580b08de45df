import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { HeraldError } from '@herald/protocol';
import type { AppContext } from '../http/context.js';
import { DEMO_TOKEN_TTL_SECONDS, EXAMPLE_ROOM, exampleRoomChannel } from './webrtc.js';

/**
 * The example's files live at the repository's root (`examples/webrtc`), and the SDK it imports is the
 * built `@herald/client` and `@herald/protocol`. This module is `src/examples/routes.ts` from source and
 * `dist/examples/routes.js` built, the same depth either way, so the same relative paths find them.
 */
const EXAMPLE_ROOT = fileURLToPath(new URL('../../../../examples/webrtc/', import.meta.url));
const SDK_ROOTS: Readonly<Record<string, string>> = {
  client: fileURLToPath(new URL('../../../client/dist/', import.meta.url)),
  protocol: fileURLToPath(new URL('../../../protocol/dist/', import.meta.url)),
};
/** The example's files, and nothing else from its folder. */
const EXAMPLE_FILES: Readonly<Record<string, string>> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
};
/** A module path inside a package's dist: lower-case names and `/`, ending in `.js`; no `..`, no dots elsewhere. */
const SDK_FILE = /^[a-z0-9-]+(?:\/[a-z0-9-]+)*\.js$/;
const HEADERS = { 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer', 'cache-control': 'no-cache' };

async function fileOrNotFound(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch {
    throw new HeraldError('not_found', 'No such file.');
  }
}

/**
 * `/examples/webrtc/` and its demo tokens, only with `examples.enabled`. A demo token is minted for anyone
 * who asks (that is the point of a demo), but it covers one room's channel and nothing else, for an hour.
 */
export function exampleRoutes(app: FastifyInstance, ctx: AppContext): void {
  if (!ctx.config.examples.enabled) return;
  app.get('/examples/webrtc', async (_request, reply) => reply.redirect('/examples/webrtc/', 301));
  app.get('/examples/webrtc/', async (_request, reply) =>
    reply.headers(HEADERS).type(EXAMPLE_FILES['index.html']!).send(await fileOrNotFound(resolve(EXAMPLE_ROOT, 'index.html'))),
  );
  app.get<{ Params: { file: string } }>('/examples/webrtc/:file', async (request, reply) => {
    const type = Object.hasOwn(EXAMPLE_FILES, request.params.file) ? EXAMPLE_FILES[request.params.file] : undefined;
    if (!type) throw new HeraldError('not_found', `No file ${request.params.file} in the example.`);
    return reply.headers(HEADERS).type(type).send(await fileOrNotFound(resolve(EXAMPLE_ROOT, request.params.file)));
  });
  app.get<{ Params: { pkg: string; '*': string } }>('/examples/sdk/:pkg/*', async (request, reply) => {
    const root = Object.hasOwn(SDK_ROOTS, request.params.pkg) ? SDK_ROOTS[request.params.pkg] : undefined;
    const file = request.params['*'];
    if (!root || !SDK_FILE.test(file)) throw new HeraldError('not_found', 'No such SDK module.');
    const path = resolve(root, file);
    if (!path.startsWith(root.endsWith(sep) ? root : root + sep)) throw new HeraldError('not_found', 'No such SDK module.');
    return reply.headers(HEADERS).type('text/javascript; charset=utf-8').send(await fileOrNotFound(path));
  });
  app.post<{ Body: { room: string } }>(
    '/examples/webrtc/token',
    {
      schema: {
        body: { type: 'object', required: ['room'], additionalProperties: false, properties: { room: { type: 'string', pattern: EXAMPLE_ROOM.source } } },
        response: {
          201: {
            type: 'object',
            properties: { token: { type: 'string' }, sub: { type: 'string' }, channel: { type: 'string' }, expiresAt: { type: 'string' } },
          },
        },
      },
    },
    async (request, reply) => {
      const channel = exampleRoomChannel(request.body.room);
      const sub = `demo-${randomBytes(6).toString('hex')}`;
      const { token, expiresAt } = await ctx.auth.tokens.mint({ sub, channels: [channel], publish: [channel] }, DEMO_TOKEN_TTL_SECONDS);
      return reply.code(201).send({ token, sub, channel, expiresAt: new Date(expiresAt * 1000).toISOString() });
    },
  );
}

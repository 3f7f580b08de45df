import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import fastifyStatic from '@fastify/static';
import { HeraldError } from '@herald/protocol';
import { loadVendorAssets, UI_ROOT } from './assets.js';
import { ASSET_HEADERS, pageHeaders, type PageSecurity } from './headers.js';

/** Where the browser files are served: `/ui/shared/…` and `/ui/vendor/…` are for every page Herald serves. */
export const UI_PREFIX = '/ui/';

/**
 * `/ui/*`: the files of `packages/server/ui` (`shared/`, `console/`, and any other page's folder), and
 * `/ui/vendor/*`: the third-party libraries from node_modules (see assets.ts). Register once per app.
 */
export function uiRoutes(app: FastifyInstance): void {
  const vendor = loadVendorAssets();
  void app.register(async (scope) => {
    await scope.register(fastifyStatic, {
      root: UI_ROOT,
      prefix: UI_PREFIX,
      // No directory listings and no index files: every file is named by the page that loads it, so a
      // path without a file extension (a folder) is simply not found.
      index: false,
      list: false,
      wildcard: true,
      // HTML only through pageRoute: served from here a page would lose its CSP and framing rules (frame-ancestors).
      allowedPath: (pathName) => /\.[A-Za-z0-9]+$/.test(pathName) && !/\.html?$/i.test(pathName),
      // In the OpenAPI document like every other route.
      schemaHide: false,
      decorateReply: false,
      // Cache-Control comes from ASSET_HEADERS (revalidate by ETag), not from the plugin's max-age.
      cacheControl: false,
      setHeaders: (res) => {
        for (const [name, value] of Object.entries(ASSET_HEADERS)) res.setHeader(name, value);
      },
    });
  });
  app.get<{ Params: { file: string } }>(`${UI_PREFIX}vendor/:file`, async (request, reply) => {
    const asset = vendor.get(request.params.file);
    if (!asset) throw new HeraldError('not_found', `No vendored file ${request.params.file}.`);
    void reply.headers({ ...ASSET_HEADERS, etag: asset.etag, 'content-type': asset.contentType });
    if (request.headers['if-none-match'] === asset.etag) return reply.code(304).send();
    return reply.send(asset.body);
  });
}

/**
 * An HTML page at `url`: the file `file` under `packages/server/ui`, with the security headers its use
 * calls for. The file is read on each request (it is a few hundred bytes), so an edit shows on reload.
 */
export function pageRoute(app: FastifyInstance, url: string, file: string, security: PageSecurity): void {
  const path = join(UI_ROOT, file);
  const headers = pageHeaders(security);
  app.get(url, async (_request, reply) => {
    const html = await readFile(path);
    return reply.headers(headers).type('text/html; charset=utf-8').send(html);
  });
  // `/console/` and `/console` are one page; the page's module paths are absolute, so either would work,
  // but one address keeps bookmarks and history tidy.
  app.get(`${url}/`, async (_request, reply) => reply.redirect(url, 301));
}

/** The web console at `/console`: admin only, so never in a frame. */
export function consoleRoutes(app: FastifyInstance): void {
  pageRoute(app, '/console', 'console/index.html', { frameAncestors: 'none' });
}

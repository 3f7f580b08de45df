// The SDK in a real browser: Debian's chromium, driven by playwright-core, loading the SDK's own source as ES modules.
import { createServer, type Server } from 'node:http';
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

export { CHROMIUM, CHROMIUM_FLAGS } from '../../server/test/support/chromium.js';

const SOURCES: Record<string, string> = {
  client: fileURLToPath(new URL('../src/', import.meta.url)),
  protocol: fileURLToPath(new URL('../../protocol/src/', import.meta.url)),
};

/**
 * A site on an origin of its own (Herald's differs by port, as a real app's would): `/` is a page that loads
 * `@herald/client` and sets `window.Herald` (then `window.sdkReady`). Its modules are the TypeScript sources,
 * transpiled as asked for, so the page runs the code under test, with no build step and no bundler.
 */
export async function serveSdkPage(): Promise<{ origin: string; close(): Promise<void> }> {
  const page = `<!doctype html><meta charset="utf-8"><title>herald sdk</title>
<script type="importmap">{"imports":{"@herald/protocol":"/sdk/protocol/index.js"}}</script>
<script type="module">import { Herald } from '/sdk/client/index.js'; window.Herald = Herald; window.sdkReady = true;</script>`;
  const site: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://site').pathname;
    if (path === '/') return void res.writeHead(200, { 'content-type': 'text/html' }).end(page);
    const module = /^\/sdk\/(client|protocol)\/((?:[\w-]+\/)*[\w-]+)\.js$/.exec(path);
    if (!module) return void res.writeHead(404).end();
    readFile(`${SOURCES[module[1]!]}${module[2]}.ts`, 'utf8').then(
      (source) => {
        const { outputText } = ts.transpileModule(source, {
          compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
        });
        res.writeHead(200, { 'content-type': 'text/javascript' }).end(outputText);
      },
      () => res.writeHead(404).end(),
    );
  });
  await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
  return {
    origin: `http://127.0.0.1:${(site.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => site.close(() => resolve())),
  };
}

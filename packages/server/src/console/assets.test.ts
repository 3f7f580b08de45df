import { it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadVendorAssets, rewriteImports, UI_ROOT } from './assets.js';
import { pageHeaders } from './headers.js';

it('points bare imports at the vendored file, minified or not, and leaves other strings alone', () => {
  const map = { preact: './preact.mjs' };
  assert.equal(rewriteImports('import{options as n}from"preact";', map), 'import{options as n}from"./preact.mjs";');
  assert.equal(rewriteImports("import { h } from 'preact';\nimport('preact')", map), "import { h } from './preact.mjs';\nimport('./preact.mjs')");
  assert.equal(rewriteImports('import"preact";', map), 'import"./preact.mjs";');
  assert.equal(rewriteImports('from"preact/hooks";from"preactx";const s="preact"', map), 'from"preact/hooks";from"preactx";const s="preact"');
});

it('finds the UI folder from source and loads every vendored library from node_modules', () => {
  assert.ok(existsSync(join(UI_ROOT, 'console', 'index.html')), UI_ROOT);
  const assets = loadVendorAssets();
  assert.deepEqual([...assets.keys()].sort(), ['htm.mjs', 'preact-hooks.mjs', 'preact.mjs', 'uplot.css', 'uplot.mjs']);
  assert.match(assets.get('preact-hooks.mjs')!.body.toString(), /from"\.\/preact\.mjs"/);
  assert.match(assets.get('uplot.mjs')!.body.toString(), /export \{ uPlot as default \}/, 'the ES module, not the CommonJS build');
  assert.match(assets.get('htm.mjs')!.body.toString(), /export\s*\{|export default/);
  assert.match(assets.get('uplot.css')!.contentType, /^text\/css/);
});

it('lets the console be framed by nobody and a portal by the origins it names', () => {
  const console = pageHeaders({ frameAncestors: 'none' });
  assert.match(console['content-security-policy']!, /frame-ancestors 'none'/);
  assert.equal(console['x-frame-options'], 'DENY');
  const portal = pageHeaders({ frameAncestors: ['https://app.example', 'https://admin.example'], images: ['https://cdn.example'] });
  assert.match(portal['content-security-policy']!, /frame-ancestors https:\/\/app.example https:\/\/admin.example/);
  assert.match(portal['content-security-policy']!, /img-src 'self' data: https:\/\/cdn.example/);
  assert.equal(portal['x-frame-options'], undefined, 'X-Frame-Options cannot name origins: CSP alone decides');
  assert.throws(() => pageHeaders({ frameAncestors: ["https://a.example; script-src 'unsafe-inline'"] }), /CSP source/);
  assert.throws(() => pageHeaders({ frameAncestors: 'none', images: ['https://a.example https://b.example'] }), /CSP source/);
  for (const headers of [console, portal]) {
    assert.match(headers['content-security-policy']!, /script-src 'self'; /);
    assert.doesNotMatch(headers['content-security-policy']!, /unsafe/);
  }
});

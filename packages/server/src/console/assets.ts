import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The browser files (`packages/server/ui`). They live outside `src` because tsc compiles `src` into `dist`:
 * this module is `src/console/assets.ts` when run from source (tsx) and `dist/console/assets.js` when
 * built, two folders below the package root either way, so the same relative path finds them.
 */
export const UI_ROOT = fileURLToPath(new URL('../../ui/', import.meta.url));

/** A third-party file served as it ships in node_modules, with its bare imports pointed at its neighbours. */
interface VendorFile {
  /** The name under `/ui/vendor/`. */
  name: string;
  /** Resolved like an import from this package: `package` or `package/subpath`. */
  module: string;
  /** A file beside the resolved module, served instead of it. */
  sibling?: string;
  /**
   * Bare specifiers the browser cannot resolve without an import map (an import map is an inline script,
   * which the console's CSP forbids), mapped to the vendored file that provides them.
   */
  imports?: Record<string, string>;
}

/**
 * The UI's libraries: Preact and its hooks, htm (JSX-like tagged templates, so no build step) and uPlot.
 * They are read from node_modules at start-up, so `npm install && npm start` is all it takes, offline.
 */
const VENDOR_FILES: readonly VendorFile[] = [
  { name: 'preact.mjs', module: 'preact' },
  { name: 'preact-hooks.mjs', module: 'preact/hooks', imports: { preact: './preact.mjs' } },
  // Resolved through their main (CommonJS) entry, whose folder holds the ES module and stylesheet too:
  // their `exports` name no other subpath.
  { name: 'htm.mjs', module: 'htm', sibling: 'htm.mjs' },
  { name: 'uplot.mjs', module: 'uplot', sibling: 'uPlot.esm.js' },
  { name: 'uplot.css', module: 'uplot', sibling: 'uPlot.min.css' },
];

export interface VendorAsset {
  body: Buffer;
  contentType: string;
  /** A strong validator: the hash of the body, so a library upgrade is fetched again at once. */
  etag: string;
}

const CONTENT_TYPES: Record<string, string> = {
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/** Points `from"x"` / `import "x"` at the vendored file; minified or not, the specifier is a quoted string. */
export function rewriteImports(source: string, imports: Record<string, string>): string {
  let out = source;
  for (const [bare, target] of Object.entries(imports)) {
    const escaped = bare.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    out = out.replace(new RegExp(`(\\bfrom\\s*|\\bimport\\s*\\(?\\s*)(["'])${escaped}\\2`, 'g'), `$1$2${target}$2`);
  }
  return out;
}

/** Every vendored file, read once. Throws at start-up if a library is missing, rather than serving a broken page. */
export function loadVendorAssets(): Map<string, VendorAsset> {
  const require = createRequire(import.meta.url);
  const assets = new Map<string, VendorAsset>();
  for (const file of VENDOR_FILES) {
    const resolved = require.resolve(file.module);
    const path = file.sibling ? join(dirname(resolved), file.sibling) : resolved;
    let text = readFileSync(path, 'utf8');
    if (file.imports) text = rewriteImports(text, file.imports);
    const body = Buffer.from(text);
    const extension = file.name.slice(file.name.lastIndexOf('.'));
    assets.set(file.name, {
      body,
      contentType: CONTENT_TYPES[extension]!,
      etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
    });
  }
  return assets;
}

#!/usr/bin/env node
// Runs the built CLI. In a clone (src present), builds first when the build is missing or stale,
// so `npm start` and `npx herald` work straight after `npm install` or a pull.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

const pkgDir = dirname(dirname(fileURLToPath(import.meta.url)));
const entry = join(pkgDir, 'dist', 'cli', 'run.js');

/** True as soon as one source file under `dir` is newer than `since` (tests, conformance suites, node_modules and dist skipped: none of them is built). */
function changedSince(dir, since) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name === 'dist' || entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (changedSince(path, since)) return true;
    } else if (!/\.(test|conformance)\.ts$/.test(entry.name) && statSync(path).mtimeMs > since) {
      return true;
    }
  }
  return false;
}

const repo = dirname(dirname(pkgDir));
if (existsSync(join(pkgDir, 'src')) && existsSync(join(repo, 'tsconfig.json'))) {
  // The server and every workspace its build references (protocol, webhooks, client), each against its own
  // build stamp: only their src directories are walked, and the walk stops at the first newer file.
  const references = JSON.parse(readFileSync(join(pkgDir, 'tsconfig.json'), 'utf8')).references ?? [];
  const packages = [pkgDir, ...references.map((ref) => join(pkgDir, ref.path))];
  const stale = !existsSync(entry) || packages.some((dir) => {
    const stamp = join(dir, 'dist', '.tsbuildinfo');
    if (!existsSync(stamp)) return true;
    return existsSync(join(dir, 'src')) && changedSince(join(dir, 'src'), statSync(stamp).mtimeMs);
  });
  if (stale) {
    const tsc = createRequire(join(repo, 'package.json')).resolve('typescript/bin/tsc');
    process.stderr.write('herald: building…\n');
    const result = spawnSync(process.execPath, [tsc, '-b', repo], { stdio: 'inherit' });
    if (result.status !== 0) process.exit(result.status ?? 1);
  }
}

await import(pathToFileURL(entry).href);

#!/usr/bin/env node
// Runs the built CLI. In a clone (src present), builds first when the build is missing or stale,
// so `npm start` and `npx herald` work straight after `npm install` or a pull.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

const pkgDir = dirname(dirname(fileURLToPath(import.meta.url)));
const entry = join(pkgDir, 'dist', 'cli', 'run.js');

function newest(dir) {
  let latest = 0;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const stat = statSync(path);
    latest = Math.max(latest, stat.isDirectory() ? newest(path) : stat.mtimeMs);
  }
  return latest;
}

const repo = dirname(dirname(pkgDir));
if (existsSync(join(pkgDir, 'src')) && existsSync(join(repo, 'tsconfig.json'))) {
  const stamp = join(pkgDir, 'dist', '.tsbuildinfo');
  const sources = [join(pkgDir, 'src'), join(repo, 'packages', 'protocol', 'src')].filter(existsSync);
  const stale = !existsSync(entry) || !existsSync(stamp) || Math.max(...sources.map(newest)) > statSync(stamp).mtimeMs;
  if (stale) {
    const tsc = createRequire(join(repo, 'package.json')).resolve('typescript/bin/tsc');
    process.stderr.write('herald: building…\n');
    const result = spawnSync(process.execPath, [tsc, '-b', repo], { stdio: 'inherit' });
    if (result.status !== 0) process.exit(result.status ?? 1);
  }
}

await import(pathToFileURL(entry).href);

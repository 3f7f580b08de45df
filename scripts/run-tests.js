#!/usr/bin/env node
// Runs every *.test.ts with node:test through tsx. Node 20's --test takes no globs, so the files are listed here.
//
// Files start slowest first (by the durations the last run recorded, else end-to-end before unit tests), so
// the run does not end on one long file started last. `--durations` prints each file's duration at the end;
// HERALD_TEST_CONCURRENCY sets how many files run at once.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';
import { DURATIONS_FILE } from './test-durations-reporter.mjs';

const root = new URL('..', import.meta.url).pathname;
const skip = new Set(['node_modules', 'dist', '.git']);

function find(dir, out = []) {
  for (const name of readdirSync(dir)) {
    if (skip.has(name)) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) find(path, out);
    else if (name.endsWith('.test.ts')) out.push(relative(root, path));
  }
  return out;
}

function lastDurations() {
  try {
    return JSON.parse(readFileSync(join(root, DURATIONS_FILE), 'utf8'));
  } catch {
    return {};
  }
}

const args = process.argv.slice(2);
const durations = args.includes('--durations');
const filter = args.filter((a) => a !== '--durations');
const known = lastDurations();
// Unknown files: end-to-end ones (in a test/ folder) count as slow, unit tests as quick.
const weight = (file) => known[file] ?? (file.includes('/test/') ? 60_000 : 0);
const files = find(join(root, 'packages'))
  .filter((f) => filter.length === 0 || filter.some((s) => f.includes(s)))
  .sort((a, b) => weight(b) - weight(a) || a.localeCompare(b));
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
const concurrency = process.env.HERALD_TEST_CONCURRENCY ?? '2';
const result = spawnSync(
  process.execPath,
  [
    '--conditions=herald-source',
    '--import',
    'tsx',
    '--test',
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    '--test-reporter=./scripts/test-durations-reporter.mjs',
    '--test-reporter-destination=stdout',
    `--test-concurrency=${concurrency}`,
    ...files,
  ],
  { cwd: root, stdio: 'inherit', env: { ...process.env, HERALD_TEST_DURATIONS: durations ? '1' : '' } },
);
process.exit(result.status ?? 1);

// A node:test reporter that records how long each test file took (the sum of its top-level tests, which run
// one after another), so scripts/run-tests.js can start the slowest files first next time. With
// HERALD_TEST_DURATIONS=1 (`run-tests.js --durations`) it also prints them, slowest first.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** Relative to the repository root; under node_modules so it is never committed. */
export const DURATIONS_FILE = 'node_modules/.cache/herald-tests/durations.json';

export default async function* durations(source) {
  const perFile = new Map();
  for await (const { type, data } of source) {
    if ((type !== 'test:pass' && type !== 'test:fail') || data.nesting !== 0 || !data.file) continue;
    perFile.set(data.file, (perFile.get(data.file) ?? 0) + (data.details?.duration_ms ?? 0));
  }
  const root = new URL('..', import.meta.url).pathname;
  const relative = (file) => (file.startsWith(root) ? file.slice(root.length) : file);
  const rows = [...perFile].map(([file, ms]) => [relative(file), Math.round(ms)]).sort((a, b) => b[1] - a[1]);
  const path = join(root, DURATIONS_FILE);
  try {
    let saved = {};
    try {
      saved = JSON.parse(readFileSync(path, 'utf8'));
    } catch {
      // first run
    }
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, JSON.stringify({ ...saved, ...Object.fromEntries(rows) }, null, 1));
  } catch {
    // Only an ordering hint: a read-only checkout runs in the default order.
  }
  if (process.env.HERALD_TEST_DURATIONS !== '1') return;
  const total = rows.reduce((sum, [, ms]) => sum + ms, 0);
  yield `\nper-file durations (sum of top-level tests; ${(total / 1000).toFixed(1)} s in all):\n`;
  for (const [file, ms] of rows) yield `${(ms / 1000).toFixed(1).padStart(7)} s  ${file}\n`;
}

#!/usr/bin/env node
// Prints the mutation score per module from Stryker's JSON report (npm run mutate writes it).
// Score = (killed + timed out) / (killed + timed out + survived + no coverage), as Stryker counts it;
// mutants that do not compile or that Stryker ignored are left out. `--min=85` exits 1 when a module is below.
import { readFileSync } from 'node:fs';

const reportPath = new URL('../reports/mutation/mutation.json', import.meta.url);
const minArg = process.argv.find((a) => a.startsWith('--min='));
const min = minArg ? Number(minArg.slice('--min='.length)) : undefined;

/** Modules as issue 16 names them; a file belongs to the first module whose prefix it starts with. */
const MODULES = [
  ['auth patterns', 'packages/server/src/auth/patterns.ts'],
  ['auth tokens', 'packages/server/src/auth/tokens.ts'],
  ['webhook schemes', 'packages/webhooks/src/'],
  ['cursor codec', 'packages/protocol/src/cursor.ts'],
  ['delivery outcome & schedule', 'packages/server/src/delivery/outcome.ts'],
  ['SSRF guard', 'packages/server/src/delivery/ssrf.ts'],
  ['channel feed', 'packages/server/src/transports/feed.ts'],
  ['ingest dedupe', 'packages/server/src/ingest/'],
  ['ingest dedupe', 'packages/server/src/log/idempotency.ts'],
];

let report;
try {
  report = JSON.parse(readFileSync(reportPath, 'utf8'));
} catch {
  console.error('No reports/mutation/mutation.json: run `npm run mutate` first.');
  process.exit(1);
}

const DETECTED = new Set(['Killed', 'Timeout']);
const UNDETECTED = new Set(['Survived', 'NoCoverage']);
const empty = () => ({ killed: 0, survived: 0, noCoverage: 0 });
const rows = new Map();
const files = new Map();
const root = process.cwd().replace(/\/$/, '') + '/';

for (const [path, file] of Object.entries(report.files)) {
  const relative = path.startsWith(root) ? path.slice(root.length) : path;
  const module = MODULES.find(([, prefix]) => relative.startsWith(prefix))?.[0] ?? 'other';
  for (const target of [rows, files]) {
    const key = target === rows ? module : relative;
    if (!target.has(key)) target.set(key, empty());
  }
  for (const mutant of file.mutants) {
    for (const counts of [rows.get(module), files.get(relative)]) {
      if (DETECTED.has(mutant.status)) counts.killed += 1;
      else if (mutant.status === 'NoCoverage') counts.noCoverage += 1;
      else if (UNDETECTED.has(mutant.status)) counts.survived += 1;
    }
  }
}

const score = (c) => {
  const total = c.killed + c.survived + c.noCoverage;
  return total === 0 ? 100 : (100 * c.killed) / total;
};

function table(title, map) {
  const width = Math.max(title.length, ...[...map.keys()].map((k) => k.length));
  console.log(`${title.padEnd(width)}  score   killed  survived  no-cov`);
  for (const [name, c] of map) {
    console.log(`${name.padEnd(width)}  ${score(c).toFixed(1).padStart(5)}%  ${String(c.killed).padStart(6)}  ${String(c.survived).padStart(8)}  ${String(c.noCoverage).padStart(6)}`);
  }
}

table('module', rows);
console.log('');
table('file', files);

if (min !== undefined) {
  const low = [...rows].filter(([, c]) => score(c) < min);
  for (const [name, c] of low) console.error(`${name}: ${score(c).toFixed(1)}% is below ${min}%`);
  process.exit(low.length > 0 ? 1 : 0);
}

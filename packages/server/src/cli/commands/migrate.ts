import { parseArgs } from 'node:util';
import { CliError, usage } from '../common.js';
import { MigrateError, migrateToPostgres, type MigrateSummary } from '../../store/migrate/migrate.js';
import { redact } from '../../util/redact-url.js';

export const MIGRATE_HELP = `Usage: herald migrate --from <data dir> --to <postgres://…> [--force]

Copies a SQLite deployment into PostgreSQL, to run it as a cluster: every
event with its seq, id, type, time, data and meta, each channel's epoch, head
and trim mark (so clients' cursors stay valid), API keys, the admin key hash,
the token secret (so issued tokens keep verifying), sources and endpoints with
their secrets, deliveries with their attempts, the dispatcher's cursors and the
idempotency keys. Stop the server first.

Safe to interrupt: run the same command again and it continues where it
stopped, without duplicating anything. Refuses a target that holds other data.
Progress and a summary go to stderr.

Options:
  --from <dir>     the data directory holding herald.db (default ./herald-data)
  --to <url>       the PostgreSQL database (env HERALD_STORE_URL)
  --force          erase whatever the target holds first, then copy
  --batch <rows>   rows per transaction (default 2000)
  -h, --help       show this help
`;

/** Test hook: kill -9 this process after that many committed writes, to interrupt a copy at an exact point. */
const CRASH_AFTER_ENV = 'HERALD_MIGRATE_CRASH_AFTER';

function summary(s: MigrateSummary): string {
  const rows = Object.entries(s.counts).map(([kind, n]) => {
    const w = s.written[kind as keyof MigrateSummary['written']];
    return `  ${kind.padEnd(12)} ${String(n).padStart(10)}${w > 0 && w !== n ? `   (${w} written by this run)` : ''}`;
  });
  const how = s.alreadyDone ? 'already migrated' : s.resumed ? 'resumed and finished' : 'done';
  return `migrate: ${how} in ${(s.ms / 1000).toFixed(1)} s; the target holds:\n${rows.join('\n')}\n`;
}

export async function migrate(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      from: { type: 'string' },
      to: { type: 'string' },
      force: { type: 'boolean' },
      batch: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) return void process.stdout.write(MIGRATE_HELP);
  const from = values.from ?? './herald-data';
  const to = values.to ?? process.env.HERALD_STORE_URL;
  if (!to) throw usage('--to <postgres://…> is required (or set HERALD_STORE_URL)');
  let protocol: string;
  try {
    protocol = new URL(to).protocol;
  } catch {
    throw usage('--to is not a URL: expected postgres://user:password@host:port/database');
  }
  if (protocol !== 'postgres:' && protocol !== 'postgresql:') throw usage(`--to must be a postgres:// URL, got ${protocol}//…`);
  const batch = values.batch === undefined ? 2000 : Number(values.batch);
  if (!Number.isSafeInteger(batch) || batch < 1 || batch > 100_000) throw usage('--batch takes a number of rows from 1 to 100000');

  let afterCommit: (() => void) | undefined;
  const crashAfter = Number(process.env[CRASH_AFTER_ENV]);
  if (crashAfter > 0) {
    let commits = 0;
    afterCommit = () => {
      if (++commits >= crashAfter) process.kill(process.pid, 'SIGKILL');
    };
  }

  process.stderr.write(`migrate: ${from} → ${redact(to)}\n`);
  try {
    const result = await migrateToPostgres({
      from,
      to,
      force: values.force === true,
      batch,
      progress: (line) => process.stderr.write(`migrate: ${line}\n`),
      afterCommit,
    });
    process.stderr.write(summary(result));
  } catch (error) {
    if (error instanceof MigrateError) throw new CliError(error.message, 1);
    throw error;
  }
}

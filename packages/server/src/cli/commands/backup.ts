import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { loadConfig } from '../../config/load.js';
import { CliError, usage } from '../common.js';

export const BACKUP_HELP = `Usage: herald backup --to <file> [--data <dir>] [--config <file>]

Writes a consistent copy of a SQLite deployment's herald.db to <file>, while
the server runs (SQLite's online backup). The file is 0600: it holds the
token secret, every signing secret and every event.

The copy carries a new epoch on every channel. Restoring it loses what came
after it, and the events appended after a restore take the lost ones' seqs:
a client that sees the new epoch resyncs instead of skipping them.

To restore: stop Herald, delete herald.db, herald.db-wal and herald.db-shm
from the data directory, copy the backup in as herald.db, start Herald.

A PostgreSQL store is backed up with PostgreSQL's own tools (see the README).

Options:
  --to <file>      where to write the copy (an existing file is refused)
  --data <dir>     the data directory (default ./herald-data)
  --config <file>  JSON config file (default ./herald.json when present)
  -h, --help       show this help
`;

export async function backup(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { to: { type: 'string' }, data: { type: 'string' }, config: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) return void process.stdout.write(BACKUP_HELP);
  if (positionals.length > 0) throw usage(`unexpected argument ${JSON.stringify(positionals[0])}\n\n${BACKUP_HELP}`);
  if (values.to === undefined) throw usage(`name the copy: --to <file>\n\n${BACKUP_HELP}`);
  const config = loadConfig({ file: values.config, flags: values.data === undefined ? {} : { dataDir: values.data } });
  if (config.store.url) throw new CliError('a PostgreSQL store is backed up with pg_dump or your provider\'s backups (see the README), not herald backup');
  const source = join(config.dataDir, 'herald.db');
  if (!existsSync(source)) throw new CliError(`${config.dataDir} holds no Herald data (no herald.db): pass the --data the server runs with.`);
  const target = resolve(values.to);
  if (existsSync(target)) throw new CliError(`${target} exists: a backup never overwrites a file`);

  // Made 0600 before SQLite writes a byte of it, then renamed into place whole: no one reads a part, or the secrets.
  const partial = join(dirname(target), `.${randomBytes(6).toString('hex')}.herald-backup`);
  closeSync(openSync(partial, 'wx', 0o600));
  const db = new Database(source, { fileMustExist: true });
  try {
    db.pragma('busy_timeout = 10000');
    await db.backup(partial);
  } catch (error) {
    rmSync(partial, { force: true });
    throw new CliError(`cannot copy ${source}: ${(error as Error).message}`);
  } finally {
    db.close();
  }
  const copy = new Database(partial);
  try {
    const epoch = randomBytes(8).toString('hex');
    copy.transaction(() => {
      copy.prepare('UPDATE channels SET epoch = ?').run(epoch);
      copy.prepare("UPDATE settings SET value = ? WHERE name = 'epoch'").run(epoch);
    })();
    // One file, as the help says to restore it: no -wal beside it.
    copy.pragma('journal_mode = DELETE');
  } finally {
    copy.close();
  }
  renameSync(partial, target);
  process.stderr.write(`Backed up ${source} to ${target} (0600; every channel has a new epoch in the copy).\n`);
}

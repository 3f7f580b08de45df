import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../../config/load.js';
import { openSqliteStorage } from '../../store/sqlite/open.js';
import { openPostgresStorage } from '../../store/postgres/open.js';
import { generateApiKey } from '../../auth/secrets.js';
import { StartupError } from '../../startup-error.js';
import { CliError, usage } from '../common.js';
import { NODE_LIVE_MS } from '../../cluster/nodes.js';

export const ADMIN_KEY_HELP = `Usage: herald admin-key reset [--data <dir>] [--store <postgres://…>] [--config <file>]

The way back in after losing the admin key, or out of one that leaked.
Generates a new admin key, stores its hash in place of the old one, and
prints the key once, on stdout. Running servers (every node of a cluster)
take it within a few seconds, and the old key stops working there; no
restart is needed. Streams and sockets already open with the old key stay
open until they close.

A server started with HERALD_ADMIN_KEY (or adminKey in its config file)
uses that key and ignores the stored one: then change that setting instead
and restart it. The reset names every running node that does (exit 0).

Options:
  --data <dir>     the data directory (default ./herald-data; one with no
                   herald.db is refused)
  --store <url>    the PostgreSQL store of a cluster (env HERALD_STORE_URL;
                   a database no Herald has written to is refused)
  --config <file>  JSON config file (default ./herald.json when present)
  -h, --help       show this help
`;

export async function adminKey(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      data: { type: 'string' },
      store: { type: 'string' },
      config: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    process.stdout.write(ADMIN_KEY_HELP);
    return;
  }
  if (positionals.length !== 1 || positionals[0] !== 'reset') throw usage(`expected "herald admin-key reset"\n\n${ADMIN_KEY_HELP}`);
  const flags: Record<string, unknown> = {};
  if (values.data !== undefined) flags.dataDir = values.data;
  if (values.store !== undefined) flags.store = { url: values.store };
  const config = loadConfig({ file: values.config, flags });
  // Opening a store creates it: a mistyped --data (or --store, refused below) would get a key no server of yours reads.
  if (!config.store.url && !existsSync(join(config.dataDir, 'herald.db'))) {
    throw new CliError(`${config.dataDir} holds no Herald data (no herald.db): pass the --data (or --store) the server runs with.`);
  }
  let storage;
  try {
    storage = config.store.url
      ? await openPostgresStorage({ url: config.store.url, queryTimeoutMs: config.store.queryTimeout * 1000, existing: true })
      : await openSqliteStorage({ dataDir: config.dataDir, synchronous: 'full' });
  } catch (error) {
    throw new CliError(error instanceof StartupError ? error.message : `cannot open the store: ${(error as Error).message}`);
  }
  try {
    const fresh = generateApiKey();
    await storage.settings.set('admin_key_hash', fresh.hash);
    process.stdout.write(`${fresh.key}\n`);
    const where = config.store.url ? 'the PostgreSQL store' : config.dataDir;
    const keeping = (await storage.cluster.nodes(Date.now() - NODE_LIVE_MS)).filter((n) => n.adminKey === 'config').map((n) => n.id);
    process.stderr.write(
      `New admin key stored for ${where} (shown once, above; only its hash is kept). Running servers take it within a few seconds, and the old key stops working there.\n` +
        `Then: export HERALD_ADMIN_KEY=<the key>  (the banner's curl lines and the herald CLI read it)\n`,
    );
    if (keeping.length > 0) {
      // The reset may be the answer to a leaked key: a node that goes on accepting it must not pass unnoticed.
      process.stderr.write(
        `WARNING: ${keeping.length === 1 ? 'node' : 'nodes'} ${keeping.join(', ')} ${keeping.length === 1 ? 'takes its' : 'take their'} admin key from ` +
          `HERALD_ADMIN_KEY (or adminKey in the config), not from the store, and still ${keeping.length === 1 ? 'accepts' : 'accept'} the old key: ` +
          `change that setting and restart ${keeping.length === 1 ? 'it' : 'them'}.\n`,
      );
    } else if (config.adminKey) {
      process.stderr.write('Note: HERALD_ADMIN_KEY (or adminKey in the config) is set here: a server started with it uses it instead of the stored key.\n');
    }
  } finally {
    await storage.close();
  }
}

import { parseArgs } from 'node:util';
import { loadConfig, unknownEnvNames } from '../config/load.js';
import { startServer, type HeraldServer } from '../server.js';
import { StartupError, generatedAdminKeyOf } from '../startup-error.js';
import { CliError } from './common.js';

export const SERVE_HELP = `Usage: herald serve [options]

Starts the gateway: on the embedded SQLite store by default, or as one node
of a cluster with --store postgres://… and --bus redis://… .

Options:
  --host <host>        address to bind (default 127.0.0.1)
  --port <port>        port to bind, 0 for any free one (default 7700)
  --data <dir>         data directory (default ./herald-data)
  --store <url>        postgres://… to share a PostgreSQL store between nodes
  --bus <url>          redis://, rediss://, redis+cluster://, redis+sentinel:// or postgres://
  --node-id <id>       this node's name in the cluster (default: generated)
  --config <file>      JSON config file (default ./herald.json when present)
  --log-level <level>  fatal|error|warn|info|debug|trace|silent
  -h, --help           show this help

Settings come from defaults < config file < HERALD_* environment < flags.
`;

/** What people read at start-up (stderr). `storeFlag`: how `herald admin-key reset` must be pointed at this node's store. */
export function banner(url: string, where: string, adminKey: string | undefined, adminKeySet: boolean, storeFlag = '--data', pollWaitMax = 30): string {
  // 30 s, or less when limits.pollWaitMax is: the line should ask for what the server waits.
  const wait = Math.min(30, pollWaitMax);
  const key = adminKey ?? '$HERALD_ADMIN_KEY';
  const lines = [`Herald is listening on ${url}  (${where})`];
  if (adminKey) {
    lines.push(
      '',
      `Admin key (shown once; only its hash is stored): ${adminKey}`,
      `Keep it: export HERALD_ADMIN_KEY=${adminKey}  (the herald CLI reads it too)`,
    );
  } else if (!adminKeySet) {
    lines.push(
      '',
      'Admin key: the one printed at the first start (or by herald admin-key reset). The lines below read it from $HERALD_ADMIN_KEY.',
      storeFlag === '--store'
        ? 'Lost it? Run `npx herald admin-key reset` (same --store): every running node takes the new key within seconds.'
        : 'Lost it? Run `npx herald admin-key reset` (same --data): the running server takes the new key within seconds.',
    );
  }
  lines.push(
    '',
    'Publish:',
    `  curl -X POST ${url}/v1/channels/demo/events -H "Authorization: Bearer ${key}" -H 'content-type: application/json' -d '{"type":"hello","data":{"text":"hi"}}'`,
    `Poll (waits up to ${wait} s for news):`,
    `  curl "${url}/v1/channels/demo/events?after=0&wait=${wait}" -H "Authorization: Bearer ${key}"`,
    `Web console (sign in with the admin key): ${url}/console`,
    '',
  );
  return lines.join('\n');
}

export async function serve(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      data: { type: 'string' },
      store: { type: 'string' },
      bus: { type: 'string' },
      'node-id': { type: 'string' },
      config: { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(SERVE_HELP);
    return;
  }
  const flags: Record<string, unknown> = {};
  if (values.host !== undefined) flags.host = values.host;
  if (values.port !== undefined) {
    // Checked here: Number('abc') is NaN, which the config check would report as `port (env HERALD_PORT): … got null`.
    if (!/^\d{1,5}$/.test(values.port.trim()) || Number(values.port) > 65_535) throw new CliError(`--port takes a port number (0 to 65535, 0 for any free one), got ${JSON.stringify(values.port)}`, 2);
    flags.port = Number(values.port);
  }
  if (values.data !== undefined) flags.dataDir = values.data;
  if (values['log-level'] !== undefined) flags.logLevel = values['log-level'];
  if (values.store !== undefined) flags.store = { url: values.store };
  if (values.bus !== undefined) flags.bus = { url: values.bus };
  if (values['node-id'] !== undefined) flags.nodeId = values['node-id'];
  const config = loadConfig({ file: values.config, flags });

  let server: HeraldServer;
  try {
    server = await startServer(config);
  } catch (error) {
    const key = generatedAdminKeyOf(error);
    if (key !== undefined) {
      process.stderr.write(`This first start generated the admin key and stored its hash before it failed; no later start shows it:\nAdmin key: ${key}\nKeep it: export HERALD_ADMIN_KEY=${key}\n`);
    }
    if (error instanceof StartupError) throw new CliError(error.message, 1);
    throw error;
  }
  for (const { name, nearest } of unknownEnvNames(process.env)) {
    server.app.log.warn({ variable: name }, `ignored environment variable ${name}: no setting has that name${nearest ? ` (did you mean ${nearest}?)` : ''}`);
  }
  // A PostgreSQL node has no data directory: logging the default one would send an operator looking for it.
  server.app.log.info(
    // The node id is on every line already (the logger's base).
    { url: server.url, ...(config.store.url ? { store: 'postgres' } : { dataDir: config.dataDir }) },
    'herald listening',
  );
  // The banner is for people, so it goes to stderr and leaves stdout to the JSON log.
  const where = config.store.url ? `node ${server.nodeId}, store: PostgreSQL` : `data: ${config.dataDir}`;
  process.stderr.write(banner(server.url, where, server.generatedAdminKey, config.adminKey !== undefined, config.store.url ? '--store' : '--data', config.limits.pollWaitMax));

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      server.app.log.warn({ signal }, 'second signal: exiting without waiting');
      process.exit(1);
    }
    stopping = true;
    server.app.log.info({ signal }, 'shutting down');
    server.close().then(
      () => {
        // The log's last word: an operator reading it knows the stop finished, and was not cut short.
        server.app.log.info('herald stopped');
        process.exit(0);
      },
      (err: unknown) => {
        server.app.log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

import { parseArgs } from 'node:util';
import { loadConfig } from '../config/load.js';
import { startServer } from '../server.js';

export const SERVE_HELP = `Usage: herald serve [options]

Starts the gateway on the embedded SQLite store.

Options:
  --host <host>        address to bind (default 127.0.0.1)
  --port <port>        port to bind, 0 for any free one (default 7700)
  --data <dir>         data directory (default ./herald-data)
  --config <file>      JSON config file (default ./herald.json when present)
  --log-level <level>  fatal|error|warn|info|debug|trace|silent
  -h, --help           show this help

Settings come from defaults < config file < HERALD_* environment < flags.
`;

function banner(url: string, dataDir: string, adminKey: string | undefined): string {
  const key = adminKey ?? '$HERALD_ADMIN_KEY';
  const lines = [`Herald is listening on ${url}  (data: ${dataDir})`];
  if (adminKey) lines.push('', `Admin key (shown once; only its hash is stored): ${adminKey}`);
  lines.push(
    '',
    'Publish:',
    `  curl -X POST ${url}/v1/channels/demo/events -H "Authorization: Bearer ${key}" -H 'content-type: application/json' -d '{"type":"hello","data":{"text":"hi"}}'`,
    'Poll (waits up to 30 s for news):',
    `  curl "${url}/v1/channels/demo/events?after=0&wait=30" -H "Authorization: Bearer ${key}"`,
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
  if (values.port !== undefined) flags.port = Number(values.port);
  if (values.data !== undefined) flags.dataDir = values.data;
  if (values['log-level'] !== undefined) flags.logLevel = values['log-level'];
  const config = loadConfig({ file: values.config, flags });

  const server = await startServer(config);
  server.app.log.info({ url: server.url, dataDir: config.dataDir }, 'herald listening');
  // The banner is for people, so it goes to stderr and leaves stdout to the JSON log.
  process.stderr.write(banner(server.url, config.dataDir, server.generatedAdminKey));

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      server.app.log.warn({ signal }, 'second signal: exiting without waiting');
      process.exit(1);
    }
    stopping = true;
    server.app.log.info({ signal }, 'shutting down');
    server.close().then(
      () => process.exit(0),
      (err: unknown) => {
        server.app.log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

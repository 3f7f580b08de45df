import { VERSION } from '../version.js';
import { CliError } from './common.js';
import { ADMIN_COMMANDS, adminCommand } from './commands/admin.js';

const HELP = `Usage: herald <command> [options]

Server:
  serve                       start the gateway
  admin-key reset             lost the admin key? store a new one and print it once
  migrate --from <dir> --to <postgres://…>   copy a SQLite deployment into PostgreSQL
  backup --to <file>          a consistent copy of a SQLite deployment, while it runs

Events:
  publish <channel> <json|->  append an event
  tail <channel…>             follow channels live
  listen --forward-to <url>   forward events to a local app as signed webhooks
  replay <channel>            print or re-send a channel's history

Webhooks:
  sign --scheme … --secret …  the headers a provider would send
  verify --scheme … --secret … --header …   check a received webhook

Admin:
  keys | tokens | endpoints | sources | portal <subcommand>

Every command takes --help. Connection: --url / HERALD_URL, --key / HERALD_KEY (else HERALD_ADMIN_KEY).
Exit codes: 0 ok, 1 failed, 2 bad usage.

  -v, --version  print the version
`;

// Each command is loaded when it runs: `serve` pulls in the whole server (about 0.8 s of CPU to import), which
// `publish`, `sign` or `--help` should not pay for.
const commands: Record<string, (argv: string[]) => Promise<void>> = {
  serve: async (argv) => (await import('./serve.js')).serve(argv),
  'admin-key': async (argv) => (await import('./commands/admin-key.js')).adminKey(argv),
  migrate: async (argv) => (await import('./commands/migrate.js')).migrate(argv),
  backup: async (argv) => (await import('./commands/backup.js')).backup(argv),
  publish: async (argv) => (await import('./commands/publish.js')).publish(argv),
  tail: async (argv) => (await import('./commands/tail.js')).tail(argv),
  listen: async (argv) => (await import('./commands/listen.js')).listen(argv),
  replay: async (argv) => (await import('./commands/replay.js')).replay(argv),
  sign: async (argv) => (await import('./commands/sign.js')).signCommand(argv),
  verify: async (argv) => (await import('./commands/sign.js')).verifyCommand(argv),
  ...Object.fromEntries(ADMIN_COMMANDS.map((name) => [name, adminCommand(name)])),
};

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
    process.stdout.write(HELP);
    return command === undefined ? 2 : 0;
  }
  if (command === '-v' || command === '--version') {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const run = commands[command];
  if (!run) {
    process.stderr.write(`herald: unknown command "${command}"\n\n${HELP}`);
    return 2;
  }
  try {
    await run(rest);
    return 0;
  } catch (error) {
    if (error instanceof CliError) {
      process.stderr.write(`herald ${command}: ${error.message}\n`);
      return error.exitCode;
    }
    // By name, not instanceof: importing config/load.js (and its schema library) costs every command 0.2 s.
    const known = (error as Error).name === 'ConfigError' || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    // The SDK's errors (tail, listen) say what is wrong in their message (bad channel names are refused before it runs).
    const client = (error as Error).name === 'HeraldClientError';
    process.stderr.write(`herald ${command}: ${known || client ? (error as Error).message : (error as Error).stack}\n`);
    return known ? 2 : 1;
  }
}

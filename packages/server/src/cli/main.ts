import { ConfigError } from '../config/load.js';
import { serve } from './serve.js';
import { VERSION } from '../version.js';

const HELP = `Usage: herald <command> [options]

Commands:
  serve     start the gateway (herald serve --help)

Options:
  -h, --help     show this help
  -v, --version  print the version
`;

const commands: Record<string, (argv: string[]) => Promise<void>> = { serve };

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
    const known = error instanceof ConfigError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    process.stderr.write(`herald ${command}: ${known ? (error as Error).message : (error as Error).stack}\n`);
    return known ? 2 : 1;
  }
}

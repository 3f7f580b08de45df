import type { HeraldEvent } from '@herald/client';
import { assertChannelArg, CONNECTION_HELP, connection, parse, seqOption, usage } from '../common.js';
import { follow } from './follow.js';

export const TAIL_HELP = `Usage: herald tail <channel…> [--after n] [--json]

Follows channels live and prints each event. Ctrl-C stops.

Options:
  --after <seq>   replay from after this seq first (default: new events only)
  --json          one event per line, as JSON
${CONNECTION_HELP}
`;

export function formatEvent(event: HeraldEvent): string {
  const time = event.time.slice(11, 23);
  return `${time}  ${event.channel} #${event.seq}  ${event.type}  ${JSON.stringify(event.data)}`;
}

export async function tail(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, { after: { type: 'string' }, json: { type: 'boolean' } });
  if (values.help) return void process.stdout.write(TAIL_HELP);
  if (positionals.length === 0) throw usage('name at least one channel: herald tail <channel…>');
  positionals.forEach(assertChannelArg);
  const json = values.json === true;
  await follow(connection(values), positionals, seqOption(values, 'after'), (event) => {
    process.stdout.write(`${json ? JSON.stringify(event) : formatEvent(event)}\n`);
  });
}

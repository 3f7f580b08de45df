import { WebSocket } from 'ws';
import { Herald, type HeraldEvent } from '@herald/client';
import { CliError, CONNECTION_HELP, connection, opt, parse, untilInterrupted, usage } from '../common.js';

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
  const after = opt(values, 'after') === undefined ? undefined : Number(opt(values, 'after'));
  if (after !== undefined && !(Number.isSafeInteger(after) && after >= 0)) throw usage('--after takes a seq (an integer ≥ 0)');
  const conn = connection(values);
  const herald = new Herald({ url: conn.url, ...(conn.key ? { token: conn.key } : {}), WebSocket: WebSocket as unknown as typeof globalThis.WebSocket });
  let failure: CliError | undefined;
  const stopped = new Promise<void>((resolve) => {
    herald.on('error', (error) => {
      failure = new CliError(`${error.code}: ${error.message}`);
      resolve();
    });
  });
  // State goes to stderr in both modes, so stdout stays pure events.
  herald.on('state', (state, detail) => {
    process.stderr.write(`[${state}${detail.transport ? ` via ${detail.transport}` : ''}${detail.reason ? `: ${detail.reason}` : ''}]\n`);
  });
  for (const channel of positionals) {
    herald.subscribe(
      channel,
      {
        ...(after === undefined ? {} : { after }),
        onGap: (gap) => process.stderr.write(`[gap in ${gap.channel}: events after #${gap.after} before #${gap.oldest} were trimmed]\n`),
      },
      (event) => process.stdout.write(`${values.json ? JSON.stringify(event) : formatEvent(event)}\n`),
    );
  }
  await Promise.race([untilInterrupted(), stopped]);
  herald.close();
  if (failure) throw failure;
}

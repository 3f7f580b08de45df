import { WebSocket } from 'ws';
import { Herald, type HeraldEvent } from '@herald/client';
import { CliError, opt, untilInterrupted, usage, type Connection, type Parsed } from '../common.js';

/** `--after`, checked: a seq, or undefined for "new events only". */
export function afterOption(values: Parsed['values']): number | undefined {
  const text = opt(values, 'after');
  if (text === undefined) return undefined;
  const after = Number(text);
  if (!Number.isSafeInteger(after) || after < 0) throw usage('--after takes a seq (an integer ≥ 0)');
  return after;
}

/**
 * Follows channels with the SDK until Ctrl-C, printing connection states and
 * gaps on stderr so stdout carries only what the command prints per event.
 * A refused credential ends it with an error.
 */
export async function follow(conn: Connection, channels: string[], after: number | undefined, onEvent: (event: HeraldEvent) => void): Promise<void> {
  // Node 20 has no global WebSocket; the SDK takes the one from `ws`.
  const herald = new Herald({ url: conn.url, ...(conn.key ? { token: conn.key } : {}), WebSocket: WebSocket as unknown as typeof globalThis.WebSocket });
  let failure: CliError | undefined;
  const refused = new Promise<void>((resolve) =>
    herald.on('error', (error) => {
      failure = new CliError(`${error.code}: ${error.message}`);
      resolve();
    }),
  );
  herald.on('state', (state, detail) => {
    process.stderr.write(`[${state}${detail.transport ? ` via ${detail.transport}` : ''}${detail.reason ? `: ${detail.reason}` : ''}]\n`);
  });
  for (const channel of channels) {
    herald.subscribe(
      channel,
      {
        ...(after === undefined ? {} : { after }),
        onGap: (gap) => process.stderr.write(`[gap in ${gap.channel}: events after #${gap.after} before #${gap.oldest} were trimmed]\n`),
      },
      onEvent,
    );
  }
  await Promise.race([untilInterrupted(), refused]);
  herald.close();
  if (failure) throw failure;
}

import { WebSocket } from 'ws';
import { Herald, type HeraldClientError, type HeraldEvent } from '@herald/client';
import { CliError, untilInterrupted, type Connection } from '../common.js';

/**
 * Follows channels with the SDK until Ctrl-C, printing connection states,
 * gaps and refused channels on stderr so stdout carries only what the command
 * prints per event. A channel the credential may not read is named and the
 * others followed; a refused credential, or every channel refused, ends it
 * with an error.
 */
export async function follow(conn: Connection, channels: string[], after: number | undefined, onEvent: (event: HeraldEvent) => void): Promise<void> {
  // Node 20 has no global WebSocket; the SDK takes the one from `ws`.
  const herald = new Herald({ url: conn.url, ...(conn.key ? { token: conn.key } : {}), WebSocket: WebSocket as unknown as typeof globalThis.WebSocket });
  let failure: CliError | undefined;
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  const fail = (error: HeraldClientError) => {
    failure ??= new CliError(`${error.code}: ${error.message}`);
    stop();
  };
  // A channel's refusal reaches its subscription first, then the client's `error`: that one is for the connection.
  const channelRefusals = new WeakSet<HeraldClientError>();
  const refused = new Set<string>();
  const named = new Set(channels).size;
  herald.on('error', (error) => {
    if (!channelRefusals.has(error)) fail(error);
  });
  herald.on('state', (state, detail) => {
    process.stderr.write(`[${state}${detail.transport ? ` via ${detail.transport}` : ''}${detail.reason ? `: ${detail.reason}` : ''}]\n`);
  });
  for (const channel of channels) {
    herald.subscribe(
      channel,
      {
        ...(after === undefined ? {} : { after }),
        onGap: (gap) =>
          process.stderr.write(
            // The SDK reads a position past the channel's last event as history the server lost, from its oldest event.
            gap.after >= gap.oldest
              ? `[#${gap.after} is past the last event of ${gap.channel}: following it from its oldest, #${gap.oldest}]\n`
              : `[gap in ${gap.channel}: events after #${gap.after} before #${gap.oldest} were trimmed]\n`,
          ),
        onError: (error) => {
          channelRefusals.add(error);
          if (refused.has(channel)) return;
          refused.add(channel);
          if (refused.size === named) return fail(error);
          process.stderr.write(`[${channel} refused, following the others: ${error.code}: ${error.message}]\n`);
        },
      },
      onEvent,
    );
  }
  await Promise.race([untilInterrupted(), stopped]);
  herald.close();
  if (failure) throw failure;
}

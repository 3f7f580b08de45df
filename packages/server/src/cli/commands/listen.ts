import { WebSocket } from 'ws';
import { Herald } from '@herald/client';
import { generateSecret } from '@herald/webhooks';
import { CliError, CONNECTION_HELP, connection, opt, opts, parse, untilInterrupted, usage } from '../common.js';
import { forward } from './forward.js';

export const LISTEN_HELP = `Usage: herald listen --forward-to <url> --channel <c> [--channel <c2> …] [--secret whsec_…]

Subscribes to channels and forwards each event to a local app as a signed
Standard Webhooks request (webhook-id, webhook-timestamp, webhook-signature),
printing the status of each. Ctrl-C stops.

Options:
  --forward-to <url>   where to POST each event
  --channel <name>     a channel to follow (repeatable)
  --secret <whsec_…>   the signing secret (default: a new one, printed at start)
  --after <seq>        replay from after this seq first
${CONNECTION_HELP}
`;

export async function listen(argv: string[]): Promise<void> {
  const { values } = parse(argv, {
    'forward-to': { type: 'string' },
    channel: { type: 'string', multiple: true },
    secret: { type: 'string' },
    after: { type: 'string' },
  });
  if (values.help) return void process.stdout.write(LISTEN_HELP);
  const target = opt(values, 'forward-to');
  if (!target) throw usage('--forward-to is required: herald listen --forward-to http://localhost:3000/webhooks --channel orders');
  try {
    new URL(target);
  } catch {
    throw usage(`--forward-to ${JSON.stringify(target)} is not a URL`);
  }
  const channels = opts(values, 'channel');
  if (channels.length === 0) throw usage('name at least one --channel to listen to');
  const afterText = opt(values, 'after');
  const after = afterText === undefined ? undefined : Number(afterText);
  if (after !== undefined && !(Number.isSafeInteger(after) && after >= 0)) throw usage('--after takes a seq (an integer ≥ 0)');
  const secret = opt(values, 'secret') ?? generateSecret();
  const conn = connection(values);
  process.stderr.write(`Forwarding ${channels.join(', ')} to ${target}\nSigning secret: ${secret}\n`);

  const herald = new Herald({ url: conn.url, ...(conn.key ? { token: conn.key } : {}), WebSocket: WebSocket as unknown as typeof globalThis.WebSocket });
  let failure: CliError | undefined;
  const stopped = new Promise<void>((resolve) =>
    herald.on('error', (error) => {
      failure = new CliError(`${error.code}: ${error.message}`);
      resolve();
    }),
  );
  herald.on('state', (state) => process.stderr.write(`[${state}]\n`));
  // One at a time and in order, as a single endpoint would receive them.
  let chain = Promise.resolve();
  for (const channel of channels) {
    herald.subscribe(channel, after === undefined ? {} : { after }, (event) => {
      chain = chain.then(async () => {
        process.stdout.write(`${(await forward(target, secret, event)).line}\n`);
      });
    });
  }
  await Promise.race([untilInterrupted(), stopped]);
  herald.close();
  await chain;
  if (failure) throw failure;
}

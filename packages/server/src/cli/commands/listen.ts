import { generateSecret } from '@herald/webhooks';
import { assertChannelArg, assertUrlArg, CONNECTION_HELP, connection, opt, opts, parse, seqOption, signingSecretOption, usage } from '../common.js';
import { follow } from './follow.js';
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
  assertUrlArg(target, '--forward-to');
  const channels = opts(values, 'channel');
  if (channels.length === 0) throw usage('name at least one --channel to listen to');
  channels.forEach(assertChannelArg);
  const after = seqOption(values, 'after');
  const secret = signingSecretOption(values) ?? generateSecret();
  const conn = connection(values);
  process.stderr.write(`Forwarding ${channels.join(', ')} to ${target}\nSigning secret: ${secret}\n`);

  // One at a time and in order, as a single endpoint would receive them.
  let chain = Promise.resolve();
  try {
    await follow(conn, channels, after, (event) => {
      chain = chain.then(async () => {
        process.stdout.write(`${(await forward(target, secret, event)).line}\n`);
      });
    });
  } finally {
    await chain;
  }
}

import type { ChannelPage } from '@herald/protocol';
import { generateSecret } from '@herald/webhooks';
import { api, assertChannelArg, assertUrlArg, CONNECTION_HELP, connection, opt, parse, refuseExtraArguments, seqOption, signingSecretOption, usage } from '../common.js';
import { forward } from './forward.js';

export const REPLAY_HELP = `Usage: herald replay <channel> [--after n] [--until n] [--forward-to <url> [--secret whsec_…]]

Reads a channel's history from the log. Without --forward-to it prints one
event per line as JSON; with it, it re-sends each event to a local app as a
signed webhook, as 'herald listen' does. Progress goes to stderr.

Options:
  --after <seq>        start after this seq (default 0: all retained history)
  --until <seq>        stop after this seq (default: the head now)
  --forward-to <url>   POST each event there, signed
  --secret <whsec_…>   the signing secret (default: a new one, printed)
${CONNECTION_HELP}
`;

export async function replay(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, {
    after: { type: 'string' },
    until: { type: 'string' },
    'forward-to': { type: 'string' },
    secret: { type: 'string' },
  });
  if (values.help) return void process.stdout.write(REPLAY_HELP);
  const [channel] = positionals;
  if (!channel) throw usage('name a channel: herald replay <channel>');
  refuseExtraArguments(positionals, 1, 'herald replay <channel> (one channel)');
  assertChannelArg(channel);
  const conn = connection(values);
  let after = seqOption(values, 'after') ?? 0;
  const target = opt(values, 'forward-to');
  if (target !== undefined) assertUrlArg(target, '--forward-to');
  const given = signingSecretOption(values);
  const secret = given ?? (target ? generateSecret() : '');
  if (target && given === undefined) process.stderr.write(`Signing secret: ${secret}\n`);

  const untilGiven = seqOption(values, 'until');
  if (untilGiven !== undefined && untilGiven < after) throw usage(`--until #${untilGiven} comes before --after #${after}: nothing lies between them`);
  const path = (from: number) => `/v1/channels/${encodeURIComponent(channel)}/events?after=${from}&limit=1000`;
  const first = await api<ChannelPage>(conn, 'GET', path(after));
  // The server reads a position past the head as one to start again from (its epoch may have changed); a replay does
  // not guess: it said "partly trimmed" and replayed the channel from its start.
  if (after > first.head) {
    process.stderr.write(`[#${after} is past the channel's head, #${first.head}: nothing to replay]\n`);
    return;
  }
  const until = untilGiven ?? first.head;
  if (first.truncated) process.stderr.write(`[history after #${after} was partly trimmed; replaying what is kept]\n`);
  let page = first;
  let done = 0;
  let failed = 0;
  const total = Math.max(0, until - after);
  for (;;) {
    for (const event of page.events) {
      if (event.seq > until) break;
      if (target) {
        const result = await forward(target, secret, event);
        if (!result.ok) failed += 1;
        process.stdout.write(`${result.line}\n`);
      } else {
        process.stdout.write(`${JSON.stringify(event)}\n`);
      }
      done += 1;
      if (done % 500 === 0) process.stderr.write(`[${done}/${total}]\n`);
    }
    after = page.next;
    if (page.events.length === 0 || after >= until) break;
    page = await api<ChannelPage>(conn, 'GET', path(after));
  }
  process.stderr.write(`[replayed ${done} event${done === 1 ? '' : 's'}${target ? `, ${failed} failed` : ''}]\n`);
  if (failed > 0) process.exitCode = 1;
}

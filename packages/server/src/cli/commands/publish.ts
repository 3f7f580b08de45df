import { api, assertChannelArg, CONNECTION_HELP, connection, opt, parse, parseJson, print, readBody, refuseExtraArguments, usage } from '../common.js';

export const PUBLISH_HELP = `Usage: herald publish <channel> [--type t] [--id id] <json | ->

Appends one event; prints it as stored. The data is the JSON argument, or stdin with "-".

Options:
  --type <type>   the event type (default "message")
  --id <id>       your own event id: publishing it again is a no-op
${CONNECTION_HELP}
`;

export async function publish(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, { type: { type: 'string' }, id: { type: 'string' } });
  if (values.help) return void process.stdout.write(PUBLISH_HELP);
  const [channel, raw] = positionals;
  if (!channel) throw usage('name a channel: herald publish <channel> <json | ->');
  refuseExtraArguments(positionals, 2, 'herald publish <channel> <json | -> (quote the JSON)');
  assertChannelArg(channel);
  const text = readBody(raw);
  if (text === undefined) throw usage('give the event data as JSON, or "-" to read it from stdin');
  const data = parseJson(text, 'the event data');
  const event = await api(connection(values), 'POST', `/v1/channels/${encodeURIComponent(channel)}/events`, {
    data,
    // Given empty, they are sent as given, for the server to refuse, not dropped for the defaults.
    ...(opt(values, 'type') !== undefined ? { type: opt(values, 'type') } : {}),
    ...(opt(values, 'id') !== undefined ? { id: opt(values, 'id') } : {}),
  });
  print(event);
}

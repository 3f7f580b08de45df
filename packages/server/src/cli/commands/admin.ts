import { api, CONNECTION_HELP, connection, list, parse, print, refuseExtraArguments, usage } from '../common.js';

type Values = Record<string, string | boolean | string[] | undefined>;

interface Subcommand {
  usage: string;
  options?: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }>;
  run(values: Values, args: string[]): { method: string; path: string; body?: unknown };
  /** What to tell the user on stderr beside the answer (printed on stdout), such as where to point a provider. */
  note?(answer: unknown, url: string): string;
}

const str = (v: Values, name: string): string | undefined => (typeof v[name] === 'string' ? (v[name] as string) : undefined);
const need = (v: Values, name: string): string => str(v, name) ?? (() => { throw usage(`--${name} is required`); })();
const arg = (args: string[], what: string): string => args[0] ?? (() => { throw usage(`name the ${what}`); })();
const num = (v: Values, name: string): number | undefined => {
  const s = str(v, name);
  if (s === undefined) return undefined;
  const n = Number(s);
  if (!Number.isFinite(n)) throw usage(`--${name} takes a number`);
  return n;
};
const json = (v: Values, name: string): unknown => {
  const s = str(v, name);
  if (s === undefined) return undefined;
  try {
    return JSON.parse(s) as unknown;
  } catch {
    throw usage(`--${name} takes JSON, such as '{"n":1}' or '"text"'`);
  }
};
/** Drops undefined fields, so the API sees only what was given. */
const defined = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
const enc = encodeURIComponent;

/** The options an endpoint is created and updated with, beside its URL, secret and tenant. */
const ENDPOINT_OPTIONS: NonNullable<Subcommand['options']> = {
  channels: { type: 'string' },
  types: { type: 'string' },
  scheme: { type: 'string' },
  'rate-limit': { type: 'string' },
  'max-concurrency': { type: 'string' },
  ordering: { type: 'string' },
  description: { type: 'string' },
};
const endpointSettings = (v: Values) => ({
  channels: list(str(v, 'channels')),
  types: list(str(v, 'types')),
  scheme: str(v, 'scheme'),
  rateLimit: num(v, 'rate-limit'),
  maxConcurrency: num(v, 'max-concurrency'),
  ordering: str(v, 'ordering'),
  description: str(v, 'description'),
});

/** The admin API, one resource per command, each subcommand one request. */
const RESOURCES: Record<string, { about: string; subcommands: Record<string, Subcommand> }> = {
  keys: {
    about: 'API keys (stored hashed; the key is shown once)',
    subcommands: {
      create: {
        usage: 'create --name <n> --scopes publish,subscribe,admin --channels <patterns>',
        options: { name: { type: 'string' }, scopes: { type: 'string' }, channels: { type: 'string' } },
        run: (v) => ({ method: 'POST', path: '/v1/keys', body: { name: need(v, 'name'), scopes: list(need(v, 'scopes')), channels: list(need(v, 'channels')) } }),
      },
      list: { usage: 'list', run: () => ({ method: 'GET', path: '/v1/keys' }) },
      get: { usage: 'get <id>', run: (_v, a) => ({ method: 'GET', path: `/v1/keys/${enc(arg(a, 'key id'))}` }) },
      revoke: { usage: 'revoke <id>', run: (_v, a) => ({ method: 'DELETE', path: `/v1/keys/${enc(arg(a, 'key id'))}` }) },
    },
  },
  tokens: {
    about: 'subscriber tokens (JWT) for browsers',
    subcommands: {
      create: {
        usage: 'create --sub <subject> --channels <patterns> [--publish <patterns>] [--ttl seconds]',
        options: { sub: { type: 'string' }, channels: { type: 'string' }, publish: { type: 'string' }, ttl: { type: 'string' } },
        run: (v) => ({
          method: 'POST',
          path: '/v1/tokens',
          body: defined({ sub: need(v, 'sub'), channels: list(need(v, 'channels')), publish: list(str(v, 'publish')), ttl: num(v, 'ttl') }),
        }),
      },
    },
  },
  endpoints: {
    about: 'outbound webhook endpoints and their deliveries',
    subcommands: {
      create: {
        usage: 'create <endpoint url> --channels <patterns> [--types <patterns>] [--scheme standard|stripe|github] [--secret s] [--rate-limit n] [--max-concurrency n] [--ordering unordered|channel] [--description d] [--tenant t]',
        options: { ...ENDPOINT_OPTIONS, secret: { type: 'string' }, tenant: { type: 'string' } },
        // The endpoint's URL is positional: --url names the Herald server, as everywhere.
        run: (v, a) => ({
          method: 'POST',
          path: '/v1/endpoints',
          body: defined({
            url: arg(
              a,
              `endpoint URL: herald endpoints create <endpoint url> --channels <patterns>${typeof v.url === 'string' ? ` (--url ${v.url} names the Herald server, not the endpoint)` : ''}`,
            ),
            ...endpointSettings(v),
            channels: list(need(v, 'channels')),
            secret: str(v, 'secret'),
            tenant: str(v, 'tenant'),
          }),
        }),
      },
      list: {
        usage: 'list [--tenant t]',
        options: { tenant: { type: 'string' } },
        run: (v) => ({ method: 'GET', path: `/v1/endpoints${str(v, 'tenant') ? `?tenant=${enc(str(v, 'tenant')!)}` : ''}` }),
      },
      get: { usage: 'get <id>', run: (_v, a) => ({ method: 'GET', path: `/v1/endpoints/${enc(arg(a, 'endpoint id'))}` }) },
      update: {
        usage:
          'update <id> [--endpoint-url u] [--channels <patterns>] [--types <patterns>] [--scheme standard|stripe|github] [--rate-limit n] [--max-concurrency n] [--ordering unordered|channel] [--description d]',
        options: { ...ENDPOINT_OPTIONS, 'endpoint-url': { type: 'string' } },
        // --url names the Herald server, as everywhere: the endpoint's new URL is --endpoint-url.
        run: (v, a) => {
          const body = defined({ ...endpointSettings(v), url: str(v, 'endpoint-url') });
          if (Object.keys(body).length === 0) throw usage('name something to change, such as --channels or --endpoint-url');
          return { method: 'PATCH', path: `/v1/endpoints/${enc(arg(a, 'endpoint id'))}`, body };
        },
      },
      test: {
        usage: 'test <id> [--type t] [--channel c] [--data <json>]',
        options: { type: { type: 'string' }, channel: { type: 'string' }, data: { type: 'string' } },
        run: (v, a) => ({
          method: 'POST',
          path: `/v1/endpoints/${enc(arg(a, 'endpoint id'))}/test`,
          body: defined({ type: str(v, 'type'), channel: str(v, 'channel'), data: json(v, 'data') }),
        }),
      },
      stats: { usage: 'stats <id>', run: (_v, a) => ({ method: 'GET', path: `/v1/endpoints/${enc(arg(a, 'endpoint id'))}/stats` }) },
      enable: { usage: 'enable <id>', run: (_v, a) => ({ method: 'PATCH', path: `/v1/endpoints/${enc(arg(a, 'endpoint id'))}`, body: { enabled: true } }) },
      disable: { usage: 'disable <id>', run: (_v, a) => ({ method: 'PATCH', path: `/v1/endpoints/${enc(arg(a, 'endpoint id'))}`, body: { enabled: false } }) },
      delete: { usage: 'delete <id>', run: (_v, a) => ({ method: 'DELETE', path: `/v1/endpoints/${enc(arg(a, 'endpoint id'))}` }) },
      'rotate-secret': {
        usage: 'rotate-secret <id> [--grace seconds]',
        options: { grace: { type: 'string' } },
        run: (v, a) => ({ method: 'POST', path: `/v1/endpoints/${enc(arg(a, 'endpoint id'))}/rotate-secret`, body: defined({ graceSeconds: num(v, 'grace') }) }),
      },
      deliveries: {
        usage: 'deliveries <id> [--status pending|succeeded|failed]',
        options: { status: { type: 'string' } },
        run: (v, a) => ({ method: 'GET', path: `/v1/endpoints/${enc(arg(a, 'endpoint id'))}/deliveries${str(v, 'status') ? `?status=${enc(str(v, 'status')!)}` : ''}` }),
      },
      attempts: { usage: 'attempts <delivery id>', run: (_v, a) => ({ method: 'GET', path: `/v1/deliveries/${enc(arg(a, 'delivery id'))}/attempts` }) },
      retry: { usage: 'retry <delivery id>', run: (_v, a) => ({ method: 'POST', path: `/v1/deliveries/${enc(arg(a, 'delivery id'))}/retry` }) },
      recover: {
        usage: 'recover <id> --since <ISO time> [--until <ISO time>]',
        options: { since: { type: 'string' }, until: { type: 'string' } },
        run: (v, a) => ({ method: 'POST', path: `/v1/endpoints/${enc(arg(a, 'endpoint id'))}/recover`, body: defined({ since: need(v, 'since'), until: str(v, 'until') }) }),
      },
    },
  },
  portal: {
    about: 'endpoint-portal sessions (a URL where one tenant manages its own endpoints)',
    subcommands: {
      session: {
        usage: 'session <tenant> [--ttl seconds] [--channels <patterns>] [--types <event types>]',
        options: { ttl: { type: 'string' }, channels: { type: 'string' }, types: { type: 'string' } },
        run: (v, a) => ({
          method: 'POST',
          path: '/v1/portal/sessions',
          body: defined({ tenant: arg(a, 'tenant'), ttl: num(v, 'ttl'), allowedChannels: list(str(v, 'channels')), eventTypes: list(str(v, 'types')) }),
        }),
      },
    },
  },
  sources: {
    about: 'inbound webhook sources (Stripe, GitHub, Shopify, Slack, Standard Webhooks)',
    subcommands: {
      create: {
        usage: 'create --name <n> --provider stripe|github|shopify|slack|standard --secret <s> [--channel c] [--tolerance seconds]',
        options: { name: { type: 'string' }, provider: { type: 'string' }, secret: { type: 'string', multiple: true }, channel: { type: 'string' }, tolerance: { type: 'string' } },
        run: (v) => {
          const secrets = v.secret as string[] | undefined;
          if (!secrets?.length) throw usage('--secret is required');
          return { method: 'POST', path: '/v1/sources', body: defined({ name: need(v, 'name'), provider: need(v, 'provider'), secrets, channel: str(v, 'channel'), tolerance: num(v, 'tolerance') }) };
        },
        note: (answer, url) => {
          const { name, provider } = answer as { name: string; provider: string };
          return `Give ${provider} this webhook URL (this server's address, or the public one in front of it): ${url}/v1/ingest/${enc(name)}`;
        },
      },
      list: { usage: 'list', run: () => ({ method: 'GET', path: '/v1/sources' }) },
      get: { usage: 'get <name>', run: (_v, a) => ({ method: 'GET', path: `/v1/sources/${enc(arg(a, 'source'))}` }) },
      ingests: { usage: 'ingests <name>', run: (_v, a) => ({ method: 'GET', path: `/v1/sources/${enc(arg(a, 'source'))}/ingests` }) },
      delete: { usage: 'delete <name>', run: (_v, a) => ({ method: 'DELETE', path: `/v1/sources/${enc(arg(a, 'source'))}` }) },
      rotate: {
        usage: 'rotate <name> --secret <new> [--grace seconds]',
        options: { secret: { type: 'string' }, grace: { type: 'string' } },
        run: (v, a) => ({ method: 'POST', path: `/v1/sources/${enc(arg(a, 'source'))}/rotate`, body: defined({ secret: need(v, 'secret'), graceSeconds: num(v, 'grace') }) }),
      },
    },
  },
  channels: {
    about: 'channels: every channel that has had an event, with its head, oldest kept seq and retention',
    subcommands: {
      list: {
        usage: 'list [--prefix p] [--after name] [--limit n]',
        options: { prefix: { type: 'string' }, after: { type: 'string' }, limit: { type: 'string' } },
        run: (v) => {
          const query = new URLSearchParams(defined({ prefix: str(v, 'prefix'), after: str(v, 'after'), limit: num(v, 'limit') }) as Record<string, string>);
          return { method: 'GET', path: `/v1/channels${query.size > 0 ? `?${query}` : ''}` };
        },
      },
    },
  },
  nodes: {
    about: 'the nodes of a cluster, as their heartbeats last said',
    subcommands: { list: { usage: 'list', run: () => ({ method: 'GET', path: '/v1/nodes' }) } },
  },
};

export const ADMIN_COMMANDS = Object.keys(RESOURCES);

/** How many arguments a subcommand takes: the `<…>` in its usage before its first option. */
const positionalsOf = (line: string): number => (line.split(/ \[?--/)[0]!.match(/<[^>]+>/g) ?? []).length;

function help(resource: string): string {
  const { about, subcommands } = RESOURCES[resource]!;
  const lines = Object.values(subcommands).map((s) => `  herald ${resource} ${s.usage}`);
  return `Usage:\n${lines.join('\n')}\n\nManage ${about}. Prints the API's JSON answer.\n\nOptions:\n${CONNECTION_HELP}\n`;
}

export function adminCommand(resource: string): (argv: string[]) => Promise<void> {
  return async (argv) => {
    const [name, ...rest] = argv;
    if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
      process.stdout.write(help(resource));
      if (name === undefined) throw usage(`name a subcommand: ${Object.keys(RESOURCES[resource]!.subcommands).join(', ')}`);
      return;
    }
    const sub = RESOURCES[resource]!.subcommands[name];
    if (!sub) throw usage(`unknown subcommand "${resource} ${name}"; try: ${Object.keys(RESOURCES[resource]!.subcommands).join(', ')}`);
    const { values, positionals } = parse(rest, sub.options ?? {});
    if (values.help) return void process.stdout.write(`Usage: herald ${resource} ${sub.usage}\n\nOptions:\n${CONNECTION_HELP}\n`);
    refuseExtraArguments(positionals, positionalsOf(sub.usage), `herald ${resource} ${sub.usage}`);
    const request = sub.run(values as Values, positionals);
    const conn = connection(values);
    const answer = await api(conn, request.method, request.path, request.body);
    if (answer !== undefined) print(answer);
    else process.stderr.write('done\n');
    if (answer !== undefined && sub.note) process.stderr.write(`${sub.note(answer, conn.url)}\n`);
  };
}

import { SCHEME_NAMES, sign, verify, WebhookVerificationError, type Scheme } from '@herald/webhooks';
import { CliError, print, readBody, usage } from '../common.js';
import { parseArgs } from 'node:util';

export const SIGN_HELP = `Usage: herald sign --scheme <scheme> --secret <secret> [--id id] [--timestamp unix] [body | -]

Prints the headers a provider would send with this body: for testing a receiver.
Schemes: ${SCHEME_NAMES.join(', ')}.
`;

export const VERIFY_HELP = `Usage: herald verify --scheme <scheme> --secret <secret> [--secret <old>] --header 'name: value' … [--tolerance s] [body | -]

Checks a received webhook exactly as Herald's ingest does. Exits 0 and prints
the result when it verifies, 1 with the reason when it does not.
Schemes: ${SCHEME_NAMES.join(', ')}.
`;

function schemeOf(value: string | undefined): Scheme {
  if (!value || !(SCHEME_NAMES as string[]).includes(value)) throw usage(`--scheme must be one of ${SCHEME_NAMES.join(', ')}`);
  return value as Scheme;
}

function bodyOf(positionals: string[]): string {
  const body = readBody(positionals[0]);
  if (body === undefined) throw usage('give the body as an argument, or "-" to read stdin');
  return body;
}

export async function signCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { scheme: { type: 'string' }, secret: { type: 'string', multiple: true }, id: { type: 'string' }, timestamp: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) return void process.stdout.write(SIGN_HELP);
  const scheme = schemeOf(values.scheme);
  if (!values.secret?.length) throw usage('--secret is required');
  const timestamp = values.timestamp === undefined ? undefined : Number(values.timestamp);
  if (timestamp !== undefined && !Number.isInteger(timestamp)) throw usage('--timestamp takes unix seconds');
  try {
    const headers = sign(scheme, { secrets: values.secret, body: bodyOf(positionals), ...(values.id ? { id: values.id } : {}), ...(timestamp === undefined ? {} : { timestamp }) });
    for (const [name, value] of Object.entries(headers)) process.stdout.write(`${name}: ${value}\n`);
  } catch (error) {
    if (error instanceof WebhookVerificationError) throw usage(error.message);
    throw error;
  }
}

export async function verifyCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      scheme: { type: 'string' },
      secret: { type: 'string', multiple: true },
      header: { type: 'string', multiple: true, short: 'H' },
      tolerance: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return void process.stdout.write(VERIFY_HELP);
  const scheme = schemeOf(values.scheme);
  if (!values.secret?.length) throw usage('--secret is required');
  const headers: Record<string, string> = {};
  for (const line of values.header ?? []) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw usage(`--header ${JSON.stringify(line)} is not "name: value"`);
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const tolerance = values.tolerance === undefined ? undefined : Number(values.tolerance);
  try {
    print(verify(scheme, { secrets: values.secret, headers, body: bodyOf(positionals), ...(tolerance === undefined ? {} : { tolerance }) }));
  } catch (error) {
    if (error instanceof WebhookVerificationError) throw new CliError(`not verified: ${error.code}: ${error.message}`);
    throw error;
  }
}

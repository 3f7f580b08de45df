// Fuzzes every parser that takes untrusted input: `npm run fuzz` (not part of `npm test`).
//
// Over a million generated inputs, random (fast-check) and adversarial (long runs of one character, deep
// nesting, many `*`, headers at their size limit), go to: the cursor decoder, each webhook scheme's
// signature-header parser and verifier, the WebSocket op decoder, the channel pattern checker and matcher
// (checked against a reference matcher), and the JSON depth guard (checked against a reference depth).
// A crash is anything thrown that is not the target's typed error, or a wrong answer. Per target it prints
// the inputs run, the crashes, and the slowest single input with its time. Exit code 1 on any crash.
//
// FUZZ_SEED=<n> replays a run; FUZZ_SCALE=<x> multiplies every target's input count (default 1).
import { performance } from 'node:perf_hooks';
import { generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { decodeCursor, exceedsDepth, HeraldError, isValidChannel } from '@herald/protocol';
import { sign, verify, WebhookVerificationError, type Scheme } from '@herald/webhooks';
import { clientOpOf, parseFrame } from '../packages/server/src/transports/ws/ops.js';
import { nestsDeeperThan } from '../packages/server/src/http/json-body.js';
import { assertPattern, isValidPattern, matchesPattern } from '../packages/server/src/auth/patterns.js';

const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
const SCALE = Number(process.env.FUZZ_SCALE ?? 1);
const CHUNK = 5000;
const NOW = 1_700_000_000;

interface Target<T> {
  name: string;
  inputs: number;
  arbitrary: fc.Arbitrary<T>;
  /** Runs one input; throws only when the target misbehaved (the harness counts that as a crash). */
  run(input: T): void;
  show(input: T): string;
}

class WrongAnswer extends Error {}

function truncate(text: string, max = 100): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} chars)`;
}
const showJson = (value: unknown) => {
  try {
    return truncate(JSON.stringify(value) ?? String(value));
  } catch {
    return truncate(String(value));
  }
};

/** `run` that lets through only the expected typed error. */
function expecting(isExpected: (error: unknown) => boolean, fn: () => void): void {
  try {
    fn();
  } catch (error) {
    if (!isExpected(error)) throw error;
  }
}

// ---- adversarial pieces -------------------------------------------------------------------------------

/** One character (or short piece) repeated up to `max` times: the classic backtracking and quadratic trigger. */
const run = (pieces: string[], max: number) =>
  fc.tuple(fc.constantFrom(...pieces), fc.integer({ min: 1, max })).map(([piece, n]) => piece.repeat(n));
const b64url = (text: string) => Buffer.from(text, 'utf8').toString('base64url');

// ---- cursor -------------------------------------------------------------------------------------------

const channelName = fc.oneof(fc.stringMatching(/^[A-Za-z0-9_.:-]{1,128}$/), fc.constantFrom('__proto__', 'constructor', 'a', 'user:1'));
const cursorTarget: Target<string> = {
  name: 'cursor decoder',
  inputs: 160_000,
  arbitrary: fc.oneof(
    { weight: 30, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
    { weight: 25, arbitrary: fc.stringMatching(/^[A-Za-z0-9_-]{0,300}$/) },
    { weight: 20, arbitrary: fc.jsonValue({ maxDepth: 5 }).map((v) => b64url(JSON.stringify(v) ?? 'null')) },
    {
      weight: 20,
      arbitrary: fc
        .record({ v: fc.oneof(fc.constant(1), fc.jsonValue({ maxDepth: 1 })), p: fc.dictionary(fc.oneof(channelName, fc.string({ maxLength: 140 })), fc.oneof(fc.maxSafeNat(), fc.integer(), fc.double(), fc.jsonValue({ maxDepth: 2 })), { maxKeys: 20 }) })
        .map((v) => b64url(JSON.stringify(v))),
    },
    {
      weight: 2,
      arbitrary: fc.oneof(
        run(['A', '-', '_', '=', '%', '\u0000'], 200_000),
        run(['[', '{"a":', '{"v":1,"p":'], 50_000).map(b64url),
        fc.integer({ min: 1, max: 20_000 }).map((n) => b64url(`{"v":1,"p":{${Array.from({ length: n }, (_, i) => `"c${i}":${i}`).join(',')}}}`)),
      ),
    },
  ),
  run(cursor) {
    let decoded: Map<string, number>;
    try {
      decoded = decodeCursor(cursor);
    } catch (error) {
      if (error instanceof HeraldError && error.code === 'invalid_cursor') return;
      throw error;
    }
    for (const [channel, seq] of decoded) {
      if (!isValidChannel(channel) || !Number.isSafeInteger(seq) || seq < 0) throw new WrongAnswer(`decoded ${channel}=${seq}`);
    }
  },
  show: (cursor) => showJson(cursor),
};

// ---- webhook signature headers ------------------------------------------------------------------------

interface WebhookInput {
  headers: Record<string, string | string[]>;
  body: Buffer;
  secrets: string[];
  /** Set when the input is a correctly signed request: then it must verify. */
  valid: boolean;
}

const ed = generateKeyPairSync('ed25519');
const rawEd = (key: Buffer) => key.subarray(key.length - 32).toString('base64');
const ED_PRIVATE = `whsk_${rawEd(ed.privateKey.export({ format: 'der', type: 'pkcs8' }))}`;
const ED_PUBLIC = `whpk_${rawEd(ed.publicKey.export({ format: 'der', type: 'spki' }))}`;
const SECRETS: Record<Scheme, string[]> = {
  standard: ['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', ED_PRIVATE],
  stripe: ['whsec_oZ8nus9PHnoltEtWZ3pGITZdeHWHoqnL'],
  github: ["It's a Secret to Everybody"],
  shopify: ['shpss_0123456789abcdef0123456789abcdef'],
  slack: ['8f742231b10e8888abcd99yyyzzz85a5'],
};
const HEADER_NAMES = [
  'webhook-id', 'webhook-timestamp', 'webhook-signature', 'svix-id', 'svix-timestamp', 'svix-signature', 'stripe-signature',
  'x-hub-signature-256', 'x-shopify-hmac-sha256', 'x-slack-signature', 'x-slack-request-timestamp', 'X-Hub-Signature-256',
];
const PIECES = ['t=', 'v1=', 'v0=', 'v1,', 'v1a,', ',', ' ', '=', '==', 'sha256=', String(NOW), '-1', 'ab', 'ff', '+/', 'AAAA', 'msg_1', '\t', '😀', '.'];
const headerText = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: 'binary', maxLength: 120 }) },
  { weight: 6, arbitrary: fc.array(fc.constantFrom(...PIECES), { maxLength: 40 }).map((p) => p.join('')) },
  // At and past the 64 KiB header bound, made of the separators the parsers split on.
  { weight: 1, arbitrary: run([',', ' ', 'v1,', 'v1a,AAAA ', 't=1,', 'v1=', '=', 'a', '9', 'sha256='], 70_000) },
);

const UNSIGNED_HEADERS = new Set(['x-github-delivery', 'x-shopify-webhook-id']);

function webhookTarget(scheme: Scheme): Target<WebhookInput> {
  const secrets = SECRETS[scheme];
  const body = fc.oneof(fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)), fc.string({ maxLength: 200 }).map((s) => Buffer.from(s)));
  const random = fc.record({
    headers: fc.dictionary(fc.constantFrom(...HEADER_NAMES), fc.oneof(headerText, fc.array(headerText, { maxLength: 3 })), { maxKeys: HEADER_NAMES.length }),
    body,
    secrets: fc.constant(secrets),
    valid: fc.constant(false),
  });
  // A correctly signed request, then (mostly) one change: a body byte, a header replaced, or a signature character.
  const mutated = fc.tuple(body, fc.integer({ min: 0, max: 3 }), fc.nat(), fc.integer({ min: 1, max: 255 }), headerText, fc.boolean()).map(
    ([payload, how, at, xor, text, ed25519]): WebhookInput => {
      const signing = scheme === 'standard' && ed25519 ? [ED_PRIVATE] : [secrets[0]!];
      const headers: Record<string, string> = sign(scheme, { secrets: signing, body: payload, id: `msg_${at}`, timestamp: NOW });
      const verifying = scheme === 'standard' && ed25519 ? [ED_PUBLIC] : secrets;
      if (how === 0) return { headers, body: payload, secrets: verifying, valid: true };
      if (how === 1 && payload.length > 0) {
        const changed = Buffer.from(payload);
        changed[at % changed.length]! ^= xor;
        return { headers, body: changed, secrets: verifying, valid: false };
      }
      // Only headers the signature covers: GitHub's and Shopify's delivery ids are outside theirs (the providers sign
      // the body alone), so a changed id verifies, as it does at GitHub and Shopify.
      const names = Object.keys(headers).filter((n) => !UNSIGNED_HEADERS.has(n));
      const name = names[at % names.length]!;
      if (how === 2 && text.trim() !== headers[name]) return { headers: { ...headers, [name]: text }, body: payload, secrets: verifying, valid: false };
      // Flip one bit of one character near the end (where the signature is), keeping the rest.
      const value = headers[name]!;
      const i = value.length - 1 - (at % Math.min(value.length, 40));
      const flipped = value.slice(0, i) + String.fromCharCode(value.charCodeAt(i) ^ (1 << (xor % 7))) + value.slice(i + 1);
      return { headers: { ...headers, [name]: flipped }, body: payload, secrets: verifying, valid: false };
    },
  );
  return {
    name: `${scheme} signature verify`,
    inputs: 80_000,
    arbitrary: fc.oneof({ weight: 3, arbitrary: random }, { weight: 2, arbitrary: mutated }),
    run({ headers, body, secrets: keys, valid }) {
      let ok = false;
      expecting(
        (e) => e instanceof WebhookVerificationError,
        () => {
          ok = verify(scheme, { secrets: keys, headers, body, now: NOW }).ok;
        },
      );
      if (valid && !ok) throw new WrongAnswer('a correctly signed request was refused');
      // A flipped bit can land on a letter's case in a hex digit or on whitespace that is trimmed: those still verify.
      if (!valid && ok && !benignChange(scheme, headers, body, keys)) throw new WrongAnswer('an unsigned or altered request verified');
    },
    show: ({ headers, body }) => showJson({ headers, body: truncate(body.toString('utf8'), 40) }),
  };
}

/** Whether an altered request that verified differs from a signed one only where the scheme allows (hex case). */
function benignChange(scheme: Scheme, headers: Record<string, string | string[]>, body: Buffer, keys: string[]): boolean {
  const lowered = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, typeof v === 'string' ? v.toLowerCase() : v]));
  if (scheme === 'standard' || scheme === 'shopify') return false;
  try {
    const expected = sign(scheme, { secrets: keys, body, timestamp: Number(lowered['stripe-signature']?.toString().match(/t=(\d+)/)?.[1] ?? lowered['x-slack-request-timestamp'] ?? NOW) });
    return Object.entries(expected).every(([k, v]) => UNSIGNED_HEADERS.has(k) || String(lowered[k]).trim().toLowerCase().includes(v.toLowerCase()));
  } catch {
    return false;
  }
}

// ---- WebSocket ops ------------------------------------------------------------------------------------

const OPS = ['auth', 'subscribe', 'unsubscribe', 'publish', 'ping', 'pong', '', 'SUBSCRIBE', '__proto__', 'constructor'];
const field = fc.oneof(fc.string({ maxLength: 40 }), channelName, fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.jsonValue({ maxDepth: 3 }));
const wsTarget: Target<string> = {
  name: 'WebSocket op decoder',
  inputs: 160_000,
  arbitrary: fc.oneof(
    { weight: 40, arbitrary: fc.record({ op: fc.oneof(fc.constantFrom(...OPS), field), channel: field, after: field, ref: field, data: field, type: field, id: field, token: field }, { requiredKeys: ['op'] }).map((f) => JSON.stringify(f)) },
    { weight: 15, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v) ?? '') },
    { weight: 15, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
    {
      weight: 2,
      arbitrary: fc.oneof(
        run(['[', '{"a":', '"', '\\', ' ', '{"op":"publish","ref":"r","channel":"c","data":['], 100_000),
        fc.integer({ min: 1, max: 100_000 }).map((n) => `{"op":"publish","ref":"r","channel":"c","data":${'['.repeat(n)}${']'.repeat(n)}}`),
        fc.integer({ min: 1, max: 50_000 }).map((n) => `{"op":"subscribe","channel":"${'a'.repeat(n)}"}`),
        fc.integer({ min: 1, max: 10_000 }).map((n) => `{${Array.from({ length: n }, (_, i) => `"k${i}":${i}`).join(',')},"op":"ping"}`),
      ),
    },
  ),
  run(text) {
    let op: ReturnType<typeof clientOpOf>;
    try {
      op = clientOpOf(parseFrame(text), text);
    } catch (error) {
      if (error instanceof HeraldError) return;
      throw error;
    }
    if ('channel' in op && !isValidChannel(op.channel)) throw new WrongAnswer(`accepted channel ${JSON.stringify(op.channel)}`);
    if (op.op === 'publish' && (typeof op.ref !== 'string' || op.ref.length === 0)) throw new WrongAnswer('publish without a ref');
  },
  show: (text) => showJson(text),
};

// ---- channel patterns ---------------------------------------------------------------------------------

/** The obviously right matcher: dynamic programming over (pattern position, name position), O(p·n). */
function referenceMatch(pattern: string, name: string): boolean {
  let row = new Uint8Array(name.length + 1);
  row[0] = 1;
  for (let p = 0; p < pattern.length; p++) {
    const next = new Uint8Array(name.length + 1);
    if (pattern[p] === '*') {
      let seen = 0;
      for (let n = 0; n <= name.length; n++) next[n] = seen = seen | row[n]!;
    } else {
      for (let n = 1; n <= name.length; n++) next[n] = row[n - 1]! & (pattern[p] === name[n - 1] ? 1 : 0);
    }
    row = next;
  }
  return row[name.length] === 1;
}

const patternTarget: Target<{ pattern: string; name: string }> = {
  name: 'channel pattern check + match',
  inputs: 200_000,
  arbitrary: fc.oneof(
    { weight: 40, arbitrary: fc.record({ pattern: fc.stringMatching(/^[ab*:]{0,24}$/), name: fc.stringMatching(/^[ab:]{0,40}$/) }) },
    { weight: 20, arbitrary: fc.record({ pattern: fc.stringMatching(/^[A-Za-z0-9_.:*-]{1,130}$/), name: channelName }) },
    { weight: 10, arbitrary: fc.record({ pattern: fc.string({ unit: 'binary', maxLength: 140 }), name: fc.string({ maxLength: 140 }) }) },
    {
      weight: 3,
      arbitrary: fc.record({
        pattern: fc.oneof(
          fc.integer({ min: 1, max: 64 }).map((n) => `user:${'*a'.repeat(n)}*b`),
          fc.integer({ min: 1, max: 20 }).map((n) => `${'a*'.repeat(n)}b`),
          run(['*', '**', 'a*', '*:'], 200),
          fc.constant('*'.repeat(128)),
        ),
        name: fc.oneof(run(['a', 'ab', ':', 'user:a'], 20_000), fc.integer({ min: 1, max: 128 }).map((n) => `user:${'a'.repeat(n)}`)),
      }),
    },
  ),
  run({ pattern, name }) {
    let valid = true;
    try {
      assertPattern(pattern);
    } catch (error) {
      if (!(error instanceof HeraldError && error.code === 'invalid_pattern')) throw error;
      valid = false;
    }
    if (valid !== isValidPattern(pattern)) throw new WrongAnswer('assertPattern and isValidPattern disagree');
    if (!valid) return;
    const got = matchesPattern(pattern, name);
    if (typeof got !== 'boolean') throw new WrongAnswer(`answered ${String(got)}`);
    if (pattern.length * name.length <= 40_000 && got !== referenceMatch(pattern, name)) throw new WrongAnswer(`answered ${got}, the reference ${!got}`);
  },
  show: ({ pattern, name }) => `pattern ${showJson(pattern)}, name ${showJson(name)}`,
};

// ---- JSON depth guard ---------------------------------------------------------------------------------

function referenceDepth(value: unknown): number {
  if (typeof value !== 'object' || value === null) return 0;
  let deepest = 0;
  for (const child of Array.isArray(value) ? value : Object.values(value)) deepest = Math.max(deepest, referenceDepth(child));
  return deepest + 1;
}

/** Nested `depth` levels, built without recursion; `kind` picks arrays, objects or both. */
function nested(depth: number, kind: number, leaf: unknown): unknown {
  let value = leaf;
  for (let i = 0; i < depth; i++) value = kind === 0 || (kind === 2 && i % 2 === 0) ? [value] : { k: value };
  return value;
}

const depthTarget: Target<{ value: unknown; max: number; depth: number | undefined; width?: number }> = {
  name: 'JSON depth guard',
  inputs: 100_000,
  arbitrary: fc.oneof(
    { weight: 40, arbitrary: fc.record({ value: fc.jsonValue({ maxDepth: 12 }), max: fc.integer({ min: 0, max: 14 }), depth: fc.constant(undefined) }) },
    {
      weight: 2,
      arbitrary: fc.tuple(fc.integer({ min: 1, max: 200_000 }), fc.integer({ min: 0, max: 2 }), fc.constantFrom(0, 64, 65, 1000, 200_000)).map(([depth, kind, max]) => ({ value: nested(depth, kind, 'x'), max, depth })),
    },
    {
      weight: 1,
      // Wide: many shallow siblings beside one deep branch.
      arbitrary: fc.tuple(fc.integer({ min: 1, max: 50_000 }), fc.integer({ min: 60, max: 70 })).map(([width, depth]) => ({
        value: { wide: Array.from({ length: width }, (_, i) => ({ i })), deep: nested(depth, 2, null) },
        max: 64,
        depth: depth + 1,
        width,
      })),
    },
  ),
  run({ value, max, depth }) {
    const got = exceedsDepth(value, max);
    const expected = (depth ?? referenceDepth(value)) > max;
    if (got !== expected) throw new WrongAnswer(`answered ${got} for depth ${depth ?? referenceDepth(value)}, max ${max}`);
  },
  show: ({ value, max, depth, width }) =>
    depth === undefined ? `${showJson(value)}, max ${max}` : `nested ${depth} deep${width ? ` beside ${width} shallow siblings` : ''}, max ${max}`,
};

/** `depth` levels of JSON text around `leaf` (JSON text itself), built as text: JSON.stringify recurses. */
function nestedText(depth: number, kind: number, leaf: string): string {
  const open: string[] = [];
  const close: string[] = [];
  for (let i = 0; i < depth; i++) {
    const array = kind === 0 || (kind === 2 && i % 2 === 0);
    open.push(array ? '[' : '{"k":');
    close.push(array ? ']' : '}');
  }
  return `${open.join('')}${leaf}${close.reverse().join('')}`;
}

/** JSON text, spaced or not: the text scan must find the depth the parsed value has, whatever its strings hold. */
const textDepthTarget: Target<{ text: string; max: number; depth: number | undefined }> = {
  name: 'JSON text depth scan',
  inputs: 100_000,
  arbitrary: fc.oneof(
    {
      weight: 40,
      arbitrary: fc.record({
        text: fc.tuple(fc.jsonValue({ maxDepth: 12 }), fc.boolean()).map(([v, spaced]) => JSON.stringify(v, null, spaced ? 1 : 0)),
        max: fc.integer({ min: 0, max: 14 }),
        depth: fc.constant(undefined),
      }),
    },
    {
      weight: 2,
      arbitrary: fc
        .tuple(fc.integer({ min: 1, max: 200_000 }), fc.integer({ min: 0, max: 2 }), fc.constantFrom(0, 64, 1008), fc.constantFrom('"x"', '"[{\\\\\\"[["', '"]]}}\\\\"'))
        .map(([depth, kind, max, leaf]) => ({ text: nestedText(depth, kind, leaf), max, depth })),
    },
  ),
  run({ text, max, depth }) {
    const got = nestsDeeperThan(text, max);
    const expected = (depth ?? referenceDepth(JSON.parse(text))) > max;
    if (got !== expected) throw new WrongAnswer(`answered ${got}, max ${max}`);
  },
  show: ({ text, max }) => `${truncate(text)}, max ${max}`,
};

// ---- harness ------------------------------------------------------------------------------------------

interface Report {
  name: string;
  inputs: number;
  crashes: number;
  examples: string[];
  slowestUs: number;
  slowestInput: string;
  retimedUs: number;
  seconds: number;
}

function fuzz<T>(target: Target<T>, seed: number): Report {
  const total = Math.round(target.inputs * SCALE);
  const started = performance.now();
  const report: Report = { name: target.name, inputs: 0, crashes: 0, examples: [], slowestUs: -1, slowestInput: '', retimedUs: 0, seconds: 0 };
  let slowest: T | undefined;
  for (let done = 0, chunk = 0; done < total; chunk++) {
    const batch = fc.sample(target.arbitrary, { numRuns: Math.min(CHUNK, total - done), seed: seed + chunk });
    for (const input of batch) {
      const t0 = performance.now();
      try {
        target.run(input);
      } catch (error) {
        report.crashes++;
        if (report.examples.length < 3) report.examples.push(`${error instanceof Error ? `${error.name}: ${error.message}` : String(error)} ← ${target.show(input)}`);
      }
      const us = (performance.now() - t0) * 1000;
      if (us > report.slowestUs) {
        report.slowestUs = us;
        slowest = input;
      }
    }
    done += batch.length;
    report.inputs = done;
  }
  if (slowest !== undefined) {
    report.slowestInput = target.show(slowest);
    // Run the slowest input again: a one-off GC pause shows as a much faster re-run, real cost does not.
    let best = Infinity;
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      try {
        target.run(slowest);
      } catch {
        // counted already
      }
      best = Math.min(best, (performance.now() - t0) * 1000);
    }
    report.retimedUs = best;
  }
  report.seconds = (performance.now() - started) / 1000;
  return report;
}

// Each target has its own input type, so each is wrapped in a function of the seed.
const targets: Array<(seed: number) => Report> = [
  (seed) => fuzz(cursorTarget, seed),
  ...(['standard', 'stripe', 'github', 'shopify', 'slack'] as const).map((scheme) => (seed: number) => fuzz(webhookTarget(scheme), seed)),
  (seed) => fuzz(wsTarget, seed),
  (seed) => fuzz(patternTarget, seed),
  (seed) => fuzz(depthTarget, seed),
  (seed) => fuzz(textDepthTarget, seed),
];

console.log(`fuzz: seed ${SEED}, scale ${SCALE} (replay with FUZZ_SEED=${SEED})`);
const reports: Report[] = [];
for (const [i, fuzzTarget] of targets.entries()) {
  const report = fuzzTarget(SEED + i * 1_000_003);
  reports.push(report);
  console.log(
    `${report.name.padEnd(30)} ${String(report.inputs).padStart(8)} inputs  ${String(report.crashes).padStart(3)} crashes  ` +
      `${report.seconds.toFixed(1).padStart(5)} s  slowest ${report.slowestUs.toFixed(0).padStart(6)} µs (re-run ${report.retimedUs.toFixed(0)} µs): ${report.slowestInput}`,
  );
  for (const example of report.examples) console.log(`    crash: ${truncate(example, 400)}`);
}
const inputs = reports.reduce((n, r) => n + r.inputs, 0);
const crashes = reports.reduce((n, r) => n + r.crashes, 0);
const seconds = reports.reduce((n, r) => n + r.seconds, 0);
console.log(`total: ${inputs} inputs, ${crashes} crashes, ${seconds.toFixed(0)} s`);
process.exit(crashes > 0 ? 1 : 0);

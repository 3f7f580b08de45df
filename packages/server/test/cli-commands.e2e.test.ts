import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verify } from '@herald/webhooks';
import { ADMIN_KEY, BIN, startTestServer, until, type TestServer } from './helpers.js';

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe('herald CLI commands against a real server', { timeout: 120_000 }, () => {
  let h: TestServer;
  let env: Record<string, string>;
  const children: ChildProcess[] = [];
  before(async () => {
    h = await startTestServer({ delivery: { allowPrivateNetworks: ['127.0.0.0/8'] } });
    env = { HERALD_URL: h.url, HERALD_KEY: ADMIN_KEY };
  });
  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await h.stop();
  });

  /** Runs the built CLI to the end, with optional stdin. */
  const run = (args: string[], options: { stdin?: string; env?: Record<string, string> } = {}): Promise<Ran> =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env, ...options.env }, stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.stdin.end(options.stdin ?? '');
      child.once('exit', (code) => resolve({ code, stdout, stderr }));
    });

  /** Starts a long-running command; `output()` is what it printed so far. */
  const start = (args: string[]) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    return { child, exited, stdout: () => stdout, stderr: () => stderr };
  };

  it('has --help on every command', async () => {
    for (const command of ['publish', 'tail', 'listen', 'replay', 'sign', 'verify', 'keys', 'tokens', 'endpoints', 'sources', 'channels', 'nodes', 'serve']) {
      const res = await run([command, '--help']);
      assert.equal(res.code, 0, `${command} --help: ${res.stderr}`);
      assert.match(res.stdout, /Usage:/, command);
    }
    const top = await run(['--help']);
    assert.match(top.stdout, /Exit codes: 0 ok, 1 failed, 2 bad usage/);
  });

  it('publish: from an argument or stdin; bad input exits 2, server refusals exit 1', async () => {
    const res = await run(['publish', 'cli', '{"n":1}', '--type', 'cli.test']);
    assert.equal(res.code, 0, res.stderr);
    const event = JSON.parse(res.stdout);
    assert.deepEqual([event.channel, event.seq, event.type, event.data], ['cli', 1, 'cli.test', { n: 1 }]);
    const piped = await run(['publish', 'cli', '-'], { stdin: '{"n":2}' });
    assert.equal(JSON.parse(piped.stdout).seq, 2);
    const bad = await run(['publish', 'cli', '{nope']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /not valid JSON/);
    const noChannel = await run(['publish']);
    assert.equal(noChannel.code, 2);
    const unauthorized = await run(['publish', 'cli', '1'], { env: { HERALD_KEY: '' } });
    assert.equal(unauthorized.code, 1);
    assert.match(unauthorized.stderr, /401 unauthorized.*HERALD_KEY/);
    const unreachable = await run(['publish', 'cli', '1', '--url', 'http://127.0.0.1:1']);
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.stderr, /cannot reach/);
    const badFlag = await run(['publish', 'cli', '1', '--tpye', 'x']);
    assert.equal(badFlag.code, 2);
    // An empty type goes to the server, which refuses it, rather than being published as the default type.
    const emptyType = await run(['publish', 'cli', '1', '--type', '']);
    assert.equal(emptyType.code, 1, emptyType.stdout);
    assert.match(emptyType.stderr, /400 /);
    assert.equal((await h.call('GET', '/v1/channels/cli/events')).body.head, 2);
  });

  it('bad usage exits 2 with one line, never a stack: numbers JSON cannot carry, names no URL can, extra arguments, a --url in the wrong place', async () => {
    const usageLine = async (args: string[], message: RegExp) => {
      const res = await run(args);
      assert.equal(res.code, 2, `${args.join(' ')}: ${res.stderr}`);
      assert.match(res.stderr, message, args.join(' '));
      assert.doesNotMatch(res.stderr, /\n\s+at /, `${args.join(' ')}: no stack`);
    };
    await usageLine(['publish', 'cli:big', '{"amount":1e400}'], /beyond what JSON can carry.*sent as null/);
    await usageLine(['publish', '..', '{}'], /invalid channel name "\.\."/);
    await usageLine(['publish', 'cli:x', '{}', 'extra'], /unexpected argument "extra"/);
    await usageLine(['keys', 'list', 'extra'], /unexpected argument "extra": herald keys list/);
    await usageLine(['endpoints', 'get', 'ep_1', 'ep_2'], /unexpected argument "ep_2"/);
    await usageLine(['replay', 'cli', '--forward-to', 'nope'], /--forward-to "nope" is not a URL/);
    await usageLine(['replay', 'cli', 'other'], /unexpected argument "other"/);
    await usageLine(['tail', 'bad chan'], /invalid channel name "bad chan"/);
    await usageLine(['tail', 'c', '--after', '1.5'], /--after takes a seq/);
    await usageLine(['replay', 'c', '--until', 'x'], /--until takes a seq/);
    for (const command of [['listen', '--forward-to', 'http://127.0.0.1:9/', '--channel', 'c'], ['replay', 'c', '--forward-to', 'http://127.0.0.1:9/']]) {
      await usageLine([...command, '--secret', 'bad'], /--secret is too weak to sign with: .*at least 24 bytes; this one has 2\. \(left out, a new one is made and printed\)/);
      await usageLine([...command, '--secret', `whsec_${Buffer.alloc(24, 1).toString('base64')}`], /--secret is too weak to sign with: The secret is too predictable/);
    }
    await usageLine(['listen', '--forward-to', 'http://127.0.0.1:9/', '--channel', '.'], /invalid channel name "\."/);
    await usageLine(['endpoints', 'create', '--url', 'http://127.0.0.1:9/hook', '--channels', 'a'], /--url http:\/\/127\.0\.0\.1:9\/hook names the Herald server/);
    assert.equal((await h.call('GET', '/v1/channels/cli:big/events')).body.head, 0, 'nothing was published');
  });

  it('a server that answers what is not JSON (a proxy page) is one line and exit 1, not a stack', async () => {
    const proxy = createServer((_req, res) => res.writeHead(502, { 'content-type': 'text/html' }).end('<html>Bad Gateway</html>'));
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    try {
      const res = await run(['keys', 'list', '--url', `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`]);
      assert.equal(res.code, 1, res.stderr);
      assert.match(res.stderr, /answered 502 with a body that is not JSON \(is it Herald\?\): "<html>Bad Gateway<\/html>"/);
      assert.doesNotMatch(res.stderr, /\n\s+at /);
    } finally {
      proxy.close();
    }
  });

  it('tail: prints history after --after, then live events; --json is one per line; Ctrl-C exits 0', async () => {
    const readable = start(['tail', 'tailme', '--after', '0']);
    const json = start(['tail', 'tailme', '--json']);
    // --json starts live: wait until it is connected, or the first event would come before it.
    await until(() => json.stderr().includes('[connected') && readable.stderr().includes('[connected'), 10_000);
    await h.call('POST', '/v1/channels/tailme/events', { body: { type: 'first', data: 1 } });
    await until(() => readable.stdout().includes('first'), 10_000);
    await until(() => json.stdout().includes('first'), 10_000);
    await h.call('POST', '/v1/channels/tailme/events', { body: { type: 'second', data: { x: 2 } } });
    await until(() => readable.stdout().includes('second') && json.stdout().includes('second'), 10_000);
    assert.match(readable.stdout(), /tailme #1 {2}first {2}1\n.*tailme #2 {2}second {2}\{"x":2\}/s);
    const lines = json.stdout().trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((e) => e.seq), [1, 2]);
    readable.child.kill('SIGINT');
    json.child.kill('SIGINT');
    assert.equal(await readable.exited, 0);
    assert.equal(await json.exited, 0);
    const none = await run(['tail']);
    assert.equal(none.code, 2);
  });

  it('tail: a channel the key may not read is named and the others followed; every channel refused exits 1; --after past the last event says so', async () => {
    const key = (await h.call('POST', '/v1/keys', { body: { name: 'tail-some', scopes: ['subscribe'], channels: ['open:*'] } })).body.key;
    const startWith = (args: string[]) => {
      const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env, HERALD_KEY: key }, stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(child);
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      return { child, exited: new Promise<number | null>((resolve) => child.once('exit', resolve)), stdout: () => stdout, stderr: () => stderr };
    };
    for (let i = 1; i <= 3; i++) await h.call('POST', '/v1/channels/open:t/events', { body: { data: i } });
    const some = startWith(['tail', 'closed:t', 'open:t', '--after', '1']);
    await until(() => some.stdout().includes('open:t #3'), 10_000, 'the readable channel followed');
    assert.match(some.stderr(), /\[closed:t refused, following the others: forbidden: /);
    await h.call('POST', '/v1/channels/open:t/events', { body: { data: 4 } });
    await until(() => some.stdout().includes('open:t #4'), 10_000, 'live events of the readable channel');
    some.child.kill('SIGINT');
    assert.equal(await some.exited, 0);

    const none = startWith(['tail', 'closed:a', 'closed:b', 'closed:a']);
    assert.equal(await none.exited, 1, none.stderr());
    assert.match(none.stderr(), /forbidden: /);

    const past = startWith(['tail', 'open:t', '--after', '50']);
    await until(() => past.stdout().includes('open:t #4'), 10_000, 'the channel read from its oldest event');
    assert.match(past.stderr(), /\[#50 is past the last event of open:t: following it from its oldest, #1\]/);
    assert.doesNotMatch(past.stderr(), /trimmed/);
    past.child.kill('SIGINT');
    assert.equal(await past.exited, 0);
  });

  it('listen: forwards each event to a local app as a signed webhook and prints its status', async () => {
    const received: Array<{ headers: Record<string, string | string[] | undefined>; body: string }> = [];
    const app: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        received.push({ headers: req.headers, body });
        res.writeHead(received.length === 2 ? 500 : 200).end();
      });
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    const target = `http://127.0.0.1:${(app.address() as AddressInfo).port}/webhooks`;
    const secret = 'whsec_' + Buffer.from('listen-secret-listen-secret!').toString('base64');
    const listener = start(['listen', '--forward-to', target, '--channel', 'fwd', '--secret', secret]);
    try {
      await until(() => listener.stderr().includes('[connected'), 10_000);
      await h.call('POST', '/v1/channels/fwd/events', { body: { type: 'order.created', data: { id: 1 } } });
      await h.call('POST', '/v1/channels/fwd/events', { body: { type: 'order.paid', data: { id: 1 } } });
      await until(() => listener.stdout().split('\n').filter(Boolean).length === 2, 10_000);
      assert.match(listener.stdout(), /--> 200 fwd #1 order\.created evt_\S+ \(\d+ ms\)\n--> 500 fwd #2 order\.paid/);
      for (const r of received) assert.equal(verify('standard', { secret, headers: r.headers, body: r.body }).ok, true);
      assert.equal(JSON.parse(received[0]!.body).type, 'order.created');
      listener.child.kill('SIGINT');
      assert.equal(await listener.exited, 0);
    } finally {
      app.close();
    }
    const missing = await run(['listen', '--channel', 'x']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--forward-to is required/);
  });

  it('replay: prints history as JSON lines, or re-sends it signed, with progress on stderr', async () => {
    for (let i = 1; i <= 3; i++) await h.call('POST', '/v1/channels/again/events', { body: { data: i } });
    const printed = await run(['replay', 'again', '--after', '1']);
    assert.equal(printed.code, 0);
    assert.deepEqual(printed.stdout.trim().split('\n').map((l) => JSON.parse(l).data), [2, 3]);
    assert.match(printed.stderr, /replayed 2 events/);
    // Past the head: nothing, said so (it said "partly trimmed" and replayed from #1); --until before --after: usage.
    const past = await run(['replay', 'again', '--after', '5']);
    assert.deepEqual([past.code, past.stdout], [0, '']);
    assert.match(past.stderr, /#5 is past the channel's head, #3: nothing to replay/);
    const backwards = await run(['replay', 'again', '--after', '2', '--until', '1']);
    assert.equal(backwards.code, 2);
    assert.match(backwards.stderr, /--until #1 comes before --after #2/);
    const got: string[] = [];
    const app = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        got.push(body);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    try {
      const sent = await run(['replay', 'again', '--forward-to', `http://127.0.0.1:${(app.address() as AddressInfo).port}/`]);
      assert.equal(sent.code, 0, sent.stderr);
      assert.equal(got.length, 3);
      assert.match(sent.stderr, /Signing secret: whsec_/);
    } finally {
      app.close();
    }
  });

  it('sign and verify: byte-exact headers, 0 when it verifies, 1 when not', async () => {
    const signed = await run(['sign', '--scheme', 'github', '--secret', "It's a Secret to Everybody", '--id', 'd-1', 'Hello, World!']);
    assert.equal(signed.stdout, 'x-hub-signature-256: sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17\nx-github-delivery: d-1\n');
    const headerArgs = (text: string) => text.trim().split('\n').flatMap((line) => ['--header', line]);
    const std = await run(['sign', '--scheme', 'standard', '--secret', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', '--id', 'msg_1', '-'], { stdin: '{"a":1}' });
    const ok = await run(['verify', '--scheme', 'standard', '--secret', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', ...headerArgs(std.stdout), '{"a":1}']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(JSON.parse(ok.stdout).id, 'msg_1');
    const tampered = await run(['verify', '--scheme', 'standard', '--secret', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', ...headerArgs(std.stdout), '{"a":2}']);
    assert.equal(tampered.code, 1);
    assert.match(tampered.stderr, /no_matching_signature/);
    const badScheme = await run(['sign', '--scheme', 'paypal', '--secret', 'x', 'body']);
    assert.equal(badScheme.code, 2);
  });

  it('keys, tokens, endpoints and sources drive the admin API', async () => {
    const key = JSON.parse((await run(['keys', 'create', '--name', 'cli', '--scopes', 'subscribe,publish', '--channels', 'user:*'])).stdout);
    assert.match(key.key, /^hk_/);
    assert.ok(JSON.parse((await run(['keys', 'list'])).stdout).keys.some((k: any) => k.id === key.id));
    const token = JSON.parse((await run(['tokens', 'create', '--sub', 'u1', '--channels', 'user:1', '--ttl', '60'], { env: { HERALD_KEY: key.key } })).stdout);
    assert.match(token.token, /^eyJ/);
    assert.equal((await h.call('GET', '/v1/channels/user:1/events', { token: token.token })).status, 200);
    const revoked = await run(['keys', 'revoke', key.id]);
    assert.ok(JSON.parse(revoked.stdout).revokedAt);

    const endpoint = JSON.parse((await run(['endpoints', 'create', 'http://127.0.0.1:9/hook', '--channels', 'orders,shop:*', '--types', 'order.*'])).stdout);
    assert.match(endpoint.secret, /^whsec_/);
    assert.deepEqual(endpoint.channels, ['orders', 'shop:*']);
    assert.equal(JSON.parse((await run(['endpoints', 'disable', endpoint.id])).stdout).enabled, false);
    assert.equal(JSON.parse((await run(['endpoints', 'get', endpoint.id])).stdout).enabled, false);
    assert.deepEqual(JSON.parse((await run(['endpoints', 'deliveries', endpoint.id, '--status', 'failed'])).stdout), { deliveries: [] });
    assert.match(JSON.parse((await run(['endpoints', 'rotate-secret', endpoint.id, '--grace', '60'])).stdout).secret, /^whsec_/);
    const refused = await run(['endpoints', 'create', 'http://169.254.169.254/', '--channels', 'x']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /422 unprocessable/);
    assert.equal((await run(['endpoints', 'delete', endpoint.id])).code, 0);

    const created = await run(['sources', 'create', '--name', 'gh', '--provider', 'github', '--secret', 'gh-secret-one-0123456789']);
    const source = JSON.parse(created.stdout);
    assert.equal(source.channel, 'gh');
    assert.match(created.stderr, new RegExp(`Give github this webhook URL .*: ${h.url}/v1/ingest/gh\n`));
    assert.equal(JSON.parse((await run(['sources', 'rotate', 'gh', '--secret', 'gh-secret-two-0123456789'])).stdout).secrets.length, 2);
    assert.equal(JSON.parse((await run(['sources', 'list'])).stdout).sources.length, 1);
    assert.equal((await run(['sources', 'delete', 'gh'])).code, 0);
    const missing = await run(['sources', 'get', 'gh']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /404 not_found/);
    const unknownSub = await run(['keys', 'frobnicate']);
    assert.equal(unknownSub.code, 2);
  });

  it('endpoints update, test and stats; sources ingests; channels list; nodes list', async () => {
    const received: Array<{ type: string; data: unknown }> = [];
    const receiver: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        received.push(JSON.parse(body) as { type: string; data: unknown });
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    try {
      const hook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
      const endpoint = JSON.parse((await run(['endpoints', 'create', 'http://127.0.0.1:9/old', '--channels', 'orders'])).stdout);
      const updated = JSON.parse((await run(['endpoints', 'update', endpoint.id, '--endpoint-url', hook, '--channels', 'orders,refunds', '--description', 'shop'])).stdout);
      assert.deepEqual([updated.url, updated.channels, updated.description], [hook, ['orders', 'refunds'], 'shop']);
      const nothing = await run(['endpoints', 'update', endpoint.id]);
      assert.equal(nothing.code, 2);
      assert.match(nothing.stderr, /name something to change/);
      const badData = await run(['endpoints', 'test', endpoint.id, '--data', '{not json']);
      assert.equal(badData.code, 2);
      assert.match(badData.stderr, /--data takes JSON/);
      const tested = await run(['endpoints', 'test', endpoint.id, '--type', 'cli.ping', '--data', '{"n":1}']);
      assert.equal(tested.code, 0, tested.stderr);
      assert.ok(JSON.parse(tested.stdout).id);
      await until(() => received.length === 1, 10_000, 'the test event');
      assert.deepEqual(received.map((e) => [e.type, e.data]), [['cli.ping', { n: 1 }]]);
      await until(async () => JSON.parse((await run(['endpoints', 'stats', endpoint.id])).stdout).succeeded === 1, 10_000, 'its success in the stats');
      assert.equal((await run(['endpoints', 'delete', endpoint.id])).code, 0);
    } finally {
      receiver.close();
    }

    assert.equal((await run(['sources', 'create', '--name', 'ingested', '--provider', 'github', '--secret', 'gh-secret-one-0123456789'])).code, 0);
    const unsigned = await fetch(`${h.url}/v1/ingest/ingested`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(unsigned.status, 401);
    const ingests = JSON.parse((await run(['sources', 'ingests', 'ingested'])).stdout).ingests;
    assert.equal(ingests.length, 1, JSON.stringify(ingests));
    assert.equal((await run(['sources', 'ingests', 'no-such-source'])).code, 1);

    for (const channel of ['cli-list:a', 'cli-list:b', 'cli-other']) await h.call('POST', `/v1/channels/${channel}/events`, { body: { data: 1 } });
    const listed = JSON.parse((await run(['channels', 'list', '--prefix', 'cli-list:', '--limit', '1'])).stdout);
    assert.deepEqual(listed.channels.map((c: { name: string }) => c.name), ['cli-list:a']);
    const next = JSON.parse((await run(['channels', 'list', '--prefix', 'cli-list:', '--after', 'cli-list:a'])).stdout);
    assert.deepEqual(next.channels.map((c: { name: string }) => c.name), ['cli-list:b']);
    const nodes = JSON.parse((await run(['nodes', 'list'])).stdout);
    assert.equal(nodes.nodes.length, 1, JSON.stringify(nodes));
  });
});

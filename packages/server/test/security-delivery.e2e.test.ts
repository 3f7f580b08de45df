// Issue #10, items 7, 8 and 10 through the real server: the SSRF guard on IPv4 embedded in IPv6,
// endpoint header validation, strong secrets and secret fingerprints.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateSecret, sign } from '@herald/webhooks';
import { startTestServer, until, type TestServer } from './helpers.js';

const fingerprint = (secret: string) => `sha256:${createHash('sha256').update(secret).digest('hex').slice(0, 12)}`;

describe('SSRF guard: IPv4 embedded in IPv6 (issue #10, item 7)', () => {
  let h: TestServer;
  before(async () => {
    h = await startTestServer({ delivery: { httpsOnly: false } });
  });
  after(async () => {
    await h.stop();
  });

  const INWARD = [
    // The six from the issue, as typed; the URL parser rewrites the dotted ones to hex.
    'http://[64:ff9b::127.0.0.1]/hook',
    'http://[64:ff9b::a9fe:a9fe]/latest/meta-data',
    'http://[::ffff:0:7f00:1]/hook',
    'http://[::127.0.0.1]/hook',
    'http://[2002:7f00:1::]/hook',
    'http://[fec0::1]/hook',
    // The other forms named in the brief.
    'http://[::ffff:127.0.0.1]/hook',
    'http://[::ffff:7f00:1]/hook',
    'http://[::ffff:0:10.0.0.1]/hook',
    'http://[64:ff9b:1::a00:1]/hook',
    'http://[2002:a9fe:a9fe::1]/hook',
    'http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hook',
  ];

  for (const url of INWARD) {
    it(`refuses ${url}`, async () => {
      const res = await h.call('POST', '/v1/endpoints', { body: { url, channels: ['*'] } });
      // Every SSRF refusal is 422 `unprocessable`, as for plain loopback and private addresses.
      assert.equal(res.status, 422, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'unprocessable');
      assert.match(res.body.error.message, /private, loopback, link-local, multicast or reserved/);
    });
  }

  it('refuses the same URLs on PATCH, and accepts the embedding of a public address', async () => {
    const created = await h.call('POST', '/v1/endpoints', { body: { url: 'http://[64:ff9b::5db8:d822]/hook', channels: ['*'], enabled: false } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const patched = await h.call('PATCH', `/v1/endpoints/${created.body.id}`, { body: { url: 'http://[2002:7f00:1::]/hook' } });
    assert.equal(patched.status, 422);
    assert.equal((await h.call('GET', `/v1/endpoints/${created.body.id}`)).body.url, 'http://[64:ff9b::5db8:d822]/hook');
  });
});

/** A local receiver that records each request's headers. */
async function receiver(): Promise<{ url: string; got: IncomingHttpHeaders[]; server: Server }> {
  const got: IncomingHttpHeaders[] = [];
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      got.push(req.headers);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, got, server };
}

describe('endpoint headers and secrets (issue #10, items 8 and 10)', () => {
  let h: TestServer;
  let r: Awaited<ReturnType<typeof receiver>>;
  before(async () => {
    h = await startTestServer({ delivery: { httpsOnly: false, allowPrivateNetworks: ['127.0.0.0/8'] } });
    r = await receiver();
  });
  after(async () => {
    await h.stop();
    r.server.closeAllConnections();
    await new Promise((resolve) => r.server.close(resolve));
  });

  const create = (body: Record<string, unknown>) => h.call('POST', '/v1/endpoints', { body: { url: r.url, channels: ['hdr'], ...body } });

  const BAD_HEADERS: Array<[string, Record<string, string>]> = [
    ['CRLF injection (the issue)', { 'X-Val': 'a\r\nInjected: b' }],
    ['transfer-encoding (the issue)', { 'transfer-encoding': 'chunked' }],
    ['a bare LF', { 'x-a': 'a\nb' }],
    ['a bare CR', { 'x-a': 'a\rb' }],
    ['NUL', { 'x-a': 'a\u0000b' }],
    ['another control character', { 'x-a': 'a\u0007b' }],
    ['DEL', { 'x-a': 'a\u007fb' }],
    ['a character above U+00FF', { 'x-a': 'caf\u00e9 \u2603' }],
    ['leading whitespace', { 'x-a': ' a' }],
    ['a space in the name', { 'x a': 'b' }],
    ['a colon in the name', { 'x-a:': 'b' }],
    ['a CRLF in the name', { 'x-a\r\nInjected': 'b' }],
    ['a non-ASCII name', { 'x-\u00e9': 'b' }],
    ['an empty name', { '': 'b' }],
    ['Connection', { Connection: 'close' }],
    ['keep-alive', { 'keep-alive': 'timeout=5' }],
    ['proxy-authorization', { 'Proxy-Authorization': 'Basic eA==' }],
    ['proxy-connection', { 'proxy-connection': 'keep-alive' }],
    ['te', { TE: 'trailers' }],
    ['trailer', { trailer: 'x-a' }],
    ['upgrade', { upgrade: 'websocket' }],
    ['host', { Host: 'internal.example' }],
    ['content-length', { 'content-length': '0' }],
    ['content-type', { 'Content-Type': 'text/plain' }],
    ['user-agent', { 'user-agent': 'spoof' }],
    ['expect', { expect: '100-continue' }],
    ['webhook-id', { 'webhook-id': 'msg_x' }],
    ['webhook-timestamp', { 'Webhook-Timestamp': '1' }],
    ['webhook-signature', { 'webhook-signature': 'v1,AAAA' }],
    ['stripe-signature', { 'stripe-signature': 't=1,v1=00' }],
    ['x-hub-signature-256', { 'X-Hub-Signature-256': 'sha256=00' }],
    ['x-github-delivery', { 'X-GitHub-Delivery': 'mine' }],
    ['a name given twice in two casings', { 'x-tenant': 'a', 'X-Tenant': 'b' }],
    ['21 headers', Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`x-h${i}`, 'v']))],
    ['a 129-character name', { ['x'.repeat(129)]: 'v' }],
    ['a 4097-character value', { 'x-a': 'v'.repeat(4097) }],
    ['over 8 KiB in all', { 'x-a': 'v'.repeat(4000), 'x-b': 'v'.repeat(4000), 'x-c': 'v'.repeat(400) }],
  ];

  for (const [what, headers] of BAD_HEADERS) {
    it(`refuses headers with ${what}: 400 invalid_header, at create and at update`, async () => {
      const res = await create({ headers });
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'invalid_header');
      const ok = await create({ enabled: false });
      assert.equal(ok.status, 201);
      const patched = await h.call('PATCH', `/v1/endpoints/${ok.body.id}`, { body: { headers } });
      assert.equal(patched.status, 400);
      assert.equal(patched.body.error.code, 'invalid_header');
      assert.deepEqual((await h.call('GET', `/v1/endpoints/${ok.body.id}`)).body.headers, {}, 'a refused update changes nothing');
    });
  }

  it('accepts valid custom headers and sends them with every delivery', async () => {
    const headers = {
      Authorization: 'Bearer abc.def',
      'X-Tenant': 'acme',
      "x-odd!#$%&'*+.^_`|~": 'tab\there, "quotes", caf\u00e9',
      'x-full': 'v'.repeat(4096),
    };
    const res = await create({ headers });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.deepEqual(res.body.headers, headers);
    const twenty = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`x-h${i}`, 'v']));
    const patched = await h.call('PATCH', `/v1/endpoints/${res.body.id}`, { body: { headers: twenty } });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    await h.call('PATCH', `/v1/endpoints/${res.body.id}`, { body: { headers } });
    await h.call('POST', '/v1/channels/hdr/events', { body: { data: 1 } });
    await until(() => r.got.length >= 1);
    const got = r.got[0]!;
    assert.equal(got.authorization, 'Bearer abc.def');
    assert.equal(got['x-tenant'], 'acme');
    assert.equal(got['x-full'], 'v'.repeat(4096));
    assert.equal(got['content-type'], 'application/json');
    assert.match(String(got['webhook-signature']), /^v1,/);
    await h.call('DELETE', `/v1/endpoints/${res.body.id}`);
  });

  const WEAK: Array<[string, string]> = [
    ['standard', 'whsec_' + Buffer.alloc(16, 7).toString('base64')],
    ['standard', 'whsec_' + Buffer.alloc(32, 0).toString('base64')],
    ['standard', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2La'],
    ['standard', 'whsec_not base64!'],
    ['stripe', 'whsec_short'],
    ['stripe', 'whsec_' + 'ab'.repeat(20)],
    ['github', 'x'],
    ['github', 'fifteen-chars!!'],
    ['github', 'a'.repeat(64)],
  ];
  for (const [scheme, secret] of WEAK) {
    it(`refuses the ${scheme} endpoint secret ${JSON.stringify(secret.slice(0, 24))}: 400 weak_secret`, async () => {
      const res = await create({ scheme, secret });
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'weak_secret');
      assert.ok(!res.body.error.message.includes(secret), 'the refusal does not echo the secret');
    });
  }

  it('accepts strong endpoint secrets, and refuses a scheme change the secret is too weak for', async () => {
    const strong: Array<[string, string]> = [
      ['standard', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'],
      ['standard', generateSecret()],
      ['stripe', 'whsec_oZ8nus9PHnoltEtWZ3pGITZdeHWHoqnL'],
      ['github', 'github-hook-secret'],
      ['github', "It's a Secret to Everybody"],
    ];
    for (const [scheme, secret] of strong) {
      const res = await create({ scheme, secret, enabled: false });
      assert.equal(res.status, 201, `${scheme} ${secret}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.secret, secret);
      assert.equal(JSON.stringify((await h.call('GET', `/v1/endpoints/${res.body.id}`)).body).includes(secret.slice(6, 14)), false);
    }
    const gh = await create({ scheme: 'github', secret: 'github-hook-secret', enabled: false });
    const toStripe = await h.call('PATCH', `/v1/endpoints/${gh.body.id}`, { body: { scheme: 'stripe' } });
    assert.equal(toStripe.status, 400);
    assert.equal(toStripe.body.error.code, 'weak_secret');
  });
});

describe('source secrets: strong, and shown only as a fingerprint (issue #10, item 10)', () => {
  let h: TestServer;
  before(async () => {
    h = await startTestServer();
  });
  after(async () => {
    await h.stop();
  });

  const REAL_LOOKING: Record<string, string> = {
    stripe: 'whsec_oZ8nus9PHnoltEtWZ3pGITZdeHWHoqnL',
    github: "It's a Secret to Everybody",
    shopify: 'shpss_0123456789abcdef0123456789abcdef',
    slack: '8f742231b10e8888abcd99yyyzzz85a5',
    standard: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  };
  const WEAK: Record<string, string[]> = {
    stripe: ['whsec_1', 'whsec_' + 'k'.repeat(40), 'whsec_abcdefghijklmnopqrstuvw'],
    github: ['s', 'fifteen-chars!!', '0000000000000000000000'],
    shopify: ['shopify-secret', '0123456789abcdef0123456789abcde'],
    slack: ['slack-signing-secret', '8f742231b10e8888abcd99yyyzzz85a'],
    standard: [
      'whsec_' + Buffer.alloc(23, 1).toString('base64'),
      'whsec_' + Buffer.alloc(32, 1).toString('base64'),
      'whsec_***',
      // Ed25519 keys that do not parse (truncated in a copy, say): every delivery, and the old secret's too, would fail.
      'whpk_AAAA',
      'whsk_' + Buffer.alloc(31, 7).toString('base64'),
    ],
  };

  for (const [provider, secrets] of Object.entries(WEAK)) {
    it(`refuses weak ${provider} secrets at creation and rotation: 400 weak_secret`, async () => {
      for (const secret of secrets) {
        const res = await h.call('POST', '/v1/sources', { body: { name: `weak-${provider}`, provider, secrets: [secret] } });
        assert.equal(res.status, 400, `${secret}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.error.code, 'weak_secret');
        if (secret.length >= 8) assert.ok(!res.body.error.message.includes(secret), 'the refusal does not echo the secret');
      }
      // One weak secret among strong ones is enough to refuse.
      const mixed = await h.call('POST', '/v1/sources', { body: { name: `weak-${provider}`, provider, secrets: [REAL_LOOKING[provider], secrets[0]] } });
      assert.equal(mixed.status, 400);
      assert.equal((await h.call('GET', `/v1/sources/weak-${provider}`)).status, 404, 'nothing was created');
    });
  }

  it("accepts each provider's real secret format and shows only fingerprints", async () => {
    for (const [provider, secret] of Object.entries(REAL_LOOKING)) {
      const res = await h.call('POST', '/v1/sources', { body: { name: provider, provider, secrets: [secret] } });
      assert.equal(res.status, 201, `${provider}: ${JSON.stringify(res.body)}`);
      assert.deepEqual(res.body.secrets, [{ fingerprint: fingerprint(secret) }]);
    }
    const rotated = await h.call('POST', '/v1/sources/github/rotate', { body: { secret: 'github-rotated-0123456789', graceSeconds: 60 } });
    assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
    assert.deepEqual(rotated.body.secrets.map((s: { fingerprint: string }) => s.fingerprint), [fingerprint('github-rotated-0123456789'), fingerprint("It's a Secret to Everybody")]);
    assert.ok(rotated.body.secrets[1].expiresAt);
    const weakRotation = await h.call('POST', '/v1/sources/github/rotate', { body: { secret: 'short' } });
    assert.equal(weakRotation.status, 400);
    assert.equal(weakRotation.body.error.code, 'weak_secret');
    assert.equal((await h.call('GET', '/v1/sources/github')).body.secrets.length, 2, 'a refused rotation changes nothing');

    const one = await h.call('GET', '/v1/sources/stripe');
    const list = await h.call('GET', '/v1/sources');
    const shown = JSON.stringify([one.body, list.body]);
    for (const secret of [...Object.values(REAL_LOOKING), 'github-rotated-0123456789']) {
      // No run of 8 characters of any secret (past its well-known prefix) appears in what the API shows.
      const material = secret.replace(/^(whsec_|shpss_)/, '');
      for (let i = 0; i + 8 <= material.length; i++) assert.ok(!shown.includes(material.slice(i, i + 8)), `characters ${i}–${i + 7} of a secret are shown`);
    }
    assert.ok(!shown.includes('prefix'));
    for (const s of list.body.sources) for (const entry of s.secrets) assert.match(entry.fingerprint, /^sha256:[0-9a-f]{12}$/);

    // The fingerprinted secret is the one that verifies.
    const body = '{"id":"evt_1","type":"x"}';
    const res = await fetch(`${h.url}/v1/ingest/stripe`, { method: 'POST', headers: { 'content-type': 'application/json', ...sign('stripe', { secret: REAL_LOOKING.stripe!, body }) }, body });
    assert.equal(res.status, 200);
  });
});

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT } from 'jose';
import { ADMIN_KEY, rawConnection, startTestServer, until, type TestServer } from './helpers.js';

const TOKEN_SECRET = 'an-app-backend-shares-this-secret-0123456789';

describe('error answers and auth through the real server', () => {
  let h: TestServer;
  before(async () => {
    h = await startTestServer({ tokenSecret: TOKEN_SECRET, channels: { public: ['public:*'] }, limits: { bodyBytes: 4096 } });
  });
  after(async () => {
    await h.stop();
  });

  const expectError = (res: { status: number; body: any }, status: number, code: string) => {
    assert.equal(res.status, status, JSON.stringify(res.body));
    assert.equal(res.body.error.code, code);
    assert.equal(typeof res.body.error.message, 'string');
  };

  it('answers 413 over the body limit, 400 for bad JSON, bad channels and bad bodies', async () => {
    const tooLarge = await h.call('POST', '/v1/channels/c/events', { body: { data: 'x'.repeat(5000) } });
    expectError(tooLarge, 413, 'payload_too_large');
    assert.equal(tooLarge.body.error.message, 'The body is over the size limit of 4096 bytes.', 'limits.bodyBytes, so a client can split its batch');
    expectError(await h.call('POST', '/v1/channels/c/events', { raw: '{"data": ' }), 400, 'invalid_json');
    // An empty body with a JSON Content-Type: refused where the route takes a body, taken where it takes none.
    const empty = await h.call('POST', '/v1/channels/c/events', { raw: '' });
    expectError(empty, 400, 'invalid_json');
    assert.match(empty.body.error.message, /empty/);
    const key = await h.call('POST', '/v1/keys', { body: { name: 'doomed', scopes: ['subscribe'], channels: ['c'] } });
    const deleted = await h.call('DELETE', `/v1/keys/${key.body.id}`, { raw: '' });
    assert.equal(deleted.status, 200, JSON.stringify(deleted.body));
    // A public address literal: no DNS needed, and nothing is ever published to its channel.
    const endpoint = await h.call('POST', '/v1/endpoints', { body: { url: 'https://1.1.1.1/hook', channels: ['empty-body-only'] } });
    assert.equal(endpoint.status, 201, JSON.stringify(endpoint.body));
    const rotated = await h.call('POST', `/v1/endpoints/${endpoint.body.id}/rotate-secret`, { raw: '' });
    assert.equal(rotated.status, 200, `an optional body may be empty: ${JSON.stringify(rotated.body)}`);
    assert.match(rotated.body.secret, /^whsec_/);
    expectError(await h.call('POST', '/v1/channels/bad%20name/events', { body: { data: 1 } }), 400, 'invalid_channel');
    expectError(await h.call('POST', `/v1/channels/${'a'.repeat(129)}/events`, { body: { data: 1 } }), 400, 'invalid_channel');
    expectError(await h.call('GET', '/v1/channels/bad$name/events'), 400, 'invalid_channel');
    expectError(await h.call('POST', '/v1/channels/c/events', { body: { type: 't' } }), 400, 'bad_request');
    const extra = await h.call('POST', '/v1/channels/c/events', { body: { data: 1, extra: true } });
    expectError(extra, 400, 'bad_request');
    assert.match(extra.body.error.message, /must NOT have additional properties: "extra"$/, 'names the property');
    const scope = await h.call('POST', '/v1/keys', { body: { name: 'k', scopes: ['publsh'], channels: ['c'] } });
    expectError(scope, 400, 'bad_request');
    assert.match(scope.body.error.message, /must be equal to one of the allowed values: "publish", "subscribe", "admin"/, 'names the values allowed');
    // `.` and `..` are no channel names: URL parsers resolve them away in a path (fetch sends `/v1/channels/%2E%2E/events`
    // as `/v1/events`), so a channel of that name could never be read. Refused wherever a name is given.
    const batch = await h.call('POST', '/v1/events', { body: { events: [{ channel: '..', data: 1 }] } });
    expectError(batch, 400, 'invalid_channel');
    for (const path of ['/v1/channels/%2E%2E/events', '/v1/channels/./events']) {
      const raw = await rawConnection(h.url);
      try {
        // Sent as written, which only a client that does not parse the URL does.
        raw.socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_KEY}\r\nConnection: close\r\n\r\n`);
        await until(() => raw.received().includes('}'), 2000, `the answer to ${path}`);
        assert.match(raw.received(), /^HTTP\/1\.1 400 [^]*"invalid_channel"/, path);
      } finally {
        raw.socket.destroy();
      }
    }
    expectError(await h.call('POST', '/v1/channels/c/events', { body: { data: 1, id: 'has space' } }), 400, 'bad_request');
    expectError(await h.call('POST', '/v1/channels/c/events', { raw: 'data=1', headers: { 'content-type': 'text/plain' } }), 415, 'unsupported_media_type');
    expectError(await h.call('GET', '/v1/channels/c/events?limit=0'), 400, 'bad_request');
    expectError(await h.call('GET', '/v1/channels/c/events?after=-1'), 400, 'invalid_cursor');
    expectError(await h.call('GET', '/v1/nope'), 404, 'not_found');
  });

  it('answers 405 with Allow for a path served under other methods, OPTIONS with Allow, and 404 for no such path', async () => {
    for (const [method, path, allow] of [
      ['PUT', '/v1/events', 'GET, HEAD, POST, OPTIONS'],
      ['DELETE', '/v1/channels/c/events', 'GET, HEAD, POST, OPTIONS'],
      ['PATCH', '/v1/keys', 'GET, HEAD, POST, OPTIONS'],
      ['POST', '/v1/keys/key_x', 'GET, HEAD, DELETE, OPTIONS'],
      ['POST', '/healthz', 'GET, HEAD, OPTIONS'],
      ['DELETE', '/v1/ws', 'GET, HEAD, OPTIONS'],
    ] as const) {
      const res = await h.call(method, path);
      expectError(res, 405, 'method_not_allowed');
      assert.equal(res.headers.get('allow'), allow, `${method} ${path}`);
    }
    const options = await h.call('OPTIONS', '/v1/channels/c/events?after=0');
    assert.equal(options.status, 204);
    assert.equal(options.headers.get('allow'), 'GET, HEAD, POST, OPTIONS');
    // A path no route serves, under any method, is still 404 and says no Allow.
    for (const method of ['GET', 'POST', 'OPTIONS']) {
      const res = await h.call(method, '/v1/nope/deeper');
      assert.equal(res.status, 404, method);
      assert.equal(res.headers.get('allow'), null);
    }
  });

  it('answers a plain GET /v1/ws, which asks for no upgrade, with 426 and the protocol to upgrade to', async () => {
    const res = await h.call('GET', '/v1/ws');
    expectError(res, 426, 'upgrade_required');
    assert.equal(res.headers.get('upgrade'), 'websocket');
    assert.match(res.headers.get('connection') ?? '', /upgrade/i);
  });

  it('refuses a batch of more than 1000 events and a batch with a bad channel', async () => {
    const big = Array.from({ length: 1001 }, () => ({ channel: 'c', data: 1 }));
    const h2 = await startTestServer();
    try {
      expectError(await h2.call('POST', '/v1/events', { body: { events: big } }), 400, 'bad_request');
      const ok = await h2.call('POST', '/v1/events', { body: { events: big.slice(0, 1000) } });
      assert.equal(ok.status, 201);
      assert.equal(ok.body.events.at(-1).seq, 1000);
      expectError(await h2.call('POST', '/v1/events', { body: { events: [{ channel: 'ok', data: 1 }, { channel: 'no good', data: 1 }] } }), 400, 'invalid_channel');
      assert.equal((await h2.call('GET', '/v1/channels/ok/events')).body.events.length, 0);
    } finally {
      await h2.stop();
    }
  });

  it('keeps channels private: 401 without or with a bad credential, 403 when not covered', async () => {
    await h.call('POST', '/v1/channels/private/events', { body: { data: 1 } });
    expectError(await h.call('GET', '/v1/channels/private/events', { token: null }), 401, 'unauthorized');
    expectError(await h.call('GET', '/v1/channels/private/events', { token: 'hk_not_a_real_key' }), 401, 'unauthorized');
    expectError(await h.call('POST', '/v1/channels/private/events', { token: null, body: { data: 1 } }), 401, 'unauthorized');
    const reader = await h.createKey(['subscribe'], ['orders', 'user:*']);
    expectError(await h.call('GET', '/v1/channels/private/events', { token: reader }), 403, 'forbidden');
    expectError(await h.call('POST', '/v1/channels/orders/events', { token: reader, body: { data: 1 } }), 403, 'forbidden');
    assert.equal((await h.call('GET', '/v1/channels/user:42/events', { token: reader })).status, 200);
    assert.equal((await h.call('GET', '/v1/channels/orders/events', { token: reader })).status, 200);
    expectError(await h.call('GET', '/v1/events?channel=orders&channel=private', { token: reader }), 403, 'forbidden');
    // Admin routes need admin.
    expectError(await h.call('GET', '/v1/keys', { token: reader }), 403, 'forbidden');
    expectError(await h.call('GET', '/v1/keys', { token: null }), 401, 'unauthorized');
  });

  it("keeps Herald's own channels (herald:…) from patterns that do not name them: `*` neither reads nor publishes herald:system", async () => {
    const everything = await h.createKey(['subscribe', 'publish'], ['*']);
    expectError(await h.call('POST', '/v1/channels/herald:system/events', { token: everything, body: { type: 'endpoint.disabled', data: {} } }), 403, 'forbidden');
    expectError(await h.call('GET', '/v1/channels/herald:system/events', { token: everything }), 403, 'forbidden');
    assert.equal((await h.call('GET', '/v1/channels/anything/events', { token: everything })).status, 200, 'the rest `*` covers');
    // Nor can it mint a token that names them.
    expectError(await h.call('POST', '/v1/tokens', { token: everything, body: { sub: 'u', channels: ['herald:*'], ttl: 60 } }), 403, 'forbidden');
    const own = await h.createKey(['subscribe'], ['herald:*']);
    assert.equal((await h.call('GET', '/v1/channels/herald:system/events', { token: own })).status, 200, 'a pattern naming them does');
    // Nothing of the admin's reach changes, and a public `*` does not make them public.
    assert.equal((await h.call('GET', '/v1/channels/herald:system/events')).status, 200);
    const open = await startTestServer({ channels: { public: ['*'] } });
    try {
      expectError(await open.call('GET', '/v1/channels/herald:system/events', { token: null }), 401, 'unauthorized');
      assert.equal((await open.call('GET', '/v1/channels/news/events', { token: null })).status, 200);
    } finally {
      await open.stop();
    }
  });

  it('takes the herald_token cookie on GET only: another site’s POST carries it too (cross-site request forgery)', async () => {
    const cookie = { cookie: `herald_token=${ADMIN_KEY}` };
    const refused = await h.call('POST', '/v1/channels/csrf/events', { token: null, headers: cookie, body: { data: 1 } });
    expectError(refused, 401, 'unauthorized');
    // Says why the cookie it carried did not count, and what does.
    assert.match(refused.body.error.message, /The herald_token cookie counts for GET and HEAD only .*POSTs too\): send the token as Authorization: Bearer\.$/);
    expectError(await h.call('POST', '/v1/tokens', { token: null, headers: cookie, body: { sub: 'x', channels: ['*'] } }), 401, 'unauthorized');
    // From an origin cors.origins does not name, the cookie does not count on a GET either, and the answer says so.
    const foreign = await h.call('GET', '/v1/channels/csrf/events?after=0', { token: null, headers: { ...cookie, origin: 'https://elsewhere.example' } });
    expectError(foreign, 401, 'unauthorized');
    assert.match(foreign.body.error.message, /counts only on requests from Herald's own origin or one named in cors\.origins, not https:\/\/elsewhere\.example\.$/);
    // Without the cookie, no word of it.
    const bare = await h.call('POST', '/v1/channels/csrf/events', { token: null, body: { data: 1 } });
    assert.doesNotMatch(bare.body.error.message, /cookie/);
    assert.equal((await h.call('POST', '/v1/channels/csrf/events', { body: { data: 2 } })).status, 201, 'the header still works');
    const read = await h.call('GET', '/v1/channels/csrf/events?after=0', { token: null, headers: cookie });
    assert.equal(read.status, 200, JSON.stringify(read.body));
    assert.deepEqual(read.body.events.map((e: { data: unknown }) => e.data), [2]);
  });

  it('leaves an Authorization of another scheme (a proxy’s Basic) to others: ?token= and public reads still work behind it', async () => {
    const basic = { authorization: `Basic ${Buffer.from('user:pass').toString('base64')}` };
    await h.call('POST', '/v1/channels/public:proxied/events', { body: { data: 'open' } });
    const open = await h.call('GET', '/v1/channels/public:proxied/events', { token: null, headers: basic });
    assert.equal(open.status, 200, JSON.stringify(open.body));
    const withToken = await h.call('GET', `/v1/channels/proxied/events?token=${ADMIN_KEY}`, { token: null, headers: basic });
    assert.equal(withToken.status, 200, JSON.stringify(withToken.body));
    expectError(await h.call('GET', '/v1/channels/proxied/events', { token: null, headers: basic }), 401, 'unauthorized');
    // A key sent bare, without a scheme, is still taken.
    assert.equal((await h.call('GET', '/v1/channels/proxied/events', { token: null, headers: { authorization: ADMIN_KEY } })).status, 200);
  });

  it('lets anyone read public channels, but not publish to them', async () => {
    await h.call('POST', '/v1/channels/public:news/events', { body: { data: 'hello' } });
    const res = await h.call('GET', '/v1/channels/public:news/events', { token: null });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.events.map((e: any) => e.data), ['hello']);
    expectError(await h.call('POST', '/v1/channels/public:news/events', { token: null, body: { data: 1 } }), 401, 'unauthorized');
  });

  it('creates, lists and revokes API keys, storing only hashes', async () => {
    const created = await h.call('POST', '/v1/keys', { body: { name: 'pub', scopes: ['publish'], channels: ['orders'] } });
    assert.equal(created.status, 201);
    assert.match(created.body.key, /^hk_/);
    const key = created.body.key as string;
    const list = await h.call('GET', '/v1/keys');
    const listed = list.body.keys.find((k: any) => k.id === created.body.id);
    assert.equal(listed.key, undefined, 'the key is shown only once');
    assert.equal(listed.prefix, key.slice(0, 10));
    assert.equal((await h.call('POST', '/v1/channels/orders/events', { token: key, body: { data: 1 } })).status, 201);
    const revoked = await h.call('DELETE', `/v1/keys/${created.body.id}`);
    assert.equal(revoked.status, 200);
    assert.ok(revoked.body.revokedAt);
    expectError(await h.call('POST', '/v1/channels/orders/events', { token: key, body: { data: 1 } }), 401, 'unauthorized');
    expectError(await h.call('GET', '/v1/keys/key_missing'), 404, 'not_found');
    expectError(await h.call('POST', '/v1/keys', { body: { name: 'x', scopes: ['root'], channels: ['*'] } }), 400, 'bad_request');
  });

  it('accepts subscriber tokens minted by the API or offline, in the header or ?token=', async () => {
    const key = await h.createKey(['subscribe', 'publish'], ['user:*']);
    const minted = await h.call('POST', '/v1/tokens', { token: key, body: { sub: 'u1', channels: ['user:1'], publish: ['user:1'], ttl: 60 } });
    assert.equal(minted.status, 201);
    const token = minted.body.token as string;
    assert.equal((await h.call('POST', '/v1/channels/user:1/events', { token, body: { data: 'from browser' } })).status, 201);
    const viaQuery = await h.call('GET', `/v1/channels/user:1/events?token=${token}`, { token: null });
    assert.equal(viaQuery.status, 200);
    assert.deepEqual(viaQuery.body.events.map((e: any) => e.data), ['from browser']);
    expectError(await h.call('GET', '/v1/channels/user:2/events', { token }), 403, 'forbidden');
    // A key cannot grant more than it has, and a token cannot mint.
    expectError(await h.call('POST', '/v1/tokens', { token: key, body: { sub: 'u', channels: ['*'] } }), 403, 'forbidden');
    expectError(await h.call('POST', '/v1/tokens', { token, body: { sub: 'u', channels: ['user:1'] } }), 403, 'forbidden');
    expectError(await h.call('POST', '/v1/tokens', { token: null, body: { sub: 'u', channels: ['user:1'] } }), 401, 'unauthorized');

    const secret = new TextEncoder().encode(TOKEN_SECRET);
    const offline = await new SignJWT({ channels: ['user:*'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('backend-minted')
      .setExpirationTime('5m')
      .sign(secret);
    assert.equal((await h.call('GET', '/v1/channels/user:9/events', { token: offline })).status, 200);
    expectError(await h.call('POST', '/v1/channels/user:9/events', { token: offline, body: { data: 1 } }), 403, 'forbidden');

    const expired = await new SignJWT({ channels: ['*'] }).setProtectedHeader({ alg: 'HS256' }).setSubject('old').setExpirationTime(Math.floor(Date.now() / 1000) - 10).sign(secret);
    expectError(await h.call('GET', '/v1/channels/user:9/events', { token: expired }), 401, 'unauthorized');
    const forged = await new SignJWT({ channels: ['*'] }).setProtectedHeader({ alg: 'HS256' }).setSubject('x').setExpirationTime('5m').sign(new TextEncoder().encode('not-the-secret-not-the-secret-000'));
    expectError(await h.call('GET', '/v1/channels/user:9/events', { token: forged }), 401, 'unauthorized');
    const noExpiry = await new SignJWT({ channels: ['*'] }).setProtectedHeader({ alg: 'HS256' }).setSubject('x').sign(secret);
    expectError(await h.call('GET', '/v1/channels/user:9/events', { token: noExpiry }), 401, 'unauthorized');
  });

  it('refuses a mint without a credential, or with a token, before reading its body', async () => {
    const key = await h.createKey(['subscribe'], ['user:*']);
    const token = (await h.call('POST', '/v1/tokens', { token: key, body: { sub: 'u', channels: ['user:1'] } })).body.token as string;
    for (const [auth, status] of [['', '401'], [`Authorization: Bearer ${token}\r\n`, '403']] as const) {
      const raw = await rawConnection(h.url);
      try {
        // A body announced and never sent: only an answer that does not wait for it can arrive.
        raw.socket.write(`POST /v1/tokens HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\nContent-Length: 4000\r\n\r\n{`);
        await until(() => raw.received().startsWith('HTTP/1.1 '), 2000, `the ${status} answer`);
        assert.match(raw.received(), new RegExp(`^HTTP/1\\.1 ${status} `));
      } finally {
        raw.socket.destroy();
      }
    }
  });

  it('answers health and readiness', async () => {
    assert.deepEqual((await h.call('GET', '/healthz', { token: null })).body, { status: 'ok' });
    const ready = await h.call('GET', '/readyz', { token: null });
    assert.equal(ready.status, 200);
    assert.deepEqual(ready.body, { status: 'ready', store: 'up', bus: 'up', node: h.nodeId });
  });
});

describe('retention', () => {
  it('trims in the background and reports truncated to readers that fell behind', async () => {
    const h = await startTestServer({ retention: { maxEvents: 3, rules: [{ channels: ['keep:*'], maxEvents: 100 }] } });
    try {
      for (let i = 1; i <= 5; i++) {
        await h.call('POST', '/v1/channels/short/events', { body: { data: i } });
        await h.call('POST', '/v1/channels/keep:all/events', { body: { data: i } });
      }
      await h.trimmer.runOnce();
      const behind = await h.call('GET', '/v1/channels/short/events?after=1');
      assert.equal(behind.body.truncated, true);
      assert.deepEqual(behind.body.events.map((e: any) => e.seq), [3, 4, 5]);
      assert.equal(behind.body.next, 5);
      const current = await h.call('GET', '/v1/channels/short/events?after=2');
      assert.equal(current.body.truncated, false);
      const kept = await h.call('GET', '/v1/channels/keep:all/events?after=0');
      assert.equal(kept.body.truncated, false);
      assert.equal(kept.body.events.length, 5);
      const multi = await h.call('GET', '/v1/events?channel=short&channel=keep:all');
      assert.equal(multi.body.truncated, true);
      assert.deepEqual(multi.body.truncatedChannels, ['short']);
      // Each channel's epoch, so a poller notices a server that lost its history between two polls.
      assert.deepEqual(multi.body.epochs, { short: behind.body.epoch, 'keep:all': kept.body.epoch });
      assert.match(behind.body.epoch, /^[0-9a-f]{16}$/);
    } finally {
      await h.stop();
    }
  });
});

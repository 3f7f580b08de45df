// The example apps behind `examples.enabled` (issue #14): the WebRTC page, the SDK modules it imports, and demo
// tokens that cover one room and nothing else. Off by default.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './helpers.js';

describe('examples mode', () => {
  const servers: TestServer[] = [];
  after(async () => {
    for (const s of servers) await s.stop();
  });
  const start = async (settings: Record<string, unknown> = {}) => {
    const s = await startTestServer(settings);
    servers.push(s);
    return s;
  };
  const mint = (h: TestServer, room: string) => h.call('POST', '/examples/webrtc/token', { body: { room }, token: null });

  it('is off by default: no page, no demo tokens', async () => {
    const h = await start();
    assert.equal((await h.call('GET', '/examples/webrtc/', { token: null })).status, 404);
    assert.equal((await mint(h, 'demo')).status, 404);
  });

  it('serves the page, its script and the built SDK, and nothing else from disk', async () => {
    const h = await start({ examples: { enabled: true } });
    const page = await fetch(`${h.url}/examples/webrtc/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type')!, /^text\/html/);
    assert.match(await page.text(), /"@herald\/protocol": "\/examples\/sdk\/protocol\/index.js"/);
    const script = await fetch(`${h.url}/examples/webrtc/app.js`);
    assert.equal(script.status, 200);
    assert.match(script.headers.get('content-type')!, /^text\/javascript/);
    for (const path of ['/examples/sdk/client/index.js', '/examples/sdk/client/presence.js', '/examples/sdk/protocol/index.js']) {
      assert.equal((await fetch(`${h.url}${path}`)).status, 200, path);
    }
    for (const path of ['/examples/webrtc/README.md', '/examples/sdk/client/index.d.ts', '/examples/sdk/client/..%2F..%2Fpackage.json', '/examples/sdk/server/index.js', '/examples/sdk/client/.tsbuildinfo']) {
      assert.equal((await fetch(`${h.url}${path}`)).status, 404, path);
    }
    assert.equal((await fetch(`${h.url}/examples/webrtc`, { redirect: 'manual' })).headers.get('location'), '/examples/webrtc/');
  });

  it('mints a demo token for one room: read, publish and presence there, nothing elsewhere', async () => {
    const h = await start({ examples: { enabled: true } });
    assert.equal((await mint(h, '../x')).status, 400);
    const minted = await mint(h, 'demo');
    assert.equal(minted.status, 201);
    assert.equal(minted.body.channel, 'examples:webrtc:demo');
    assert.match(minted.body.sub, /^demo-[0-9a-f]{12}$/);
    const token = minted.body.token as string;
    assert.equal((await h.call('GET', '/v1/channels/examples:webrtc:demo/presence', { token })).status, 200);
    assert.equal((await h.call('POST', '/v1/channels/examples:webrtc:demo/events', { token, body: { data: 1, ephemeral: true } })).status, 202);
    assert.equal((await h.call('GET', '/v1/channels/examples:webrtc:other/presence', { token })).status, 403);
    assert.equal((await h.call('POST', '/v1/channels/examples:webrtc:other/events', { token, body: { data: 1 } })).status, 403);
    assert.equal((await h.call('GET', '/v1/channels/orders/events', { token })).status, 403);
    assert.equal((await h.call('GET', '/v1/keys', { token })).status, 403);
  });
});

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser } from 'playwright-core';
import { startTestServer, type TestServer } from './helpers.js';
import { CHROMIUM, CHROMIUM_FLAGS } from './support/chromium.js';


/** A page on its own origin that follows a channel with the browser's own EventSource and WebSocket. */
function page(herald: string, token: string): string {
  return `<!doctype html><meta charset="utf-8"><title>herald browser test</title>
<script>
  window.sse = []; window.ws = []; window.wsState = 'connecting';
  const es = new EventSource('${herald}/v1/channels/browser/stream?token=${token}');
  es.onmessage = (m) => window.sse.push(JSON.parse(m.data).data);
  const socket = new WebSocket('${herald.replace('http', 'ws')}/v1/ws?token=${token}');
  socket.onopen = () => socket.send(JSON.stringify({ op: 'subscribe', channel: 'browser' }));
  socket.onmessage = (m) => {
    const frame = JSON.parse(m.data);
    if (frame.op === 'subscribed') window.wsState = 'subscribed';
    if (frame.op === 'event') window.ws.push(frame.data);
  };
  es.onopen = () => (window.sseOpen = true);
</script>`;
}

describe('a real browser', { skip: !existsSync(CHROMIUM) && `${CHROMIUM} is not installed` }, () => {
  let herald: TestServer;
  let site: Server;
  let browser: Browser;
  let origin: string;

  before(async () => {
    site = createServer();
    await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
    // The page's origin differs from Herald's by port: a cross-origin page, allowed by the config.
    herald = await startTestServer({ cors: { origins: [origin] } });
    const key = await herald.createKey(['subscribe'], ['browser']);
    const minted = await herald.call('POST', '/v1/tokens', { token: key, body: { sub: 'browser-user', channels: ['browser'], ttl: 300 } });
    const html = page(herald.url, minted.body.token);
    site.on('request', (_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(html));
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
  });

  after(async () => {
    await browser?.close();
    site?.close();
    await herald?.stop();
  });

  it('receives events published over HTTP through EventSource and WebSocket', async () => {
    const tab = await browser.newPage();
    await tab.goto(origin);
    await tab.waitForFunction(() => (globalThis as any).sseOpen === true && (globalThis as any).wsState === 'subscribed', null, { timeout: 10_000 });
    for (let i = 1; i <= 3; i++) {
      const res = await herald.call('POST', '/v1/channels/browser/events', { body: { type: 'tick', data: i } });
      assert.equal(res.status, 201);
    }
    await tab.waitForFunction(() => (globalThis as any).sse.length === 3 && (globalThis as any).ws.length === 3, null, { timeout: 10_000 });
    assert.deepEqual(await tab.evaluate(() => (globalThis as any).sse), [1, 2, 3]);
    assert.deepEqual(await tab.evaluate(() => (globalThis as any).ws), [1, 2, 3]);
  });
});

// The browser's `online` event, in a real browser: a client waiting out a long backoff while the network was gone
// reconnects as soon as it is back, and a closed client neither reconnects nor keeps its listener.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { ADMIN_KEY, eventually, sleep, startTestServer, type TestServer } from '../../server/test/helpers.js';
import { CHROMIUM, CHROMIUM_FLAGS, serveSdkPage } from './browser-sdk.js';

/** The backoff after a failure: up to an hour, so a reconnect within seconds is the `online` event's doing. */
const HOUR = 3_600_000;
const TRANSPORTS = ['websocket', 'sse', 'poll'] as const;

describe('@herald/client in a browser going offline and online', { skip: !existsSync(CHROMIUM) && `${CHROMIUM} is not installed` }, () => {
  let site: Awaited<ReturnType<typeof serveSdkPage>>;
  let browser: Browser;
  let herald: TestServer;
  let settings: Record<string, unknown>;
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-online-'));

  before(async () => {
    site = await serveSdkPage();
    // The page's origin differs from Herald's by port: a cross-origin page, allowed by the config.
    settings = { cors: { origins: [site.origin] } };
    herald = await startTestServer(settings, dataDir);
    // Restarts keep the port, as a real server's address does.
    settings.port = Number(new URL(herald.url).port);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
  });

  after(async () => {
    await browser?.close();
    await herald?.stop();
    await site?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function sdkPage(context: BrowserContext): Promise<Page> {
    const tab = await context.newPage();
    await tab.goto(site.origin);
    await tab.waitForFunction(() => (globalThis as any).sdkReady === true, null, { timeout: 10_000 });
    return tab;
  }

  /** Makes `window.herald`, recording its states in `window.states` and the channel's events in `window.seen`. */
  async function startClient(tab: Page, transport: string, channel: string): Promise<void> {
    await tab.evaluate(
      ({ url, token, transport, channel, hour }) => {
        const w = globalThis as any;
        w.states = [];
        w.seen = [];
        w.herald = new w.Herald({ url, token, transports: [transport], backoff: { baseMs: hour, maxMs: hour }, heartbeatTimeoutMs: 60_000 });
        w.herald.on('state', (state: string) => w.states.push(state));
        w.herald.subscribe(channel, { after: 0 }, (event: { data: number }) => w.seen.push(event.data));
      },
      { url: herald.url, token: ADMIN_KEY, transport, channel, hour: HOUR },
    );
    await tab.waitForFunction(() => (globalThis as any).herald.state === 'connected', null, { timeout: 10_000 });
  }

  async function publish(channel: string, data: number): Promise<void> {
    const res = await herald.call('POST', `/v1/channels/${channel}/events`, { body: { data } });
    assert.equal(res.status, 201);
  }

  /** The connections of `transport` the server holds open (for polls: those parked, waiting for an event). */
  async function openAtServer(transport: (typeof TRANSPORTS)[number]): Promise<number> {
    const text = await (await fetch(`${herald.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).text();
    const label = { websocket: 'ws', sse: 'sse', poll: 'long_poll' }[transport];
    return Number(new RegExp(`^herald_connections_open\\{transport="${label}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
  }

  const seen = (tab: Page) => tab.evaluate(() => (globalThis as any).seen as number[]);
  const states = (tab: Page) => tab.evaluate(() => (globalThis as any).states as string[]);

  for (const transport of TRANSPORTS) {
    it(`${transport}: back online, a client waiting out a long backoff reconnects at once and gets what was published meanwhile`, async () => {
      const channel = `online-${transport}`;
      const context = await browser.newContext();
      try {
        const tab = await sdkPage(context);
        await startClient(tab, transport, channel);
        await publish(channel, 1);
        await tab.waitForFunction(() => (globalThis as any).seen.length === 1, null, { timeout: 5000 });
        // A poll that answered starts the next one: going offline before it reaches the server would fail it. So the
        // network goes only once the server holds the connection (for polls, the next one parked).
        await eventually(async () => assert.equal(await openAtServer(transport), 1));

        // The browser says `offline`, a hint the client leaves alone: its connection (which Chromium keeps open, as
        // a real browser may after a false `offline`) goes on.
        await context.setOffline(true);
        await sleep(300);
        assert.deepEqual(await states(tab), ['connecting', 'connected']);
        // Then the server restarts while the network is gone: the connection ends, and the attempt after it fails or
        // waits out a backoff of up to an hour.
        await herald.stop();
        await tab.waitForFunction(() => (globalThis as any).herald.state === 'disconnected', null, { timeout: 5000 });
        herald = await startTestServer(settings, dataDir);
        await publish(channel, 2);
        await sleep(500);
        assert.equal(await tab.evaluate(() => (globalThis as any).herald.state), 'disconnected', 'waiting out its backoff');

        const back = Date.now();
        await context.setOffline(false);
        await tab.waitForFunction(() => (globalThis as any).seen.length >= 2, null, { timeout: 3000 });
        assert.ok(Date.now() - back < 3000);
        assert.equal(await tab.evaluate(() => (globalThis as any).herald.state), 'connected');
        // Resumed from its position: a marker after the rest shows nothing came twice.
        await publish(channel, 3);
        await tab.waitForFunction(() => (globalThis as any).seen.length >= 3, null, { timeout: 5000 });
        assert.deepEqual(await seen(tab), [1, 2, 3]);
        assert.deepEqual(await states(tab), ['connecting', 'connected', 'disconnected', 'connecting', 'connected']);
        await tab.evaluate(() => (globalThis as any).herald.close());
      } finally {
        await context.close();
      }
    });
  }

  it('a closed client does not reconnect on `online`, and clients made and closed leave no listener', async () => {
    const context = await browser.newContext();
    try {
      const tab = await sdkPage(context);
      // The window's listeners, as DevTools lists them.
      const cdp = await context.newCDPSession(tab);
      const onlineListeners = async () => {
        const { result } = await cdp.send('Runtime.evaluate', { expression: 'window' });
        const { listeners } = await cdp.send('DOMDebugger.getEventListeners', { objectId: result.objectId! });
        return listeners.filter((l) => l.type === 'online').length;
      };
      await startClient(tab, 'websocket', 'online-closed');
      await tab.evaluate(({ url, token }) => {
        const w = globalThis as any;
        w.others = Array.from({ length: 20 }, () => {
          const c = new w.Herald({ url, token });
          c.subscribe('online-closed', () => {});
          return c;
        });
      }, { url: herald.url, token: ADMIN_KEY });
      assert.equal(await onlineListeners(), 21);

      // Closed while waiting out its backoff, the case where `online` would reconnect it.
      await herald.stop();
      await tab.waitForFunction(() => (globalThis as any).herald.state === 'disconnected', null, { timeout: 5000 });
      herald = await startTestServer(settings, dataDir);
      await tab.evaluate(() => {
        const w = globalThis as any;
        w.herald.close();
        for (const c of w.others) c.close();
      });
      assert.equal(await onlineListeners(), 0);
      await context.setOffline(true);
      await context.setOffline(false);
      await tab.evaluate(() => dispatchEvent(new Event('online')));
      await sleep(500);
      assert.equal(await tab.evaluate(() => (globalThis as any).herald.state), 'disconnected');
      assert.deepEqual(await states(tab), ['connecting', 'connected', 'disconnected']);
    } finally {
      await context.close();
    }
  });
});

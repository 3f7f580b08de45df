import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ADMIN_KEY, startTestServer, type TestServer } from './helpers.js';
import { CHROMIUM, CHROMIUM_FLAGS } from './support/chromium.js';

/** Screenshots of every page, for people to look at: gitignored, never committed. */
const SHOTS = fileURLToPath(new URL('../../../artifacts/console/', import.meta.url));
const WAIT = { timeout: 10_000 };

/** A webhook receiver on loopback that answers 200, or 500 with a body while `failing`. */
class Receiver {
  failing = false;
  received: Array<{ id: string; body: string }> = [];
  private server: Server | undefined;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        this.received.push({ id: String(req.headers['webhook-id']), body });
        if (this.failing) res.writeHead(500, { 'content-type': 'text/plain' }).end('receiver exploded: out of cheese');
        else res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}/hooks`;
  }

  close(): void {
    this.server?.closeAllConnections();
    this.server?.close();
  }
}

describe('the web console in a real browser', { skip: !existsSync(CHROMIUM) && `${CHROMIUM} is not installed` }, () => {
  let herald: TestServer;
  let browser: Browser;
  let page: Page;
  const receiver = new Receiver();
  /** Script errors and console errors (a CSP refusal is one): the console must run without any. */
  const problems: string[] = [];

  const publish = async (channel: string, data: unknown) => {
    const res = await herald.call('POST', `/v1/channels/${channel}/events`, { body: { type: 'order.created', data } });
    assert.equal(res.status, 201);
    return res.body;
  };
  const shot = (name: string) => page.screenshot({ path: `${SHOTS}${name}.png`, fullPage: true });
  const open = async (hash: string) => {
    await page.evaluate((h) => (location.hash = h), hash);
  };

  before(async () => {
    mkdirSync(SHOTS, { recursive: true });
    await receiver.start();
    // No retries: a failing attempt makes the delivery `failed` at once, so the retry button shows.
    herald = await startTestServer({ delivery: { allowPrivateNetworks: ['127.0.0.0/8'], retrySchedule: [], timeout: 2 } });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      // A failed request is reported by the response handler below, with its URL.
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(`console: ${m.text()}`);
    });
    page.on('response', (r) => {
      if (r.status() >= 400) problems.push(`${r.status()} ${r.request().method()} ${r.url()}`);
    });
  });

  after(async () => {
    await browser?.close();
    receiver.close();
    await herald?.stop();
  });

  it('a wrong key shows a clear message and is not kept', async () => {
    const res = await page.goto(`${herald.url}/console`);
    assert.equal(res?.status(), 200);
    await page.getByLabel('Admin key').fill('not-the-admin-key');
    await page.getByRole('button', { name: 'Sign in' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor(WAIT);
    assert.match(await alert.innerText(), /refused this key: it is not the admin key/);
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    // A 401 is expected here; it is the page's answer to it that matters.
    problems.length = 0;
    await shot('sign-in');
  });

  it('signs in by keyboard with the admin key, kept in sessionStorage and never in the URL', async () => {
    await page.goto(`${herald.url}/console`);
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => (document.activeElement as HTMLInputElement).type), 'password');
    await page.keyboard.type(ADMIN_KEY);
    await page.keyboard.press('Enter');
    await page.locator('[data-stat=events-appended]').waitFor(WAIT);
    assert.equal(page.url().includes(ADMIN_KEY), false);
    assert.deepEqual(await page.evaluate(() => Object.values(sessionStorage)), [ADMIN_KEY]);
  });

  it('the overview shows a number that moves after publishes', async () => {
    const appended = page.locator('[data-stat=events-appended]');
    const before = Number((await appended.innerText()).replace(/\D/g, ''));
    for (let i = 0; i < 3; i++) await publish('metrics-demo', { i });
    await page.waitForFunction(
      (want) => Number(document.querySelector('[data-stat=events-appended]')!.textContent!.replace(/\D/g, '')) >= want,
      before + 3,
      WAIT,
    );
    // The reading that saw the publishes also shows them as a rate: events/s in is above zero.
    assert.ok(Number(await page.locator('[data-stat=events-in]').innerText()) > 0, 'events/s in moved');
    assert.equal(await page.locator('figure.chart canvas').count(), 4, 'four uPlot charts');
    await shot('overview');
  });

  let endpointPath = '';

  it('creates an endpoint in the form, then shows its delivery and the attempt', async () => {
    await open('#/endpoints');
    await page.getByRole('button', { name: 'New endpoint' }).click();
    await page.getByLabel('URL').fill(receiver.url);
    await page.getByLabel('Channels').fill('orders');
    await page.getByRole('button', { name: 'Create endpoint' }).click();
    const secret = page.getByRole('textbox', { name: 'Signing secret' });
    await secret.waitFor(WAIT);
    assert.match(await secret.inputValue(), /^whsec_/);
    assert.ok(await page.getByRole('button', { name: 'Copy' }).isVisible(), 'the secret has a copy button');
    await page.getByRole('button', { name: 'I have copied it' }).click();
    await page.getByRole('heading', { name: receiver.url }).waitFor(WAIT);
    endpointPath = new URL(page.url()).hash;
    assert.match(endpointPath, /^#\/endpoints\/ep_/);

    const event = await publish('orders', { order: 1 });
    const row = page.locator(`tr.delivery[data-status=succeeded]`, { hasText: event.id });
    await row.waitFor(WAIT);
    await row.getByRole('button', { name: 'Attempts' }).click();
    await page.locator('tr.attempt .attempt-status', { hasText: '200' }).waitFor(WAIT);
    assert.deepEqual(receiver.received.map((r) => r.id), [event.id]);
  });

  it('shows a failed attempt with its status and response, and a retry after the fix succeeds', async () => {
    receiver.failing = true;
    const event = await publish('orders', { order: 2 });
    const failed = page.locator('tr.delivery[data-status=failed]', { hasText: event.id });
    await failed.waitFor(WAIT);
    const id = await failed.getAttribute('data-delivery');
    await failed.getByRole('button', { name: 'Attempts' }).click();
    const attempt = page.locator(`#attempts-${id} tr.attempt`);
    await attempt.locator('.attempt-status', { hasText: '500' }).waitFor(WAIT);
    assert.match(await attempt.innerText(), /receiver exploded: out of cheese/);
    await shot('endpoint');

    receiver.failing = false;
    await failed.getByRole('button', { name: 'Retry' }).click();
    await page.locator(`tr.delivery[data-delivery="${id}"][data-status=succeeded]`).waitFor(WAIT);
    await page.locator(`#attempts-${id} tr.attempt .attempt-status`, { hasText: '200' }).waitFor(WAIT);
    assert.equal(receiver.received.filter((r) => r.id === event.id).length, 2, 'the failed attempt and the retry');
  });

  it('sends a test event to the endpoint from its page', async () => {
    await page.getByRole('button', { name: 'Send test event' }).click();
    const done = page.getByRole('status').filter({ hasText: 'Test event sent' });
    await done.waitFor(WAIT);
    const deliveryId = /delivery (dlv_\S+)\./.exec(await done.innerText())![1];
    await page.locator(`tr.delivery[data-delivery="${deliveryId}"][data-status=succeeded]`).waitFor(WAIT);
    const test = JSON.parse(receiver.received.at(-1)!.body);
    assert.equal(test.type, 'herald.test');
    assert.equal(test.seq, 0);
  });

  it('lists endpoints with their status and recent success rate', async () => {
    await open('#/endpoints');
    const row = page.getByRole('row', { name: new RegExp(receiver.url.replace(/[/.]/g, '\\$&')) });
    await row.waitFor(WAIT);
    await page.waitForFunction(() => /enabled/.test(document.querySelector('tbody tr')!.textContent!) && /\d+%/.test(document.querySelector('tbody tr')!.textContent!), null, WAIT);
    await shot('endpoints');
  });

  it('tails a channel live and shows a published event as it arrives; publishes from the form', async () => {
    await open('#/channels');
    await page.getByRole('link', { name: 'orders' }).waitFor(WAIT);
    await shot('channels');
    await page.getByRole('link', { name: 'orders' }).click();
    await page.getByRole('button', { name: 'Start tail' }).click();
    await page.locator('[data-tail-state=live]').waitFor(WAIT);
    await publish('orders', { marker: 'tail-marker-7f3a' });
    await page.getByRole('region', { name: 'Live events' }).getByText('tail-marker-7f3a').waitFor(WAIT);

    await page.getByLabel('Data (JSON)').fill('{"from": "the form"}');
    await page.getByRole('button', { name: 'Publish', exact: true }).click();
    await page.getByRole('status').filter({ hasText: /Published seq \d+/ }).waitFor(WAIT);
    await page.getByRole('region', { name: 'Live events' }).getByText('the form').waitFor(WAIT);
    await page.getByRole('region', { name: 'History' }).getByText('the form').waitFor(WAIT);
    await shot('channel');
  });

  it("browses a channel's history page by page", async () => {
    const events = Array.from({ length: 25 }, (_, i) => ({ channel: 'paging', type: 'page.test', data: { n: i + 1 } }));
    assert.equal((await herald.call('POST', '/v1/events', { body: { events } })).status, 201);
    await open('#/channels/paging');
    const seqs = () => page.getByRole('region', { name: 'History' }).locator('tr.event td:first-child').allInnerTexts();
    const history = page.getByRole('group', { name: 'History pages' });
    await page.waitForFunction(() => document.querySelectorAll('[aria-label=History] tr.event').length === 20, null, WAIT);
    assert.deepEqual((await seqs()).map(Number), Array.from({ length: 20 }, (_, i) => 25 - i), 'newest page first');
    await history.getByRole('button', { name: 'Older' }).click();
    await page.waitForFunction(() => document.querySelector('[aria-label=History] tr.event td')?.textContent === '5', null, WAIT);
    assert.deepEqual((await seqs()).map(Number), [5, 4, 3, 2, 1], 'the page before, with no event shown twice');
    assert.equal(await history.getByRole('button', { name: 'Older' }).isDisabled(), true, 'nothing older than seq 1');
    await history.getByRole('button', { name: 'Newer' }).click();
    await page.waitForFunction(() => document.querySelector('[aria-label=History] tr.event td')?.textContent === '25', null, WAIT);
    assert.equal(await history.getByRole('button', { name: 'Newer' }).isDisabled(), true, 'nothing newer than the head');
  });

  it('creates a source and lists a refused ingest with its reason', async () => {
    await open('#/sources');
    await page.getByRole('button', { name: 'New source' }).click();
    await page.getByLabel('Name', { exact: true }).fill('shop');
    await page.getByLabel('Provider').selectOption('stripe');
    await page.getByLabel('Signing secret').fill('whsec_Zq8vN2pLx4Rt7Wm1Kc9Bd3Hf6Jy0Ts5');
    await page.getByRole('button', { name: 'Create source' }).click();
    const ingestUrl = page.getByRole('textbox', { name: 'Ingest URL' });
    await ingestUrl.waitFor(WAIT);
    assert.equal(await ingestUrl.inputValue(), `${herald.url}/v1/ingest/shop`);
    const refused = await fetch(`${herald.url}/v1/ingest/shop`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"id":"evt_1"}' });
    assert.equal(refused.status, 401);
    await page.locator('tr.ingest', { hasText: 'webhook_signature_invalid' }).waitFor(WAIT);
    await shot('source');
    await open('#/sources');
    await page.getByRole('row', { name: /shop/ }).getByText('stripe').waitFor(WAIT);
    await shot('sources');
  });

  it('creates an API key shown once, mints a token, and revokes the key', async () => {
    await open('#/keys');
    const form = page.getByRole('form', { name: 'New API key' });
    await form.getByLabel('Name', { exact: true }).fill('mobile-app');
    await form.getByLabel('Channels').fill('user:*');
    await form.getByRole('button', { name: 'Create key' }).click();
    const key = page.getByRole('textbox', { name: 'API key mobile-app' });
    await key.waitFor(WAIT);
    const secret = await key.inputValue();
    assert.equal((await herald.call('GET', '/v1/channels/user:1/events', { token: secret })).status, 200, 'the key shown works');

    const tokenForm = page.getByRole('form', { name: 'Mint a subscriber token' });
    await tokenForm.getByLabel('Subject (sub)').fill('user-1');
    await tokenForm.getByLabel('Channels to read').fill('user:1');
    await tokenForm.getByRole('button', { name: 'Mint token' }).click();
    const token = page.getByRole('textbox', { name: 'Subscriber token' });
    await token.waitFor(WAIT);
    assert.equal((await herald.call('GET', '/v1/channels/user:1/events', { token: await token.inputValue() })).status, 200);
    await shot('keys');

    const row = page.getByRole('row', { name: /mobile-app/ });
    await row.getByRole('button', { name: 'Revoke' }).click();
    await row.getByRole('button', { name: 'Revoke mobile-app' }).click();
    await row.getByText('revoked').waitFor(WAIT);
    assert.equal((await herald.call('GET', '/v1/channels/user:1/events', { token: secret })).status, 401);
  });

  it('lists the nodes with their connections', async () => {
    await open('#/nodes');
    await page.getByRole('cell', { name: new RegExp(herald.nodeId) }).waitFor(WAIT);
    await shot('nodes');
  });

  it('fits a phone-sized window: no page wider than the screen', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    for (const hash of ['#/overview', '#/channels/orders', endpointPath, '#/sources/shop', '#/keys', '#/nodes']) {
      await open(hash);
      await page.locator('main h2').first().waitFor(WAIT);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `${hash} is ${overflow}px wider than the window`);
    }
    await open('#/overview');
    // The charts keep the readings taken before, so rates show at once.
    await page.waitForFunction(() => document.querySelector('[data-stat=events-in]')?.textContent !== '—', null, WAIT);
    await shot('overview-narrow');
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it('the skip link moves focus to the content and stays on the page', async () => {
    await open('#/keys');
    await page.reload();
    await page.getByRole('heading', { name: 'Keys and tokens' }).waitFor(WAIT);
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Skip to content');
    await page.keyboard.press('Enter');
    assert.equal(await page.evaluate(() => location.hash), '#/keys', 'still the same page, not a page "main"');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'main');
    assert.ok(await page.getByRole('heading', { name: 'Keys and tokens' }).isVisible());
  });

  it('lists many endpoints a page at a time, reading the stats of the shown ones only', async () => {
    const before = ((await herald.call('GET', '/v1/endpoints')).body.endpoints as unknown[]).length;
    for (let i = 0; i < 60; i++) {
      assert.equal((await herald.call('POST', '/v1/endpoints', { body: { url: `${receiver.url}/many-${i}`, channels: [`many:${i}`] } })).status, 201);
    }
    const statsReads: string[] = [];
    const count = (r: { url(): string }) => /\/v1\/endpoints\/[^/]+\/stats$/.test(new URL(r.url()).pathname) && statsReads.push(r.url());
    page.on('request', count);
    await open('#/overview');
    await open('#/endpoints');
    const pages = page.getByRole('group', { name: 'Endpoint pages' });
    await pages.getByText(`1–50 of ${before + 60}`).waitFor(WAIT);
    assert.equal(await page.locator('main tbody tr').count(), 50);
    assert.ok(statsReads.length <= 50, `${statsReads.length} stats requests for 50 endpoints shown`);
    await pages.getByRole('button', { name: 'Next page' }).click();
    await pages.getByText(`51–${before + 60} of ${before + 60}`).waitFor(WAIT);
    await page.getByRole('link', { name: `${receiver.url}/many-59` }).waitFor(WAIT);
    assert.equal(await pages.getByRole('button', { name: 'Next page' }).isDisabled(), true);
    page.off('request', count);
  });

  it('a key Herald stops accepting signs the tab out and says why', async () => {
    const key = (await herald.call('POST', '/v1/keys', { body: { name: 'ops', scopes: ['admin'], channels: ['*'] } })).body;
    const tab = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await tab.goto(`${herald.url}/console#/channels`);
    await tab.getByLabel('Admin key').fill(key.key);
    await tab.getByRole('button', { name: 'Sign in' }).click();
    await tab.getByRole('heading', { name: 'Channels' }).waitFor(WAIT);
    assert.equal((await herald.call('DELETE', `/v1/keys/${key.id}`)).status, 200);
    // The channel list reads again every 5 s: its 401 ends the session rather than leave stale rows up.
    await tab.getByRole('alert').getByText(/no longer accepts the key this tab signed in with/).waitFor({ timeout: 15_000 });
    assert.ok(await tab.getByLabel('Admin key').isVisible(), 'back at the sign-in form');
    assert.equal(await tab.evaluate(() => sessionStorage.length), 0, 'the refused key is not kept');
    await tab.close();
  });

  it("an endpoint deleted while its page is open says so once, not once per part of the page", async () => {
    const created = (await herald.call('POST', '/v1/endpoints', { body: { url: `${receiver.url}/doomed`, channels: ['doomed'] } })).body;
    const tab = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await tab.goto(`${herald.url}/console#/endpoints/${created.id}`);
    await tab.getByLabel('Admin key').fill(ADMIN_KEY);
    await tab.getByRole('button', { name: 'Sign in' }).click();
    await tab.getByRole('heading', { name: `${receiver.url}/doomed` }).waitFor(WAIT);
    assert.equal((await herald.call('DELETE', `/v1/endpoints/${created.id}`)).status, 204);
    // The endpoint is read again every 5 s, its delivery log and stats every 2 s: past both, one notice is left.
    const gone = tab.getByRole('alert').filter({ hasText: `No endpoint ${created.id}.` });
    await gone.first().waitFor({ timeout: 15_000 });
    // The page itself gives way once its own read finds the endpoint gone.
    await tab.getByRole('heading', { name: `${receiver.url}/doomed` }).waitFor({ state: 'detached', timeout: 15_000 });
    // And it stops asking: a second for what was in flight, then nothing more about it.
    await tab.waitForTimeout(1000);
    const asked: string[] = [];
    tab.on('request', (r) => r.url().includes(created.id) && asked.push(r.url()));
    await tab.waitForTimeout(6000);
    assert.equal(await gone.count(), 1);
    assert.deepEqual(asked, [], 'no more reads of what is gone');
    await tab.close();
  });

  it('ran without a script error or a CSP refusal', () => {
    assert.deepEqual(problems, []);
  });
});

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { existsSync, mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { eventually, startTestServer, type TestServer } from './helpers.js';
import { HookReceiver } from './support/receiver.js';
import { CHROMIUM, CHROMIUM_FLAGS } from './support/chromium.js';

/** Screenshots for people to look at; the folder is git-ignored. */
const ARTIFACTS = fileURLToPath(new URL('../../../artifacts/portal/', import.meta.url));

const LOGO = `<svg xmlns="http://www.w3.org/2000/svg" width="96" height="32" viewBox="0 0 96 32">
<rect width="96" height="32" rx="6" fill="#0f766e"/><text x="48" y="21" font-family="sans-serif" font-size="14" fill="#fff" text-anchor="middle">ACME</text></svg>`;

describe('the endpoint portal in a real browser', { skip: !existsSync(CHROMIUM) && `${CHROMIUM} is not installed` }, () => {
  let herald: TestServer;
  let receiver: HookReceiver;
  /** The platform's own site: its logo, and a page that embeds the portal in an iframe. */
  let platform: Server;
  let platformOrigin: string;
  let browser: Browser;
  let sessionUrl = '';
  let globexId = '';
  const consoleErrors: string[] = [];
  const failedRequests: string[] = [];
  const unloaded: string[] = [];

  const shot = (tab: Page, name: string) => tab.screenshot({ path: `${ARTIFACTS}${name}.png`, fullPage: true });
  const openTab = async (width = 1100) => {
    const tab = await browser.newPage({ viewport: { width, height: 800 } });
    // Failed requests are listed by URL (the 404 this test provokes is expected); other console errors are bugs.
    tab.on('console', (m) => {
      if (m.type() !== 'error') return;
      // A request the page makes without a response event (the browser's own /favicon.ico) shows only here.
      if (m.text().startsWith('Failed to load resource')) unloaded.push(new URL(m.location().url).pathname);
      else consoleErrors.push(m.text());
    });
    tab.on('response', (r) => r.status() >= 400 && failedRequests.push(`${r.status()} ${new URL(r.url()).pathname}`));
    tab.on('pageerror', (e) => consoleErrors.push(String(e)));
    return tab;
  };

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    platform = createServer((req, res) => {
      if (req.url === '/logo.svg') return void res.writeHead(200, { 'content-type': 'image/svg+xml' }).end(LOGO);
      const src = decodeURIComponent(new URL(req.url!, 'http://x').searchParams.get('src') ?? '');
      res.writeHead(200, { 'content-type': 'text/html' }).end(
        `<!doctype html><title>Acme dashboard</title><h1>Acme dashboard</h1><iframe id="portal" src="${src.replace(/"/g, '&quot;')}" width="900" height="700"></iframe>`,
      );
    });
    await new Promise<void>((resolve) => platform.listen(0, '127.0.0.1', resolve));
    platformOrigin = `http://127.0.0.1:${(platform.address() as AddressInfo).port}`;
    herald = await startTestServer({
      delivery: { allowPrivateNetworks: ['127.0.0.0/8'] },
      portal: {
        frameAncestors: ["'self'", platformOrigin],
        branding: { name: 'Acme Platform', accentColor: '#0f766e', logoUrl: `${platformOrigin}/logo.svg` },
        allowPrivateNetworks: ['127.0.0.0/8'],
      },
    });
    receiver = await new HookReceiver().start();
    const create = async (body: Record<string, unknown>) => (await herald.call('POST', '/v1/endpoints', { body })).body as { id: string };
    globexId = (await create({ url: `${receiver.url}/globex`, channels: ['globex:orders'], tenant: 'globex', description: 'globex endpoint' })).id;
    await create({ url: `${receiver.url}/acme-existing`, channels: ['acme:orders'], tenant: 'acme', description: 'made by the platform' });
    // Types seen on acme's channels are what the picker offers.
    for (const type of ['order.created', 'order.refunded']) await herald.call('POST', '/v1/channels/acme:orders/events', { body: { type, data: {} } });
    await herald.call('POST', '/v1/channels/globex:orders/events', { body: { type: 'globex.only', data: {} } });
    const session = await herald.call('POST', '/v1/portal/sessions', { body: { tenant: 'acme' } });
    assert.equal(session.status, 201, JSON.stringify(session.body));
    sessionUrl = session.body.url;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
  });

  after(async () => {
    await browser?.close();
    platform?.close();
    await receiver?.stop();
    await herald?.stop();
  });

  it("opens a session URL for tenant A, creates an endpoint, sees only tenant A's endpoints; the same token gets 404 on tenant B's, as on a missing one", async () => {
    const tab = await openTab();
    await tab.goto(sessionUrl);
    await tab.getByText('Acme Platform').waitFor();
    // The token left the address bar at once, and lives in this tab's sessionStorage.
    assert.ok(!tab.url().includes('token='), tab.url());
    const token = await tab.evaluate(() => sessionStorage.getItem('herald.portal.token'));
    assert.equal(token, sessionUrl.slice(sessionUrl.indexOf('#token=') + 7));
    assert.equal(await tab.evaluate(() => getComputedStyle(document.documentElement).getPropertyValue('--accent').trim()), '#0f766e');
    assert.equal(await tab.locator('img.portal-logo').evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0), true, 'the logo loads');
    await tab.getByText('made by the platform').waitFor();
    await shot(tab, 'list');

    await tab.getByRole('button', { name: 'New endpoint' }).click();
    await tab.getByRole('textbox', { name: /^URL/ }).fill(`${receiver.url}/acme-new`);
    assert.equal(await tab.getByLabel('Channels').inputValue(), 'acme:*', 'channels start as the allowed ones');
    assert.equal(await tab.getByRole('checkbox', { name: 'globex.only' }).count(), 0, "another tenant's types are not offered");
    await tab.getByRole('checkbox', { name: 'order.created' }).check();
    await tab.getByRole('textbox', { name: /^Other type patterns/ }).pressSequentially('invoice.*');
    await tab.getByLabel('Description').fill('created in the portal');
    await shot(tab, 'new-endpoint');
    await tab.getByRole('button', { name: 'Create endpoint' }).click();
    const secret = await tab.getByRole('textbox', { name: 'Signing secret' }).inputValue();
    assert.match(secret, /^whsec_/);
    await shot(tab, 'secret-once');
    await tab.getByRole('button', { name: 'I have copied it' }).click();
    await tab.getByText('created in the portal').waitFor();

    // Editing shows what was picked, and saves a change of types.
    await tab.getByRole('button', { name: 'Edit' }).click();
    assert.equal(await tab.getByRole('checkbox', { name: 'order.created' }).isChecked(), true);
    assert.equal(await tab.getByRole('textbox', { name: /^Other type patterns/ }).inputValue(), 'invoice.*');
    await tab.getByRole('checkbox', { name: 'order.refunded' }).check();
    await tab.getByRole('button', { name: 'Save' }).click();
    await tab.getByText('order.created, order.refunded, invoice.*').waitFor();

    // The detail page: a test event goes out and shows in the delivery log.
    await tab.getByRole('button', { name: 'Send test event' }).click();
    await tab.getByText(/Test event sent/).waitFor();
    await eventually(async () => assert.ok(receiver.hooks.some((h) => h.event.type === 'herald.test'), 'the receiver got the test event'));
    await tab.locator('tr.delivery[data-status="succeeded"]').first().waitFor({ timeout: 10_000 });
    await shot(tab, 'endpoint-detail');

    await tab.getByRole('link', { name: '← Endpoints' }).click();
    // The list's own rows (the detail page's heading shows the same URL until the list has rendered).
    await tab.locator('table a.mono', { hasText: `${receiver.url}/acme-new` }).waitFor();
    await eventually(async () => {
      const urls = await tab.locator('table a.mono').allTextContents();
      assert.deepEqual(urls.sort(), [`${receiver.url}/acme-existing`, `${receiver.url}/acme-new`], "tenant A's endpoints, and only those");
    });
    const created = await herald.call('GET', '/v1/endpoints?tenant=acme');
    const mine = created.body.endpoints.find((e: { description?: string }) => e.description === 'created in the portal');
    assert.deepEqual([mine.tenant, mine.types], ['acme', ['order.created', 'order.refunded', 'invoice.*']], 'forced into tenant A, with the picked and typed types');

    // The same token, through the API: from the page itself, and from outside it.
    const fromPage = await tab.evaluate(async (id) => {
      const res = await fetch(`/v1/endpoints/${id}`, { headers: { authorization: `Bearer ${sessionStorage.getItem('herald.portal.token')}` } });
      return { status: res.status, body: await res.json() };
    }, globexId);
    assert.equal(fromPage.status, 404, JSON.stringify(fromPage.body));
    assert.deepEqual(fromPage.body.error, { code: 'not_found', message: `No endpoint ${globexId}.` });
    assert.equal((await herald.call('GET', `/v1/endpoints/${globexId}`, { token })).status, 404);
    assert.equal((await herald.call('DELETE', `/v1/endpoints/${globexId}`, { token })).status, 404);

    // A narrow window (a phone): the same page, nothing cut off.
    await tab.setViewportSize({ width: 380, height: 760 });
    const overflow = await tab.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 1, `the page does not scroll sideways (${overflow}px)`);
    await shot(tab, 'list-narrow');
    assert.deepEqual(consoleErrors, []);
    assert.deepEqual(failedRequests, [`404 /v1/endpoints/${globexId}`], 'every asset and API call of the portal succeeded');
    assert.deepEqual(unloaded, [`/v1/endpoints/${globexId}`], 'nothing else failed to load (no /favicon.ico either)');
    await tab.close();
  });

  it('works by keyboard: tab to "New endpoint", fill and submit the form without a mouse', async () => {
    const tab = await openTab();
    await tab.goto(sessionUrl);
    await tab.getByRole('button', { name: 'New endpoint' }).waitFor();
    for (let i = 0; i < 30 && !(await tab.evaluate(() => document.activeElement?.textContent === 'New endpoint')); i++) await tab.keyboard.press('Tab');
    await tab.keyboard.press('Enter');
    await tab.getByRole('form', { name: 'New endpoint' }).waitFor();
    // The URL field is the form's first control: the next Tab reaches it.
    await tab.keyboard.press('Tab');
    assert.equal(await tab.evaluate(() => (document.activeElement as HTMLInputElement).type), 'url', 'Tab goes to the URL field');
    await tab.keyboard.type(`${receiver.url}/keyboard`);
    await tab.keyboard.press('Enter');
    await tab.getByRole('textbox', { name: 'Signing secret' }).waitFor();
    assert.equal(await tab.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'Signing secret', 'the secret is focused, ready to copy');
    await tab.close();
  });

  it('a session that ends while the page is open (its key revoked) says so instead of leaving the page up', async () => {
    // Ended by revoking the key that made it, once the page is up: a session of a second or two (exp is in whole
    // seconds, so `ttl: 2` can mean 1.0 s) expired before a loaded machine had rendered the list at all.
    const key = (await herald.call('POST', '/v1/keys', { body: { name: 'portal-maker', scopes: ['admin'], channels: ['*'] } })).body;
    const session = await herald.call('POST', '/v1/portal/sessions', { body: { tenant: 'acme' }, token: key.key });
    assert.equal(session.status, 201, JSON.stringify(session.body));
    const tab = await openTab();
    await tab.goto(session.body.url);
    await tab.getByText('made by the platform').waitFor();
    assert.equal((await herald.call('DELETE', `/v1/keys/${key.id}`)).status, 200);
    // The list reads again every 5 s; once the key is revoked that read is a 401, which ends the page.
    await tab.getByRole('alert').getByText(/expired or is not valid .*Open the portal again from Acme Platform/).waitFor({ timeout: 15_000 });
    assert.equal(await tab.getByRole('button', { name: 'New endpoint' }).count(), 0, 'no form left to fill in vain');
    assert.equal(await tab.getByText('made by the platform').count(), 0, 'no stale list');
    await tab.close();
  });

  it("sits in the platform's page as an iframe, and explains an expired or broken link", async () => {
    const tab = await openTab(1000);
    await tab.goto(`${platformOrigin}/?src=${encodeURIComponent(sessionUrl)}`);
    const frame = tab.frameLocator('#portal');
    await frame.getByText('Acme Platform').waitFor();
    await frame.getByText('made by the platform').waitFor();
    await shot(tab, 'embedded');

    await tab.goto(`${herald.url}/portal#token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.bad`);
    await tab.getByRole('alert').getByText(/expired or is not valid .*Open the portal again from the app that gave you this link\./).waitFor();
    await shot(tab, 'bad-link');
    await tab.close();
  });
});

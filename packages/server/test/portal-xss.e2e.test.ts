import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startTestServer, type TestServer } from './helpers.js';
import { CHROMIUM, CHROMIUM_FLAGS } from './support/chromium.js';


/** Markup that runs script if a page ever puts it into the DOM as HTML; each variant sets its own flag. */
const payload = (n: string) => `<img src=x onerror="window.__pwned='${n}'"><script>window.__pwned='${n}'</script>`;

/**
 * A hostile tenant (and a hostile receiver, which chooses its answers' bodies) against the portal page in a
 * real browser: whatever they put in an endpoint, an event type, a response or a link is shown as text.
 */
describe('the endpoint portal against hostile content', { skip: !existsSync(CHROMIUM) && `${CHROMIUM} is not installed` }, () => {
  let herald: TestServer;
  /** A receiver that refuses every delivery with markup in its answer's body. */
  let receiver: Server;
  let receiverUrl: string;
  let browser: Browser;
  let sessionUrl = '';
  let endpointId = '';
  const pageErrors: string[] = [];

  before(async () => {
    receiver = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(500, { 'content-type': 'text/html' }).end(payload('response')));
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
    herald = await startTestServer({
      delivery: { allowPrivateNetworks: ['127.0.0.0/8'], retrySchedule: [], timeout: 2 },
      // The branding name is the platform's, but goes through the same rendering.
      portal: { allowPrivateNetworks: ['127.0.0.0/8'], branding: { name: '<b onmouseover=alert(1)>Evil</b>' } },
    });
    // Event types are the platform's publishers' (or a tenant's own data): the picker offers them.
    const published = await herald.call('POST', '/v1/channels/acme:orders/events', { body: { type: payload('type'), data: {} } });
    assert.equal(published.status, 201, JSON.stringify(published.body));
    const session = await herald.call('POST', '/v1/portal/sessions', { body: { tenant: 'acme' } });
    assert.equal(session.status, 201, JSON.stringify(session.body));
    sessionUrl = session.body.url;
    const created = await herald.call('POST', '/v1/endpoints', {
      token: session.body.token,
      body: { url: `${receiverUrl}?q="><svg/onload=window.__pwned=1>`, channels: ['acme:orders'], description: payload('description') },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    endpointId = created.body.id;
    const test = await herald.call('POST', `/v1/endpoints/${endpointId}/test`, { token: session.body.token, body: { type: payload('test-type') } });
    assert.equal(test.status, 202, JSON.stringify(test.body));
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
  });

  after(async () => {
    await browser?.close();
    receiver?.closeAllConnections();
    receiver?.close();
    await herald?.stop();
  });

  const openTab = async () => {
    const tab = await browser.newPage({ viewport: { width: 1100, height: 800 } });
    tab.on('pageerror', (e) => pageErrors.push(String(e)));
    tab.on('dialog', (d) => {
      pageErrors.push(`dialog: ${d.message()}`);
      void d.dismiss();
    });
    return tab;
  };
  /** Nothing ran, and no element came out of the hostile strings. */
  const assertInert = async (tab: Page) => {
    assert.equal(await tab.evaluate(() => (window as unknown as { __pwned?: string }).__pwned), undefined, 'no injected script ran');
    assert.equal(await tab.locator('img:not(.portal-logo), script:not([type="module"]), svg, b').count(), 0, 'no injected element');
  };

  it('shows a description, a URL, an event type, a response body and a branding name as text', async () => {
    const tab = await openTab();
    await tab.goto(sessionUrl);
    await tab.getByText('<b onmouseover=alert(1)>Evil</b>', { exact: true }).waitFor();
    await tab.getByText(payload('description'), { exact: true }).waitFor();
    await assertInert(tab);

    await tab.getByRole('link', { name: /127\.0\.0\.1/ }).click();
    await tab.locator('tr.delivery[data-status="failed"]').first().waitFor({ timeout: 10_000 });
    await tab.getByRole('button', { name: 'Attempts' }).first().click();
    await tab.locator('pre.snippet', { hasText: payload('response') }).waitFor();
    await assertInert(tab);

    await tab.goto(`${herald.url}/portal#/new`);
    await tab.getByRole('checkbox', { name: payload('type') }).waitFor();
    await assertInert(tab);
    assert.deepEqual(pageErrors, []);
    await tab.close();
  });

  it('shows an API error that echoes what a link put in the address as text', async () => {
    const tab = await openTab();
    await tab.goto(sessionUrl);
    await tab.getByText('Webhook endpoints').waitFor();
    await tab.goto(`${herald.url}/portal#/endpoints/${encodeURIComponent(payload('id'))}`);
    await tab.getByRole('alert').getByText(/No endpoint/).waitFor();
    await assertInert(tab);
    assert.deepEqual(pageErrors, []);
    await tab.close();
  });

  it('survives a link whose address is not valid percent-encoding: a page, not a blank one', async () => {
    // Before: decodeURIComponent threw in the router and the whole page went blank.
    const tab = await openTab();
    await tab.goto(sessionUrl);
    await tab.getByText('Webhook endpoints').waitFor();
    const shown = tab.getByRole('heading', { name: 'Endpoints' }).or(tab.getByRole('alert')).first();
    // Followed in the open page…
    await tab.evaluate(() => (location.hash = '#/endpoints/%E0%A4%A'));
    await shown.waitFor({ timeout: 5000 });
    // …and opened afresh.
    await tab.evaluate(() => (location.hash = '#/endpoints/%'));
    await tab.reload();
    await shown.waitFor({ timeout: 5000 });
    assert.deepEqual(pageErrors.filter((e) => !e.startsWith('dialog')), []);
    pageErrors.length = 0;
    await tab.close();
  });
});

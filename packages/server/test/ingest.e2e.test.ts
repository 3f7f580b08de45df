import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sign, generateSecret, type Scheme } from '@herald/webhooks';
import { CLI_ADMIN_KEY, rawConnection, spawnHerald, startTestServer, until, type TestServer } from './helpers.js';

const now = () => Math.floor(Date.now() / 1000);

/** Delivers a webhook the way a provider would: raw bytes and the scheme's headers. */
async function deliver(url: string, source: string, body: string | Uint8Array<ArrayBuffer>, headers: Record<string, string>, contentType = 'application/json') {
  const res = await fetch(`${url}/v1/ingest/${source}`, { method: 'POST', headers: { 'content-type': contentType, ...headers }, body });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

describe('inbound webhooks through the real server', () => {
  let h: TestServer;
  const secrets = {
    stripe: 'whsec_stripe_' + 'k'.repeat(24),
    github: 'github-secret-0123456789',
    shopify: 'shpss_0123456789abcdef0123456789abcdef',
    slack: '8f742231b10e8888abcd99yyyzzz85a5',
    standard: generateSecret(),
  };
  before(async () => {
    h = await startTestServer({ limits: { bodyBytes: 64 * 1024 } });
    for (const [provider, secret] of Object.entries(secrets)) {
      const res = await h.call('POST', '/v1/sources', { body: { name: `${provider}-src`, provider, secrets: [secret], channel: `in:${provider}` } });
      assert.equal(res.status, 201, JSON.stringify(res.body));
    }
  });
  after(async () => {
    await h.stop();
  });

  const lastEvent = async (provider: string) => (await h.call('GET', `/v1/channels/in:${provider}/events?limit=1000`)).body.events.at(-1);
  const count = async (provider: string) => (await h.call('GET', `/v1/channels/in:${provider}/events?limit=1000`)).body.events.length;

  it('stripe: verifies, takes id and type from the body, appends with meta', async () => {
    const body = JSON.stringify({ id: 'evt_1Stripe', type: 'payment_intent.succeeded', data: { object: { amount: 1000 } } });
    const res = await deliver(h.url, 'stripe-src', body, sign('stripe', { secret: secrets.stripe, body }));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.duplicate, false);
    const event = await lastEvent('stripe');
    assert.equal(event.id, res.body.event.id);
    assert.equal(event.type, 'payment_intent.succeeded');
    assert.deepEqual(event.data, JSON.parse(body));
    assert.deepEqual(event.meta, { source: 'stripe-src', provider: 'stripe', providerEventId: 'evt_1Stripe' });
  });

  it('github: X-GitHub-Event plus action, deduped on X-GitHub-Delivery', async () => {
    const body = '{"action":"opened","issue":{"number":7}}';
    const headers = { ...sign('github', { secret: secrets.github, body }), 'x-github-event': 'issues', 'x-github-delivery': 'd-123' };
    assert.equal((await deliver(h.url, 'github-src', body, headers)).status, 200);
    const event = await lastEvent('github');
    assert.equal(event.type, 'issues.opened');
    assert.equal(event.meta.providerEventId, 'd-123');
    const again = await deliver(h.url, 'github-src', body, headers);
    assert.equal(again.status, 200);
    assert.equal(again.body.duplicate, true);
    assert.equal(await count('github'), 1);
  });

  it('shopify: X-Shopify-Topic, deduped on X-Shopify-Webhook-Id', async () => {
    const body = '{"id":820982911946154500,"email":"jon@example.com"}';
    const headers = { ...sign('shopify', { secret: secrets.shopify, body }), 'x-shopify-topic': 'orders/create', 'x-shopify-webhook-id': 'wh-9' };
    assert.equal((await deliver(h.url, 'shopify-src', body, headers)).status, 200);
    const event = await lastEvent('shopify');
    assert.equal(event.type, 'orders/create');
    assert.equal(event.meta.providerEventId, 'wh-9');
    // The body's big number stays as the parsed JSON gives it; the raw bytes were what was verified.
    assert.equal(event.data.email, 'jon@example.com');
    // Shopify retries with the same X-Shopify-Webhook-Id (a fresh signature each time): one event, the same one.
    const before = await count('shopify');
    const again = await deliver(h.url, 'shopify-src', body, { ...sign('shopify', { secret: secrets.shopify, body }), 'x-shopify-topic': 'orders/create', 'x-shopify-webhook-id': 'wh-9' });
    assert.equal(again.status, 200);
    assert.equal(again.body.duplicate, true);
    assert.equal(again.body.event.id, event.id);
    assert.equal(await count('shopify'), before);
  });

  it('slack: answers url_verification, takes event.type and event_id', async () => {
    const challenge = JSON.stringify({ type: 'url_verification', challenge: 'c-123', token: 't' });
    const verified = await deliver(h.url, 'slack-src', challenge, sign('slack', { secret: secrets.slack, body: challenge }));
    assert.equal(verified.status, 200);
    assert.deepEqual(verified.body, { challenge: 'c-123' });
    assert.equal(await count('slack'), 0, 'the challenge is not an event');

    const body = JSON.stringify({ type: 'event_callback', event_id: 'Ev01', event: { type: 'app_mention', text: 'hi' } });
    assert.equal((await deliver(h.url, 'slack-src', body, sign('slack', { secret: secrets.slack, body }))).status, 200);
    const event = await lastEvent('slack');
    assert.equal(event.type, 'app_mention');
    assert.equal(event.meta.providerEventId, 'Ev01');

    const form = 'command=%2Fdeploy&text=prod&user_name=ada';
    const res = await deliver(h.url, 'slack-src', form, sign('slack', { secret: secrets.slack, body: form }), 'application/x-www-form-urlencoded');
    assert.equal(res.status, 200);
    assert.deepEqual((await lastEvent('slack')).data, { command: '/deploy', text: 'prod', user_name: 'ada' });

    // Slack's SSL check of a slash command's URL: 200 whether signed or not, and never an event (it carries a token).
    const before = await count('slack');
    const check = 'ssl_check=1&token=legacy-verification-token';
    for (const headers of [{}, sign('slack', { secret: secrets.slack, body: check })]) {
      const answer = await fetch(`${h.url}/v1/ingest/slack-src`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: check });
      assert.deepEqual([answer.status, await answer.text()], [200, '']);
    }
    assert.equal(await count('slack'), before, 'the SSL check is not an event');
    const unsigned = await deliver(h.url, 'slack-src', 'ssl_check=0&text=x', {}, 'application/x-www-form-urlencoded');
    assert.equal(unsigned.status, 401, 'any other unsigned form is refused');
    assert.equal((await deliver(h.url, 'github-src', check, {}, 'application/x-www-form-urlencoded')).status, 401, 'only for Slack sources');
  });

  it('standard webhooks: webhook-id dedupes, the body gives the type', async () => {
    const body = '{"type":"invoice.paid","data":{"id":"inv_1"}}';
    const headers = sign('standard', { secret: secrets.standard, body, id: 'msg_std_1' });
    assert.equal((await deliver(h.url, 'standard-src', body, headers)).status, 200);
    const event = await lastEvent('standard');
    assert.equal(event.type, 'invoice.paid');
    assert.equal(event.meta.providerEventId, 'msg_std_1');
    // A retry of the same message, signed again later (a new webhook-timestamp): deduped on webhook-id alone.
    const before = await count('standard');
    const retry = sign('standard', { secret: secrets.standard, body, id: 'msg_std_1', timestamp: Math.floor(Date.now() / 1000) + 5 });
    const again = await deliver(h.url, 'standard-src', body, retry);
    assert.equal(again.status, 200);
    assert.equal(again.body.duplicate, true);
    assert.equal(again.body.event.id, event.id);
    assert.equal(await count('standard'), before);
  });

  it('refuses bad requests with the right answer and appends nothing', async () => {
    const before = await count('stripe');
    const refusedBefore = (await h.call('GET', '/v1/sources/stripe-src')).body.stats.refused as number;
    const body = JSON.stringify({ id: 'evt_refused', type: 'x' });
    const good = sign('stripe', { secret: secrets.stripe, body });
    const none = await deliver(h.url, 'stripe-src', body, {});
    assert.deepEqual([none.status, none.body.error.code], [401, 'webhook_signature_invalid']);
    const wrong = await deliver(h.url, 'stripe-src', body, sign('stripe', { secret: 'whsec_wrong', body }));
    assert.deepEqual([wrong.status, wrong.body.error.code], [401, 'webhook_signature_invalid']);
    const tampered = await deliver(h.url, 'stripe-src', body.replace('refused', 'refusee'), good);
    assert.deepEqual([tampered.status, tampered.body.error.code], [401, 'webhook_signature_invalid']);
    const stale = await deliver(h.url, 'stripe-src', body, sign('stripe', { secret: secrets.stripe, body, timestamp: now() - 600 }));
    assert.deepEqual([stale.status, stale.body.error.code], [401, 'webhook_timestamp_expired']);
    const unknown = await deliver(h.url, 'nope', body, good);
    assert.deepEqual([unknown.status, unknown.body.error.code], [404, 'not_found']);
    const big = JSON.stringify({ id: 'evt_big', pad: 'x'.repeat(70 * 1024) });
    const tooLarge = await deliver(h.url, 'stripe-src', big, sign('stripe', { secret: secrets.stripe, body: big }));
    assert.deepEqual([tooLarge.status, tooLarge.body.error.code], [413, 'payload_too_large']);
    assert.equal(await count('stripe'), before);
    // Signed, but not UTF-8 (Latin-1 bytes): refused as every body is, never stored with U+FFFD in their place.
    const latin1 = new Uint8Array(Buffer.concat([Buffer.from('{"id":"evt_latin1","type":"x","name":"caf'), Buffer.from([0xe9]), Buffer.from('"}')]));
    for (const type of ['application/json', 'text/plain']) {
      const notUtf8 = await deliver(h.url, 'stripe-src', latin1, sign('stripe', { secret: secrets.stripe, body: latin1 }), type);
      assert.deepEqual([notUtf8.status, notUtf8.body.error.code], [400, 'invalid_json'], type);
      assert.match(notUtf8.body.error.message, /not UTF-8/);
    }
    assert.equal(await count('stripe'), before);
    const info = await h.call('GET', '/v1/sources/stripe-src');
    // Every refusal listed among its recent ingests: the four by signature or timestamp, the oversized body and the
    // two not UTF-8 (those three once went into the list and not the count). The unknown source is no source's.
    assert.equal(info.body.stats.refused, refusedBefore + 7);
    const recent = (await h.call('GET', '/v1/sources/stripe-src/ingests')).body.ingests as Array<{ outcome: string; reason?: string }>;
    assert.deepEqual(
      recent.slice(0, 7).map((r) => `${r.outcome} ${r.reason}`).reverse(),
      ['refused webhook_signature_invalid', 'refused webhook_signature_invalid', 'refused webhook_signature_invalid', 'refused webhook_timestamp_expired', 'refused payload_too_large', 'refused invalid_json', 'refused invalid_json'],
    );
    assert.equal(JSON.stringify(info.body).includes(secrets.stripe), false, 'secrets are never shown');
  });

  it('refuses a source that does not exist before reading the body', async () => {
    // Before, the body (up to limits.bodyBytes) was read and held first: hundreds of connections trickling bodies to
    // made-up sources held hundreds of megabytes, with no credential.
    const { socket, received } = await rawConnection(h.url);
    try {
      socket.write('POST /v1/ingest/nosuch HTTP/1.1\r\nHost: herald\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n{"a":');
      await until(() => received().includes('\r\n\r\n'), 5000, 'an answer before the body is sent');
      assert.match(received(), /^HTTP\/1\.1 404 /);
      assert.match(received(), /"code":"not_found"/);
    } finally {
      socket.destroy();
    }
  });

  it('refuses a request whose source is deleted while its body arrives, and appends nothing', async () => {
    // The source is looked up before the body is read (above); a body can take up to limits.requestTimeout to arrive,
    // and a source deleted meanwhile (a leaked secret, say) must not take it, nor keep its stats past deletion.
    const secret = 'whsec_midway_' + 'q'.repeat(24);
    const created = await h.call('POST', '/v1/sources', { body: { name: 'midway-src', provider: 'stripe', secrets: [secret], channel: 'in:midway' } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const body = JSON.stringify({ id: 'evt_midway', type: 'charge.succeeded' });
    const headers = Object.entries(sign('stripe', { secret, body })).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    const { socket, received } = await rawConnection(h.url);
    try {
      socket.write(`POST /v1/ingest/midway-src HTTP/1.1\r\nHost: herald\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n${headers}\r\n${body.slice(0, 5)}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal((await h.call('DELETE', '/v1/sources/midway-src')).status, 204);
      socket.write(body.slice(5));
      await until(() => received().includes('\r\n\r\n'), 5000, 'an answer');
      assert.match(received(), /^HTTP\/1\.1 404 /);
    } finally {
      socket.destroy();
    }
    assert.deepEqual((await h.call('GET', '/v1/channels/in:midway/events')).body.events, []);
    // A source made again under the name starts with no record of the deleted one's requests.
    assert.equal((await h.call('POST', '/v1/sources', { body: { name: 'midway-src', provider: 'stripe', secrets: [secret], channel: 'in:midway' } })).status, 201);
    assert.deepEqual((await h.call('GET', '/v1/sources/midway-src/ingests')).body.ingests, []);
    assert.equal((await h.call('DELETE', '/v1/sources/midway-src')).status, 204);
  });

  it('ignores a Herald credential on the ingest route: the signature is the credential', async () => {
    const body = JSON.stringify({ id: 'evt_authz', type: 't' });
    const res = await deliver(h.url, 'stripe-src', body, { ...sign('stripe', { secret: secrets.stripe, body }), authorization: 'Basic Zm9vOmJhcg==' });
    assert.equal(res.status, 200);
  });

  it('turns one event delivered 100 times concurrently into exactly one event', async () => {
    const before = await count('stripe');
    const body = JSON.stringify({ id: 'evt_storm', type: 'charge.refunded' });
    const headers = sign('stripe', { secret: secrets.stripe, body });
    const answers = await Promise.all(Array.from({ length: 100 }, () => deliver(h.url, 'stripe-src', body, headers)));
    assert.ok(answers.every((a) => a.status === 200));
    assert.equal(answers.filter((a) => !a.body.duplicate).length, 1);
    assert.equal(new Set(answers.map((a) => a.body.event.id)).size, 1);
    assert.equal(await count('stripe'), before + 1);
  });

  it('manages sources: list, rotate with a grace period, delete, and admin only', async () => {
    const list = await h.call('GET', '/v1/sources');
    assert.equal(list.body.sources.length, 5);
    const dup = await h.call('POST', '/v1/sources', { body: { name: 'github-src', provider: 'github', secrets: [secrets.github] } });
    assert.equal(dup.status, 409);
    const bad = await h.call('POST', '/v1/sources', { body: { name: 'x', provider: 'paypal', secrets: ['x'] } });
    assert.equal(bad.status, 400);
    const key = await h.createKey(['publish', 'subscribe'], ['*']);
    assert.equal((await h.call('GET', '/v1/sources', { token: key })).status, 403);

    await h.call('POST', '/v1/sources', { body: { name: 'rot', provider: 'github', secrets: ['old-secret-0123456789'] } });
    const rotated = await h.call('POST', '/v1/sources/rot/rotate', { body: { secret: 'new-secret-0123456789', graceSeconds: 3600 } });
    assert.equal(rotated.status, 200);
    assert.equal(rotated.body.secrets.length, 2);
    const body = '{"action":"x"}';
    for (const secret of ['old-secret-0123456789', 'new-secret-0123456789']) {
      const headers = { ...sign('github', { secret, body }), 'x-github-delivery': `rot-${secret}` };
      assert.equal((await deliver(h.url, 'rot', body, headers)).status, 200, `${secret} verifies during the grace period`);
    }
    await h.call('POST', '/v1/sources/rot/rotate', { body: { secret: 'newest-secret-0123456789', graceSeconds: 0 } });
    const late = { ...sign('github', { secret: 'new-secret-0123456789', body }), 'x-github-delivery': 'rot-late' };
    assert.equal((await deliver(h.url, 'rot', body, late)).status, 401, 'without grace the old secret stops at once');
    assert.equal((await h.call('DELETE', '/v1/sources/rot')).status, 204);
    assert.equal((await h.call('GET', '/v1/sources/rot')).status, 404);
  });
});

describe('inbound webhooks and kill -9', () => {
  it('loses nothing that was answered 2xx', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-ingest-kill-'));
    try {
      const first = await spawnHerald(['serve', '--port', '0', '--data', dir, '--log-level', 'warn']);
      const admin = { authorization: `Bearer ${CLI_ADMIN_KEY}`, 'content-type': 'application/json' };
      const created = await fetch(`${first.url}/v1/sources`, { method: 'POST', headers: admin, body: JSON.stringify({ name: 'pay', provider: 'stripe', secrets: ['whsec_kill_0123456789abcdefghijklmn'] }) });
      assert.equal(created.status, 201);
      const acked: string[] = [];
      let n = 0;
      const worker = async () => {
        for (;;) {
          const id = `evt_kill_${n++}`;
          const body = JSON.stringify({ id, type: 'charge.succeeded' });
          try {
            const res = await deliver(first.url, 'pay', body, sign('stripe' as Scheme, { secret: 'whsec_kill_0123456789abcdefghijklmn', body }));
            if (res.status === 200) acked.push(id);
            if (acked.length >= 150) first.child.kill('SIGKILL');
          } catch {
            return;
          }
        }
      };
      await Promise.all(Array.from({ length: 8 }, worker));
      await first.exited;

      const second = await spawnHerald(['serve', '--port', '0', '--data', dir, '--log-level', 'warn']);
      try {
        const res = await fetch(`${second.url}/v1/channels/pay/events?limit=1000`, { headers: admin });
        const stored = new Set(((await res.json()) as { events: Array<{ meta: { providerEventId: string } }> }).events.map((e) => e.meta.providerEventId));
        for (const id of acked) assert.ok(stored.has(id), `${id} was answered 200 but is gone after kill -9`);
      } finally {
        second.child.kill('SIGTERM');
        await second.exited;
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('refused webhooks in the log', () => {
  it('a flood of unsigned requests is a few lines a second, and the next line counts the ones not logged', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-ingest-flood-'));
    const server = await spawnHerald(['serve', '--port', '0', '--data', dir, '--log-level', 'warn']);
    let stdout = '';
    server.child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    // Whole lines only: the last may still be being written.
    const refusedLines = () =>
      stdout
        .split('\n')
        .slice(0, -1)
        .filter((line) => line.includes('"msg":"webhook refused"'))
        .map((line) => JSON.parse(line) as { source: string; reason: string; unlogged?: number });
    try {
      const admin = { authorization: `Bearer ${CLI_ADMIN_KEY}`, 'content-type': 'application/json' };
      const created = await fetch(`${server.url}/v1/sources`, { method: 'POST', headers: admin, body: JSON.stringify({ name: 'flood', provider: 'stripe', secrets: ['whsec_flood_0123456789abcdefghijklmn'] }) });
      assert.equal(created.status, 201);
      const forged = () => deliver(server.url, 'flood', '{"id":"evt_forged"}', sign('stripe', { secret: 'whsec_not_the_one_0123456789abcdef', body: '{"id":"evt_forged"}' }));

      const started = Date.now();
      const statuses = await Promise.all(Array.from({ length: 200 }, () => forged().then((r) => r.status)));
      const floodSeconds = (Date.now() - started) / 1000;
      assert.deepEqual(new Set(statuses), new Set([401]), 'every forged request is refused');

      // A second later the next refusal is logged, with the count of those that were not.
      await new Promise((resolve) => setTimeout(resolve, 1100));
      assert.equal((await forged()).status, 401);
      const accounted = () => refusedLines().reduce((sum, l) => sum + 1 + (l.unlogged ?? 0), 0);
      await until(() => accounted() === 201, 5000, 'every refusal is either a line or counted in a later one');
      const lines = refusedLines();
      assert.ok(lines.every((l) => l.source === 'flood' && l.reason === 'no_matching_signature'), JSON.stringify(lines[0]));
      // During the flood: a burst of 10, then 10 a second.
      const duringFlood = lines.length - 1;
      assert.ok(duringFlood <= 10 + Math.ceil(floodSeconds * 10), `${duringFlood} lines for 200 refusals in ${floodSeconds} s`);
      assert.ok(lines.at(-1)!.unlogged! > 0, 'the line after the flood counts what it left out');

      // A signed body that is not JSON and one over limits.bodyBytes are refusals too, each logged with its reason.
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const notJson = 'not json';
      assert.equal((await deliver(server.url, 'flood', notJson, sign('stripe', { secret: 'whsec_flood_0123456789abcdefghijklmn', body: notJson }))).status, 400);
      const big = JSON.stringify({ id: 'evt_big', pad: 'x'.repeat(1024 * 1024) });
      assert.equal((await deliver(server.url, 'flood', big, sign('stripe', { secret: 'whsec_flood_0123456789abcdefghijklmn', body: big }))).status, 413);
      await until(() => refusedLines().length >= lines.length + 2, 5000, 'a line for each of the two');
      assert.deepEqual(refusedLines().slice(lines.length).map((l) => `${l.source} ${l.reason}`), ['flood invalid_json', 'flood payload_too_large']);

      // Metrics and the source's counters still see every one.
      const source = (await (await fetch(`${server.url}/v1/sources/flood`, { headers: admin })).json()) as { stats: { refused: number } };
      assert.equal(source.stats.refused, 203);
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

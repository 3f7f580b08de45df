// A replayed webhook must never be taken for a new event: a timestamp is accepted only while the dedupe id it
// would collide with is still remembered.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sign } from '@herald/webhooks';
import { suiteServers } from './helpers.js';

const DAY = 86_400;

describe('ingest replays past the dedupe window', () => {
  const servers = suiteServers();

  it('refuses a replay whose dedupe id has expired, even on a source whose tolerance is longer than the window', async () => {
    // Defaults: dedupe ids are kept for max(retention.maxAge, ingest.dedupeWindow) = 3 days.
    const h = await servers.start();
    const secret = 'whsec_stripe_' + 'k7Q2'.repeat(8);
    // A source with a tolerance of 7 days, as the API let one be made before (it is refused now, see below).
    assert.ok(await h.storage.sources.insert({ name: 'st', provider: 'stripe', channel: 'in:st', tolerance: 7 * DAY, secrets: [{ secret }], createdAt: Date.now() }));
    const deliver = async (body: string, headers: Record<string, string>) => {
      const res = await fetch(`${h.url}/v1/ingest/st`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
      return { status: res.status, body: (await res.json()) as any };
    };
    const count = async () => (await h.call('GET', '/v1/channels/in:st/events?limit=1000')).body.events.length;

    // Stripe sent this 3.5 days ago; an attacker captured it and replays it now, after its dedupe id expired.
    const body = JSON.stringify({ id: 'evt_captured', type: 'charge.succeeded' });
    const headers = sign('stripe', { secret, body, timestamp: Math.floor(Date.now() / 1000) - 3.5 * DAY });
    // Its dedupe id (had it been stored then) would be gone by now. The source's own 7 days would still take the
    // timestamp; the cap (1.5 days) refuses it, so the replay is never appended as a new event.
    // Shown as the tolerance ingest applies.
    assert.equal((await h.call('GET', '/v1/sources/st')).body.tolerance, 1.5 * DAY);
    const before = await count();
    const replay = await deliver(body, headers);
    assert.equal(replay.status, 401, `the replay was answered ${replay.status} ${JSON.stringify(replay.body)}`);
    assert.equal(replay.body.error.code, 'webhook_timestamp_expired');
    assert.equal(await count(), before);

    // Within the cap: the first delivery is appended, and a replay while its dedupe id lives is a duplicate.
    const recent = JSON.stringify({ id: 'evt_recent', type: 'charge.succeeded' });
    const recentHeaders = sign('stripe', { secret, body: recent, timestamp: Math.floor(Date.now() / 1000) - DAY });
    assert.deepEqual([(await deliver(recent, recentHeaders)).body.duplicate, (await deliver(recent, recentHeaders)).body.duplicate], [false, true]);
    await h.trimmer.runOnce(Date.now() + (DAY / 2) * 1000);
    assert.equal((await deliver(recent, recentHeaders)).body.duplicate, true, 'still a duplicate after a retention pass half a day on');
    assert.equal(await count(), before + 1);

  });

  it('refuses to create a source whose tolerance outlasts the dedupe window', async () => {
    const h = await servers.start({ ingest: { dedupeWindow: 600 }, retention: { maxAge: 600 } });
    const res = await h.call('POST', '/v1/sources', { body: { name: 'st', provider: 'stripe', secrets: ['whsec_stripe_' + 'k7Q2'.repeat(8)], tolerance: 301 } });
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.match(res.body.error.message, /tolerance/);
    assert.equal((await h.call('POST', '/v1/sources', { body: { name: 'st', provider: 'stripe', secrets: ['whsec_stripe_' + 'k7Q2'.repeat(8)], tolerance: 300 } })).status, 201);
  });
});

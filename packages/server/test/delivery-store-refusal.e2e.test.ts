// Outbound deliveries while the store refuses writes (the disk full): an attempt's outcome the store will not take
// is written again until it does, and the delivery is not sent again meanwhile. Before, each refused outcome left the
// delivery due, and it went out again every second for as long as the disk stayed full: a receiver answering 200
// got every event a dozen times in 20 s. The fault is injected at the store's recordAttempt, as SQLite raises it.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import type { AttemptOutcome } from '../src/store/types.js';
import { eventually, sleep, startTestServer, until } from './helpers.js';
import { HookReceiver } from './support/receiver.js';

it('an attempt whose outcome the store refuses is not sent again: its outcome is written once the store takes it, and /readyz says the disk is full meanwhile', async () => {
  const h = await startTestServer({ delivery: { allowPrivateNetworks: ['127.0.0.0/8'], retrySchedule: [0.3, 0.6], timeout: 2 } });
  const r = await new HookReceiver().start();
  const store = h.storage.deliveries;
  const recordAttempt = store.recordAttempt.bind(store);
  let full = true;
  let refusals = 0;
  const diskFull = () => Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
  store.recordAttempt = async (outcome: AttemptOutcome) => {
    if (full) {
      refusals++;
      throw diskFull();
    }
    return recordAttempt(outcome);
  };
  // The same disk for /readyz's probe write. No publish fails here, so only the refused outcomes can tell it to look.
  const events = h.storage.events;
  const probeWrite = events.probeWrite!.bind(events);
  events.probeWrite = async () => {
    if (full) throw diskFull();
    return probeWrite();
  };
  try {
    const endpoint = (await h.call('POST', '/v1/endpoints', { body: { url: r.url, channels: ['full-*'] } })).body as { id: string };
    for (let i = 1; i <= 3; i++) assert.equal((await h.call('POST', `/v1/channels/full-${i}/events`, { body: { data: i } })).status, 201);
    await until(() => refusals >= 1, 5000, 'an outcome refused');
    // Long enough for several rounds of the old resending (each second) and of the outcome's own retries.
    await sleep(3000);
    const ids = () => r.hooks.map((hook) => hook.headers['webhook-id'] as string);
    assert.ok(ids().length >= 1);
    assert.equal(new Set(ids()).size, ids().length, `no event sent twice while its outcome waited: ${ids().join(' ')}`);
    assert.ok(refusals >= 3, `the outcome was written again (${refusals} refusals)`);
    const ready = await h.call('GET', '/readyz');
    assert.deepEqual([ready.status, ready.body.error?.details?.store], [503, 'full']);

    full = false;
    await eventually(async () => {
      const list = (await h.call('GET', `/v1/endpoints/${endpoint.id}/deliveries?limit=100`)).body.deliveries as Array<{ status: string; attempts: number }>;
      assert.deepEqual(list.map((d) => `${d.status} ${d.attempts}`), ['succeeded 1', 'succeeded 1', 'succeeded 1']);
    }, 10_000);
    assert.equal(r.hooks.length, 3, 'each event sent once in all');
    assert.equal((await h.call('GET', '/readyz')).status, 200);
  } finally {
    await h.stop();
    await r.stop();
  }
});

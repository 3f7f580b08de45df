// The circuit breaker of outbound endpoints, through a real server: an endpoint that keeps failing is left alone
// (no attempts, no store writes) between probes, loses nothing, and flows again once it answers, at once after an
// edit or a test event; the endpoint beside it is not slowed; `delivery.disableAfter` still disables it.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN_KEY, deliveriesOf, eventually, metricValue, sleep, startTestServer, until, type TestServer } from './helpers.js';
import { HookReceiver } from './support/receiver.js';
import { freePort } from './support/redis.js';

const LOOPBACK_ONLY = ['127.0.0.1/32'];
/** Retries every half second, so that without the breaker a dead endpoint is tried again and again within a test. */
const FAST_RETRIES = { retrySchedule: Array.from({ length: 30 }, () => 0.5), jitter: 0 };

/** A port nobody listens on (now): connections to it are refused. */
const deadPort = freePort;

/** Starts what `suite` needs and stops all of it after the suite. */
function suite() {
  const servers: TestServer[] = [];
  const receivers: HookReceiver[] = [];
  after(async () => {
    for (const s of servers) await s.stop();
    for (const r of receivers) await r.stop();
  });
  return {
    async server(delivery: Record<string, unknown>) {
      const h = await startTestServer({ delivery: { allowPrivateNetworks: LOOPBACK_ONLY, ...FAST_RETRIES, ...delivery } });
      servers.push(h);
      return h;
    },
    async receiver(port = 0) {
      const r = await new HookReceiver().start(port);
      receivers.push(r);
      return r;
    },
  };
}

async function endpoint(h: TestServer, body: Record<string, unknown>): Promise<string> {
  const res = await h.call('POST', '/v1/endpoints', { body });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.id as string;
}

/** `count` events, spread over `channels` channels `${prefix}:0`… in turn. */
async function publish(h: TestServer, prefix: string, count: number, channels = 1): Promise<void> {
  const events = Array.from({ length: count }, (_, i) => ({ channel: `${prefix}:${i % channels}`, type: 'test', data: { i } }));
  const res = await h.call('POST', '/v1/events', { body: { events } });
  assert.equal(res.status, 201, JSON.stringify(res.body));
}

/** Endpoints whose circuit is open, from the gauge in /metrics. */
async function circuitsOpen(h: TestServer): Promise<number> {
  const open = await metricValue(h.url, ADMIN_KEY, 'herald_endpoint_circuits_open');
  assert.ok(open !== undefined, 'the gauge is in /metrics');
  return open;
}

/** Each channel's seqs in the order they first arrived: ascending when the endpoint kept channel order. */
function inChannelOrder(r: HookReceiver): boolean {
  const last = new Map<string, number>();
  const seen = new Set<string>();
  for (const { event } of r.hooks) {
    if (seen.has(event.id)) continue;
    seen.add(event.id);
    if ((last.get(event.channel) ?? 0) >= event.seq) return false;
    last.set(event.channel, event.seq);
  }
  return true;
}

describe('circuit breaker: a refusing endpoint beside a healthy one', () => {
  const t = suite();
  const breaker = { failures: 5, cooldown: 0.3, maxCooldown: 0.6 };

  it('is left alone between probes, the healthy one gets everything, and once it listens every delivery arrives', async () => {
    const h = await t.server({ circuitBreaker: breaker });
    const healthy = await t.receiver();
    const [unorderedPort, orderedPort] = [await deadPort(), await deadPort()];
    await endpoint(h, { url: healthy.url, channels: ['cb:*'] });
    const unordered = await endpoint(h, { url: `http://127.0.0.1:${unorderedPort}/hooks`, channels: ['cb:*'] });
    const ordered = await endpoint(h, { url: `http://127.0.0.1:${orderedPort}/hooks`, channels: ['cb:*'], ordering: 'channel' });
    const started = Date.now();
    await publish(h, 'cb', 300, 10);
    await until(() => healthy.eventIds().size === 300, 10_000, 'all 300 at the healthy endpoint');
    // A while longer with both circuits open: without the breaker, each half-second retry round tries every one of
    // the unordered endpoint's 300 deliveries again.
    await sleep(1500);
    assert.equal(await circuitsOpen(h), 2, 'both refusing endpoints have their circuit open');
    const elapsed = Date.now() - started;
    const dead = await deliveriesOf(h, unordered);
    assert.equal(dead.list.length, 300);
    assert.deepEqual([...dead.statuses], ['pending'], 'nothing failed or lost: every delivery still waits');
    // `failures`, then what was on the wire when it opened (maxConcurrency, 10), then a probe per cooldown at most.
    const bound = breaker.failures + 10 + Math.ceil(elapsed / (breaker.cooldown * 1000)) + 1;
    assert.ok(dead.attempts <= bound, `${dead.attempts} attempts recorded for the refusing endpoint in ${elapsed} ms (at most ${bound})`);
    const deadOrdered = await deliveriesOf(h, ordered);
    assert.ok(deadOrdered.attempts <= bound, `${deadOrdered.attempts} attempts for the ordered one (at most ${bound})`);

    // They come back: the next probe succeeds, and the backlog flows, in channel order for the ordered one.
    const back = await t.receiver(unorderedPort);
    const backOrdered = await t.receiver(orderedPort);
    await until(() => back.eventIds().size === 300 && backOrdered.eventIds().size === 300, 15_000, 'all 300 at both endpoints once they listen');
    assert.ok(inChannelOrder(backOrdered), 'each channel in seq order at the ordered endpoint');
    await eventually(async () => assert.equal(await circuitsOpen(h), 0, 'both circuits closed'));
    assert.deepEqual([...(await deliveriesOf(h, unordered)).statuses], ['succeeded']);
  });
});

describe('circuit breaker: an edit or a test event does not wait for the cooldown', () => {
  const t = suite();
  // A cooldown longer than the test: anything that arrives did not wait for it.
  const breaker = { failures: 3, cooldown: 60, maxCooldown: 60 };

  it('a test event is sent at once, and its success closes the circuit', async () => {
    const h = await t.server({ circuitBreaker: breaker });
    const r = await t.receiver();
    r.status = 503;
    const id = await endpoint(h, { url: r.url, channels: ['tested:*'], maxConcurrency: 1 });
    await publish(h, 'tested', 20);
    await eventually(async () => assert.equal(await circuitsOpen(h), 1));
    const tried = r.hooks.length;
    assert.equal(tried, breaker.failures, 'one at a time: the third failure opened it');
    await sleep(1200);
    assert.equal(r.hooks.length, tried, 'nothing is sent while the circuit is open, though retries are due every 0.5 s');
    r.status = 200;
    const test = await h.call('POST', `/v1/endpoints/${id}/test`, { body: {} });
    assert.equal(test.status, 202, JSON.stringify(test.body));
    await until(() => r.hooks.some((hook) => hook.event.type === 'herald.test'), 3000, 'the test event, at once');
    await until(() => r.eventIds().size === 21, 5000, 'then the 20 held back');
    assert.equal(await circuitsOpen(h), 0);
  });

  it('a retry of a dead letter closes the circuit: it goes at once, and so does what was held back', async () => {
    // One retry each: the first event's second failure is its last, and the third failure in a row opens the circuit.
    const h = await t.server({ circuitBreaker: breaker, retrySchedule: [0.1] });
    const r = await t.receiver();
    r.status = 503;
    const id = await endpoint(h, { url: r.url, channels: ['retried:*'], maxConcurrency: 1, ordering: 'channel' });
    await publish(h, 'retried', 2);
    await eventually(async () => assert.equal(await circuitsOpen(h), 1));
    const { list } = await deliveriesOf(h, id);
    const dead = list.find((d) => d.status === 'failed');
    assert.ok(dead, `a dead letter: ${JSON.stringify(list)}`);
    r.status = 200;
    const res = await h.call('POST', `/v1/deliveries/${dead.id}/retry`);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    // The cooldown is a minute: both delivered within seconds means the retry did not wait for a probe.
    await eventually(async () => assert.deepEqual([...(await deliveriesOf(h, id)).statuses], ['succeeded']), 3000);
    assert.equal(await circuitsOpen(h), 0);
  });

  it('PATCHing the URL to a live receiver closes the circuit at once', async () => {
    const h = await t.server({ circuitBreaker: breaker });
    const id = await endpoint(h, { url: `http://127.0.0.1:${await deadPort()}/hooks`, channels: ['moved:*'] });
    await publish(h, 'moved', 50);
    await eventually(async () => assert.equal(await circuitsOpen(h), 1));
    await sleep(1200);
    const held = await deliveriesOf(h, id);
    assert.ok(held.attempts <= breaker.failures + 10, `${held.attempts} attempts while open`);
    const r = await t.receiver();
    const res = await h.call('PATCH', `/v1/endpoints/${id}`, { body: { url: r.url } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    await until(() => r.eventIds().size === 50, 5000, 'all 50 at the new URL, without waiting out the cooldown');
    assert.equal(await circuitsOpen(h), 0);
  });
});

describe('circuit breaker: delivery.disableAfter still disables an endpoint that never answers', () => {
  const t = suite();

  it('the probes keep failing, so the endpoint is disabled in time, and its circuit goes with it', async () => {
    const breaker = { failures: 3, cooldown: 0.2, maxCooldown: 0.4 };
    const h = await t.server({ circuitBreaker: breaker, disableAfter: 1 });
    const id = await endpoint(h, { url: `http://127.0.0.1:${await deadPort()}/hooks`, channels: ['doomed:*'] });
    await publish(h, 'doomed', 100);
    await eventually(async () => {
      const ep = (await h.call('GET', `/v1/endpoints/${id}`)).body;
      assert.equal(ep.enabled, false, 'disabled');
      assert.match(ep.disabledReason, /without a break for 1 s/);
    }, 5000);
    const { attempts } = await deliveriesOf(h, id);
    assert.ok(attempts < 40, `${attempts} attempts of 100 deliveries before it was disabled`);
    await eventually(async () => assert.equal(await circuitsOpen(h), 0, 'a disabled endpoint has no circuit on the gauge'));
  });
});

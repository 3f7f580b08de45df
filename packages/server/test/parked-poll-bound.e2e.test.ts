// limits.parkedPollBytes: the bound on what the long polls parked on a node hold, each counted by parkedPollCost
// (a fixed part, a part per channel, and its headers past the first KiB).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN_KEY, metricValue, startTestServer, type CallResult, type TestServer, until } from './helpers.js';
import { parkedPollCost as cost } from '../src/transports/poll/long-poll.js';

/**
 * 4,000 bytes of padding in a header: with the few hundred bytes undici's request line and headers hold, a poll's
 * headers past the first KiB are counted as 4 KiB (whole KiB).
 */
const PADDED = { 'x-pad': 'p'.repeat(4000) };
const PAD_COST = 4 * 1024;
/** Room for a one-channel poll with padded headers, a three-channel and one more one-channel poll, and not a byte more. */
const BOUND = cost(1) + PAD_COST + cost(3) + cost(1);

describe('the bound on parked long polls (limits.parkedPollBytes)', () => {
  let h: TestServer;
  before(async () => {
    h = await startTestServer({ limits: { parkedPollBytes: BOUND, channelsPerRequest: 5, pollWaitMax: 20 } });
  });
  after(async () => {
    await h.stop();
  });

  const multi = (channels: string[], cursor?: string) =>
    h.call('GET', `/v1/events?${channels.map((c) => `channel=${c}`).join('&')}&wait=20${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
  const publish = (channel: string, data: unknown) => h.call('POST', `/v1/channels/${channel}/events`, { body: { data } });
  const refusedCount = async () => (await metricValue(h.url, ADMIN_KEY, 'herald_long_polls_refused_total')) ?? NaN;

  function assertTooManyWaiting(res: CallResult, what: string): void {
    assert.equal(res.status, 503, `${what}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.error.code, 'unavailable', what);
    assert.equal(res.body.error.details.reason, 'too_many_waiting', what);
    const retryAfter = res.headers.get('retry-after');
    assert.match(retryAfter ?? '', /^[1-5]$/, `${what}: Retry-After ${retryAfter}`);
  }

  it('parks polls up to the bound, each counted by its channels, and refuses the next with 503, Retry-After and the reason', async () => {
    const refusedBefore = await refusedCount();
    const one = h.call('GET', '/v1/channels/b-a/events?wait=20', { headers: PADDED });
    await until(() => h.longPoll.parked === cost(1) + PAD_COST, 5000, 'a one-channel poll parked, counted with its headers');
    const three = multi(['b-b', 'b-c', 'b-d']);
    await until(() => h.longPoll.parked === cost(1) + PAD_COST + cost(3), 5000, 'a three-channel poll parked');
    // A two-channel poll is counted as more than the one-channel poll there is room for: refused, at once, with nothing
    // parked for it. So is a one-channel poll whose headers take it past the room left.
    assertTooManyWaiting(await multi(['b-e', 'b-f']), 'a two-channel poll past the bound');
    assertTooManyWaiting(await h.call('GET', '/v1/channels/b-e/events?wait=20', { headers: PADDED }), 'a one-channel poll whose headers take it past the bound');
    assert.equal(h.longPoll.parked, cost(1) + PAD_COST + cost(3));
    assert.equal(h.longPoll.waiting, 2, 'the refused polls left no waiter behind');
    // A one-channel poll fills the bound exactly: parked.
    const last = h.call('GET', '/v1/channels/b-g/events?wait=20');
    await until(() => h.longPoll.parked === BOUND, 5000, 'a poll that fills the bound parked');
    // The server is in this process: with Math.random at 0 the jittered Retry-After is its least, 1 s (not the 5 s of
    // other 503s).
    const random = Math.random;
    Math.random = () => 0;
    let refused: CallResult;
    try {
      refused = await h.call('GET', '/v1/channels/b-h/events?wait=20');
    } finally {
      Math.random = random;
    }
    assertTooManyWaiting(refused, 'a one-channel poll past the bound');
    assert.equal(refused.headers.get('retry-after'), '1');
    assert.equal(await refusedCount(), refusedBefore + 3, 'every refusal counted in herald_long_polls_refused_total');

    // A poll with something to answer does not park: answered at once whatever the bound.
    await publish('b-ready', 'there');
    const ready = await h.call('GET', '/v1/channels/b-ready/events?after=0&wait=20');
    assert.equal(ready.status, 200);
    assert.deepEqual(ready.body.events.map((e: any) => e.data), ['there']);
    const readyMulti = await multi(['b-ready', 'b-x']);
    assert.equal(readyMulti.status, 200);
    assert.equal(readyMulti.body.events.length, 1);

    // The three-channel poll answered: its room is free again, and the two-channel poll parks.
    await publish('b-c', 'wake');
    const woken = await three;
    assert.equal(woken.status, 200);
    assert.deepEqual(woken.body.events.map((e: any) => [e.channel, e.data]), [['b-c', 'wake']]);
    assert.equal(h.longPoll.parked, 2 * cost(1) + PAD_COST);
    const two = multi(['b-e', 'b-f']);
    await until(() => h.longPoll.parked === 2 * cost(1) + PAD_COST + cost(2), 5000, 'the two-channel poll parked once there was room');

    await Promise.all(['b-a', 'b-g', 'b-f'].map((c) => publish(c, 'bye')));
    assert.deepEqual((await Promise.all([one, last, two])).map((r) => r.status), [200, 200, 200]);
    assert.equal(h.longPoll.parked, 0);
  });

  it('loses nothing: a client refused with 503 that polls again later gets every event after its cursor', async () => {
    const start = await h.call('GET', '/v1/events?channel=keep-1&channel=keep-2');
    const cursor = start.body.cursor as string;
    // Three one-channel polls leave less room than any poll is counted as.
    const fillers = ['f-1', 'f-2', 'f-3'].map((c) => h.call('GET', `/v1/channels/${c}/events?wait=20`));
    await until(() => h.longPoll.parked === 3 * cost(1), 5000, 'the bound taken');
    assertTooManyWaiting(await multi(['keep-1', 'keep-2'], cursor), 'a multi-channel poll');
    assertTooManyWaiting(await h.call('GET', '/v1/channels/keep-1/events?after=0&wait=20'), 'a single-channel poll');
    // Published while the client waits out its Retry-After.
    for (const [channel, data] of [['keep-1', 1], ['keep-2', 2], ['keep-1', 3]] as const) assert.equal((await publish(channel, data)).status, 201);
    // Polled again from the same cursor (the bound still taken): everything since, at once.
    const again = await multi(['keep-1', 'keep-2'], cursor);
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.deepEqual(again.body.events.map((e: any) => e.data), [1, 2, 3]);
    const single = await h.call('GET', '/v1/channels/keep-1/events?after=0&wait=20');
    assert.deepEqual(single.body.events.map((e: any) => e.data), [1, 3]);
    // Room again: the next poll from the new cursor parks, and gets what comes next, and nothing twice.
    await publish('f-3', 'free');
    assert.equal((await fillers[2])!.status, 200);
    const next = multi(['keep-1', 'keep-2'], again.body.cursor);
    await until(() => h.longPoll.parked === 2 * cost(1) + cost(2), 5000, 'the client parked again');
    await publish('keep-2', 4);
    const res = await next;
    assert.deepEqual(res.body.events.map((e: any) => e.data), [4]);
    await Promise.all(['f-1', 'f-2'].map((c) => publish(c, 'bye')));
    assert.deepEqual((await Promise.all(fillers)).map((r) => r.status), [200, 200, 200]);
  });
});

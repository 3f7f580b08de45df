import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { ADMIN_KEY, rawConnection, sleep, startTestServer, type TestServer, until } from './helpers.js';

describe('long polling', () => {
  let h: TestServer;
  before(async () => {
    h = await startTestServer({ limits: { pollWaitMax: 5 } });
  });
  after(async () => {
    await h.stop();
  });

  it('answers at once when events are already there', async () => {
    await h.call('POST', '/v1/channels/ready/events', { body: { data: 1 } });
    const started = performance.now();
    const res = await h.call('GET', '/v1/channels/ready/events?after=0&wait=5');
    assert.ok(performance.now() - started < 1000);
    assert.deepEqual(res.body.events.map((e: any) => e.data), [1]);
  });

  it('answers as soon as the next publish is durable, not at its timeout', async () => {
    const polling = h.call('GET', '/v1/channels/lp/events?after=0&wait=20').then((res) => ({ res, at: performance.now() }));
    await until(() => h.longPoll.waiting === 1, 5000, 'the poll parked');
    const pub = await h.call('POST', '/v1/channels/lp/events', { body: { data: 'news' } });
    const publishAnsweredAt = performance.now();
    const { res, at } = await polling;
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.events, [pub.body]);
    assert.equal(res.body.next, 1);
    // The parked poll is woken before the publish is answered (the fan-out runs before publish returns), so its answer
    // comes with the publish's. Measured from the publish's answer, not from its start, so that a slow sync on a busy
    // machine does not count: how fast a sync is is the benchmarks' business.
    const lag = at - publishAnsweredAt;
    assert.ok(lag < 250, `long poll answered ${lag.toFixed(1)} ms after the publish was`);
  });

  it('answers with an empty list at the timeout', async () => {
    const started = performance.now();
    const res = await h.call('GET', '/v1/channels/quiet/events?after=0&wait=0.3');
    const waited = performance.now() - started;
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.events, []);
    assert.equal(res.body.next, 0);
    assert.ok(waited >= 280 && waited < 2000, `waited ${waited} ms`);
  });

  it('holds many waiters without a polling loop, and frees those whose clients leave', async () => {
    const leaving = Array.from({ length: 100 }, () => new AbortController());
    const abandoned = leaving.map((c) =>
      fetch(`${h.url}/v1/channels/crowd/events?wait=5`, { headers: { authorization: `Bearer ${ADMIN_KEY}` }, signal: c.signal }).catch(
        (err: Error) => err.name,
      ),
    );
    const staying = Array.from({ length: 100 }, () => h.call('GET', '/v1/channels/crowd/events?wait=5'));
    await until(() => h.longPoll.waiting === 200);
    for (const c of leaving) c.abort();
    assert.deepEqual(new Set(await Promise.all(abandoned)), new Set(['AbortError']));
    await until(() => h.longPoll.waiting === 100);
    await h.call('POST', '/v1/channels/crowd/events', { body: { data: 'all' } });
    const answers = await Promise.all(staying);
    assert.ok(answers.every((a) => a.status === 200 && a.body.events.length === 1 && a.body.events[0].data === 'all'));
    assert.equal(h.longPoll.waiting, 0);
  });

  it('releases parked polls with an empty answer on shutdown', async () => {
    const other = await startTestServer();
    const polling = other.call('GET', '/v1/channels/bye/events?wait=30');
    await until(() => other.longPoll.waiting === 1);
    const started = performance.now();
    await other.stop();
    const res = await polling;
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.events, []);
    assert.ok(performance.now() - started < 5000);
  });

  it('wakes a multi-channel long poll for any of its channels', async () => {
    const first = await h.call('GET', '/v1/events?channel=x1&channel=x2');
    const polling = h.call('GET', `/v1/events?channel=x1&channel=x2&wait=5&cursor=${first.body.cursor}`);
    await until(() => h.longPoll.waiting === 1, 5000, 'the poll parked');
    await h.call('POST', '/v1/channels/x2/events', { body: { data: 'second' } });
    const res = await polling;
    assert.deepEqual(res.body.events.map((e: any) => [e.channel, e.data]), [['x2', 'second']]);
  });

  it('reads again only the channel its news came on when a multi-channel poll wakes', async () => {
    // Before, every channel was read again: 100 reads per parked 100-channel poll for each publish that woke it.
    const channels = Array.from({ length: 100 }, (_, i) => `wake:${i}`);
    const query = channels.map((c) => `channel=${c}`).join('&');
    const polling = h.call('GET', `/v1/events?${query}&wait=5`);
    await until(() => h.longPoll.waiting === 1, 5000, 'the poll parked');
    const store = h.storage.events;
    const read = store.read.bind(store);
    const readChannels: string[] = [];
    store.read = (channel, ...rest) => {
      readChannels.push(channel);
      return read(channel, ...rest);
    };
    try {
      await h.call('POST', '/v1/channels/wake:42/events', { body: { data: 'news' } });
      const res = await polling;
      assert.deepEqual(res.body.events.map((e: any) => [e.channel, e.data]), [['wake:42', 'news']]);
      assert.ok(res.body.epochs['wake:7'], 'every channel still has its epoch');
    } finally {
      store.read = read;
    }
    assert.ok(readChannels.every((c) => c === 'wake:42'), `read again: ${[...new Set(readChannels)].length} channels`);
    // Its cursor moved for that channel only.
    const next = await h.call('GET', `/v1/events?${query}&cursor=${encodeURIComponent((await polling).body.cursor)}`);
    assert.deepEqual(next.body.events, []);
  });

  /** `n` long polls written at once on one raw connection, as a pipelining client sends them. */
  async function pipelined(channel: string, n: number) {
    const { socket, received } = await rawConnection(h.url);
    const request = `GET /v1/channels/${channel}/events?wait=5 HTTP/1.1\r\nHost: herald\r\nAuthorization: Bearer ${ADMIN_KEY}\r\n\r\n`;
    socket.write(request.repeat(n));
    return { socket, answers: () => received().split('HTTP/1.1 200 ').length - 1 };
  }

  it('frees every pipelined poll when its connection goes, not only the one being answered', async () => {
    const { socket } = await pipelined('lp-pipe', 3);
    // A connection's polls take turns (transports/poll/answer-room.ts): one parks, the others wait behind it.
    await until(() => h.longPoll.waiting === 1, 5000, 'the first poll parked');
    await sleep(300);
    assert.equal(h.longPoll.waiting, 1, 'the polls behind it wait their turn');
    socket.destroy();
    // Well before their 5 s wait ends.
    await until(() => h.longPoll.waiting === 0, 2000, 'the polls queued behind the first freed');
    await sleep(300);
    assert.equal(h.longPoll.waiting, 0, 'and none of those behind it parks once it is gone');
  });

  it('answers limits.pipelinedRequests pipelined polls, and drops a connection that sends more', async () => {
    const within = await pipelined('lp-pipe-ok', 8);
    await until(() => h.longPoll.waiting === 1, 5000, 'the first poll parked, the others behind it');
    await h.call('POST', '/v1/channels/lp-pipe-ok/events', { body: { data: 1 } });
    await until(() => within.answers() === 8, 5000, 'eight answers');
    assert.equal(within.socket.destroyed, false);
    within.socket.destroy();

    const past = await pipelined('lp-pipe-over', 9);
    await once(past.socket, 'close');
    assert.equal(past.answers(), 0);
    await until(() => h.longPoll.waiting === 0, 2000, 'the dropped connection parks nothing');
  });

  it('ends a parked poll whose key is revoked: 401, never the events published after the revocation', { timeout: 20_000 }, async () => {
    const created = await h.call('POST', '/v1/keys', { body: { name: 'doomed', scopes: ['subscribe'], channels: ['rv:*'] } });
    const minted = await h.call('POST', '/v1/tokens', { token: created.body.key, body: { sub: 'u', channels: ['rv:*'] } });
    const token = minted.body.token as string;
    const single = h.call('GET', '/v1/channels/rv:1/events?after=0&wait=5', { token });
    const multi = h.call('GET', '/v1/events?channel=rv:2&channel=rv:3&wait=5', { token });
    await until(() => h.longPoll.waiting === 2, 5000, 'both polls parked');
    const revokedAt = performance.now();
    assert.equal((await h.call('DELETE', `/v1/keys/${created.body.id}`)).status, 200);
    // Published after the revocation: the single-channel poll wakes for it, and must not hand it over.
    await h.call('POST', '/v1/channels/rv:1/events', { body: { data: 'after revocation' } });
    const [one, many] = await Promise.all([single, multi]);
    assert.equal(one.status, 401, JSON.stringify(one.body));
    assert.equal(many.status, 401, JSON.stringify(many.body));
    // The multi-channel poll heard no news: the credential sweep ended it, well before its 5 s wait.
    assert.ok(performance.now() - revokedAt < 4000, `answered ${(performance.now() - revokedAt).toFixed(0)} ms after the revocation`);
    assert.equal(h.longPoll.waiting, 0);
  });

  it('reads a wait over the maximum as the maximum (the SDK asks for 25 s whatever the server allows), and refuses one that is not finite', async () => {
    const started = performance.now();
    const res = await h.call('GET', '/v1/channels/lp-max/events?after=0&wait=6000');
    const waited = performance.now() - started;
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.events, []);
    assert.ok(waited >= 4900 && waited < 15_000, `answered after ${Math.round(waited)} ms, at limits.pollWaitMax (5 s)`);
    // The multi-channel poll the SDK uses reads it the same way (answered at once here: there is an event).
    await h.call('POST', '/v1/channels/lp-max/events', { body: { data: 1 } });
    const many = await h.call('GET', '/v1/events?channel=lp-max&wait=25');
    assert.equal(many.status, 200, JSON.stringify(many.body));
    assert.equal(many.body.events.length, 1);
    for (const wait of ['Infinity', '-1']) assert.equal((await h.call('GET', `/v1/channels/lp-max/events?wait=${wait}`)).status, 400, wait);
  });
});

// Issue #14 through the real server (one node): presence sets over WebSockets and GET, ephemeral publishes over
// WebSocket, HTTP and SSE, and direct messages (`send`).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ClientOptions } from 'ws';
import { WsTestClient } from './ws-client.js';
import { suiteServers, until, type TestServer } from './helpers.js';
import { readStream } from './sse-client.js';

describe('presence, ephemeral publishes and direct messages', () => {
  const { start, track } = suiteServers({ channels: { presence: ['room:*'], public: ['room:lobby'] } });

  /** A subscriber token for `sub`: reads `channels`, publishes to `publish`. */
  async function token(h: TestServer, sub: string, channels: string[], publish: string[] = []): Promise<string> {
    const res = await h.call('POST', '/v1/tokens', { body: { sub, channels, ...(publish.length ? { publish } : {}), ttl: 600 } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body.token;
  }

  async function connect(h: TestServer, credential?: string, options: ClientOptions = {}): Promise<WsTestClient> {
    const c = new WsTestClient(`${h.url.replace('http', 'ws')}/v1/ws${credential ? `?token=${credential}` : ''}`, options);
    track(c);
    await c.opened;
    return c;
  }

  /** Subscribes with `presence` and returns the `subscribed` frame. */
  async function join(c: WsTestClient, channel: string, info?: unknown, ref = `join:${channel}`): Promise<any> {
    c.send({ op: 'subscribe', channel, ref, presence: info === undefined ? {} : { info } });
    await until(() => c.frames.some((f) => f.ref === ref), 5000, `answer to ${ref}`);
    const answer = c.frames.find((f) => f.ref === ref);
    assert.equal(answer.op, 'subscribed', JSON.stringify(answer));
    return answer;
  }

  const answerTo = async (c: WsTestClient, ref: string) => {
    await until(() => c.frames.some((f) => f.ref === ref), 5000, `answer to ${ref}`);
    return c.frames.find((f) => f.ref === ref);
  };

  it('a socket that closes while its auth and subscribe are still being handled leaves no member behind', async () => {
    const h = await start();
    const credential = await token(h, 'ghost', ['room:*']);
    for (let i = 0; i < 20; i++) {
      const c = await connect(h);
      // The auth is verified asynchronously; the subscribe waits behind it; the socket is gone before either ends.
      c.send({ op: 'auth', token: credential });
      c.send({ op: 'subscribe', channel: 'room:ghosts', ref: 'j', presence: {} });
      c.ws.terminate();
    }
    const watcher = await connect(h, await token(h, 'watcher', ['room:*']));
    await join(watcher, 'room:ghosts');
    // A member of the set is announced to the watcher, and listed by GET: neither may hold a closed socket.
    const listed = async () => (await h.call('GET', '/v1/channels/room:ghosts/presence')).body.members.map((m: any) => m.sub);
    await until(() => h.ws.size <= 1, 5000, 'the closed sockets are gone');
    assert.deepEqual(await listed(), ['watcher']);
  });

  it('joins on subscribe with presence: members get join frames, GET lists the set, and unsubscribe and close leave', async () => {
    const h = await start();
    const alice = await connect(h, await token(h, 'alice', ['room:*']));
    const bob = await connect(h, await token(h, 'bob', ['room:*']));

    const a = await join(alice, 'room:1', { name: 'Alice' });
    assert.match(a.presence.client, /^cl_[A-Za-z0-9_-]{16}$/);
    assert.deepEqual(a.presence.members, [{ client: a.presence.client, sub: 'alice', info: { name: 'Alice' } }]);

    const b = await join(bob, 'room:1');
    assert.notEqual(b.presence.client, a.presence.client);
    assert.deepEqual(
      b.presence.members.map((m: any) => [m.sub, m.info]),
      [
        ['alice', { name: 'Alice' }],
        ['bob', null],
      ],
    );
    const [joined] = await alice.next('presence');
    assert.deepEqual(joined, { op: 'presence', channel: 'room:1', action: 'join', member: { client: b.presence.client, sub: 'bob', info: null } });
    assert.equal(bob.ops('presence').length, 0, 'a member is not told about its own join');

    // GET needs read rights on the channel, and the channel must have a presence set.
    const reader = await token(h, 'reader', ['room:1']);
    const listed = await h.call('GET', '/v1/channels/room:1/presence', { token: reader });
    assert.equal(listed.status, 200);
    assert.deepEqual(listed.body.members.map((m: any) => m.client).sort(), [a.presence.client, b.presence.client].sort());
    assert.equal((await h.call('GET', '/v1/channels/room:1/presence', { token: await token(h, 'other', ['room:2']) })).status, 403);
    assert.equal((await h.call('GET', '/v1/channels/room:1/presence', { token: null })).status, 401);
    const noSet = await h.call('GET', '/v1/channels/chat/presence');
    assert.equal(noSet.status, 404);
    assert.equal(noSet.body.error.code, 'not_found');

    bob.send({ op: 'unsubscribe', channel: 'room:1', ref: 'u' });
    await until(() => alice.ops('presence').length === 2, 5000, 'leave after unsubscribe');
    assert.deepEqual(alice.ops('presence')[1], { op: 'presence', channel: 'room:1', action: 'leave', member: { client: b.presence.client, sub: 'bob', info: null } });

    await join(bob, 'room:1', { again: true }, 'rejoin');
    await until(() => alice.ops('presence').length === 3, 5000, 'second join');
    bob.ws.close();
    await until(() => alice.ops('presence').length === 4, 5000, 'leave after close');
    assert.equal(alice.ops('presence')[3].action, 'leave');
    const after = await h.call('GET', '/v1/channels/room:1/presence');
    assert.deepEqual(after.body.members, [{ client: a.presence.client, sub: 'alice', info: { name: 'Alice' } }]);
  });

  it('a socket that misses its heartbeats leaves the set when it is dropped', async () => {
    const h = await start({ ws: { heartbeat: 0.2 } });
    const watcher = await connect(h, await token(h, 'watcher', ['room:*']));
    // No automatic pong: to the server this socket has gone silent.
    const silent = await connect(h, await token(h, 'silent', ['room:*']), { autoPong: false });
    await join(watcher, 'room:hb');
    const s = await join(silent, 'room:hb');
    await until(() => watcher.ops('presence').some((f) => f.action === 'leave' && f.member.client === s.presence.client), 5000, 'leave after missed pongs');
    assert.equal((await h.call('GET', '/v1/channels/room:hb/presence')).body.members.length, 1);
  });

  it('refuses a join with info over 1 KiB, on a channel without presence, without a credential, or past limits.presenceMembers', async () => {
    const h = await start({ limits: { presenceMembers: 2 } });
    const credential = await token(h, 'u', ['room:*', 'chat']);
    const c = await connect(h, credential);
    c.send({ op: 'subscribe', channel: 'room:big', ref: 'big', presence: { info: { text: 'x'.repeat(1100) } } });
    assert.equal((await answerTo(c, 'big')).code, 'payload_too_large');
    c.send({ op: 'subscribe', channel: 'chat', ref: 'off', presence: {} });
    assert.equal((await answerTo(c, 'off')).code, 'bad_request');
    c.send({ op: 'subscribe', channel: 'room:x', ref: 'shape', presence: 'yes' });
    assert.equal((await answerTo(c, 'shape')).code, 'bad_request');

    const anonymous = await connect(h);
    anonymous.send({ op: 'subscribe', channel: 'room:lobby', ref: 'anon', presence: {} });
    assert.equal((await answerTo(anonymous, 'anon')).code, 'unauthorized');

    await join(c, 'room:full');
    await join(await connect(h, credential), 'room:full');
    const third = await connect(h, credential);
    third.send({ op: 'subscribe', channel: 'room:full', ref: 'third', presence: {} });
    const refused = await answerTo(third, 'third');
    assert.equal(refused.op, 'error');
    assert.equal(refused.code, 'presence_full');
    assert.equal((await h.call('GET', '/v1/channels/room:full/presence')).body.members.length, 2);
    // Nothing was subscribed either: a publish on the channel does not reach the refused socket.
    await h.call('POST', '/v1/channels/room:full/events', { body: { data: 1 } });
    await c.next('event');
    assert.equal(third.ops('event').length, 0);
  });

  it('one sub has at most limits.presencePerSub members in a set: one credential cannot fill it and keep others out', async () => {
    const h = await start({ limits: { presencePerSub: 2 } });
    const mallory = await token(h, 'mallory', ['room:*']);
    const tabs = [await connect(h, mallory), await connect(h, mallory)];
    for (const tab of tabs) await join(tab, 'room:crowded');
    const third = await connect(h, mallory);
    third.send({ op: 'subscribe', channel: 'room:crowded', ref: 'third', presence: {} });
    const refused = await answerTo(third, 'third');
    assert.equal(refused.code, 'presence_full', JSON.stringify(refused));
    assert.match(refused.message, /limits\.presencePerSub/);
    // Another sub still joins, and the same sub in another set.
    await join(await connect(h, await token(h, 'alice', ['room:*'])), 'room:crowded');
    await join(third, 'room:other');
    const subs = (await h.call('GET', '/v1/channels/room:crowded/presence')).body.members.map((m: { sub: string }) => m.sub).sort();
    assert.deepEqual(subs, ['alice', 'mallory', 'mallory']);
    // Once one of its members leaves, the sub may join again.
    tabs[0]!.ws.close();
    await until(async () => (await h.call('GET', '/v1/channels/room:crowded/presence')).body.members.length === 2, 5000, 'the closed tab leaves');
    await join(third, 'room:crowded', undefined, 'again');
  });

  it('joins take from the socket’s limits.ephemeralPerSecond bucket: re-subscribing in a loop cannot flood the members', async () => {
    // One a second: ten subscribes sent at once are all handled well within the second it takes to refill.
    const h = await start({ limits: { ephemeralPerSecond: 1 } });
    const watcher = await connect(h, await token(h, 'watcher', ['room:*']));
    await join(watcher, 'room:busy');
    const busy = await connect(h, await token(h, 'busy', ['room:*']));
    for (let i = 0; i < 10; i++) busy.send({ op: 'subscribe', channel: 'room:busy', ref: `r${i}`, presence: { info: { i } } });
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => answerTo(busy, `r${i}`)));
    assert.deepEqual(
      answers.map((a) => a.op === 'subscribed' || a.code),
      [true, ...Array.from({ length: 9 }, () => 'too_many_requests')],
    );
    assert.match(answers[1].message, /presence joins per second \(limits\.ephemeralPerSecond\)/);
    // The watcher heard one join, not ten; the member is there with the info that got in.
    await until(() => watcher.ops('presence').filter((f) => f.action === 'join').length === 1, 5000, 'one join');
    const members = (await h.call('GET', '/v1/channels/room:busy/presence')).body.members;
    assert.deepEqual(members.find((m: any) => m.sub === 'busy')?.info, { i: 0 });
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await join(busy, 'room:busy', { i: 'later' }, 'later');
    assert.equal(watcher.ops('presence').filter((f) => f.action === 'join').length, 2);
  });

  it('joins into one channel take from its bucket, limits.presenceJoinsPerChannel: members re-joining in turn cannot flood the set', async () => {
    // Before, only each socket's own bucket held: 200 members re-joining in turn, each within it, cost members² frames.
    const h = await start({ limits: { presenceJoinsPerChannel: 2 } });
    const sockets = await Promise.all(['a', 'b', 'c', 'd'].map(async (sub) => connect(h, await token(h, sub, ['room:*']))));
    sockets.forEach((socket, i) => socket.send({ op: 'subscribe', channel: 'room:herd', ref: `h${i}`, presence: {} }));
    const answers = await Promise.all(sockets.map((socket, i) => answerTo(socket, `h${i}`)));
    const refused = answers.filter((a) => a.op !== 'subscribed');
    assert.equal(refused.length, 2, JSON.stringify(answers));
    for (const answer of refused) {
      assert.equal(answer.code, 'too_many_requests');
      assert.match(answer.message, /limits\.presenceJoinsPerChannel/);
    }
    assert.equal((await h.call('GET', '/v1/channels/room:herd/presence')).body.members.length, 2);
    // Another channel's set has a bucket of its own.
    const late = sockets[answers.indexOf(refused[0])]!;
    await join(late, 'room:calm');
    // A second later the channel takes joins again.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await join(late, 'room:herd', undefined, 'again');
    assert.equal((await h.call('GET', '/v1/channels/room:herd/presence')).body.members.length, 3);
  });

  it('an ephemeral publish reaches WebSocket and SSE subscribers without seq or id, is acknowledged, and is never logged', async () => {
    const h = await start();
    const publisher = await connect(h, await token(h, 'pub', ['feed'], ['feed']));
    const listener = await connect(h, await token(h, 'sub', ['feed']));
    listener.send({ op: 'subscribe', channel: 'feed', ref: 's' });
    await listener.next('subscribed');
    const sse = readStream(`${h.url}/v1/channels/feed/stream`, { headers: { authorization: `Bearer ${await token(h, 'sse', ['feed'])}` } }, (t) => t.includes('"seq":2'), 5000);
    await until(() => h.sse.size === 1, 5000, 'SSE stream open');

    await h.call('POST', '/v1/channels/feed/events', { body: { type: 'logged', data: 'one' } });
    publisher.send({ op: 'publish', channel: 'feed', type: 'typing', data: { who: 'pub' }, ref: 'e1', ephemeral: true });
    const ack = await answerTo(publisher, 'e1');
    assert.deepEqual(ack, { op: 'ack', ref: 'e1' });
    const overHttp = await h.call('POST', '/v1/channels/feed/events', { body: { type: 'cursor', data: { x: 1 }, ephemeral: true } });
    assert.equal(overHttp.status, 202);
    assert.equal(overHttp.body.ephemeral, true);
    assert.equal(overHttp.body.channel, 'feed');
    assert.equal(overHttp.body.seq, undefined);
    assert.equal(overHttp.body.id, undefined);
    await h.call('POST', '/v1/channels/feed/events', { body: { type: 'logged', data: 'two' } });

    const frames = await listener.next('ephemeral', 2);
    assert.deepEqual(
      frames.map((f) => [f.channel, f.type, f.data, 'seq' in f, 'id' in f]),
      [
        ['feed', 'typing', { who: 'pub' }, false, false],
        ['feed', 'cursor', { x: 1 }, false, false],
      ],
    );
    assert.ok(frames.every((f) => typeof f.time === 'string'));
    await listener.next('event', 2);

    // SSE: each ephemeral publish is a named event with no `id:` line, between the logged events' ids 1 and 2.
    const { text } = await sse;
    const blocks = text.split('\n\n').filter((b) => b.includes('data:'));
    const shape = blocks.map((b) => (b.includes('event: ephemeral') ? `ephemeral${b.includes('id:') ? '+id' : ''}` : (/^id: (\d+)/m.exec(b)?.[1] ?? b)));
    assert.deepEqual(shape, ['1', 'ephemeral', 'ephemeral', '2']);

    // Nothing of it is in the log.
    const log = await h.call('GET', '/v1/channels/feed/events?after=0');
    assert.deepEqual(log.body.events.map((e: any) => e.data), ['one', 'two']);
    assert.equal(log.body.head, 2);
  });

  it('refuses ephemeral publishes without publish rights, with an id or idempotency key, over the size bound, and past the rate limit', async () => {
    const h = await start({ limits: { ephemeralPerSecond: 3, ephemeralBytes: 100 } });
    const reader = await connect(h, await token(h, 'reader', ['feed']));
    reader.send({ op: 'publish', channel: 'feed', data: 1, ref: 'r', ephemeral: true });
    assert.equal((await answerTo(reader, 'r')).code, 'forbidden');
    reader.send({ op: 'publish', channel: 'feed', data: 1, ref: 'withid', id: 'x1', ephemeral: true });
    assert.equal((await answerTo(reader, 'withid')).code, 'bad_request');

    const withId = await h.call('POST', '/v1/channels/feed/events', { body: { data: 1, id: 'x', ephemeral: true } });
    assert.equal(withId.status, 400);
    const withKey = await h.call('POST', '/v1/channels/feed/events', { body: { data: 1, ephemeral: true }, headers: { 'idempotency-key': 'k' } });
    assert.equal(withKey.status, 400);
    const big = await h.call('POST', '/v1/channels/feed/events', { body: { data: 'x'.repeat(200), ephemeral: true } });
    assert.equal(big.status, 413);
    assert.equal(big.body.error.code, 'payload_too_large');

    const writer = await connect(h, await token(h, 'writer', ['feed'], ['feed']));
    for (let i = 0; i < 4; i++) writer.send({ op: 'publish', channel: 'feed', data: i, ref: `w${i}`, ephemeral: true });
    const answers = await Promise.all([0, 1, 2, 3].map((i) => answerTo(writer, `w${i}`)));
    assert.deepEqual(
      answers.map((a) => a.op === 'ack' || a.code),
      [true, true, true, 'too_many_requests'],
    );
    const results: number[] = [];
    for (let i = 0; i < 4; i++) results.push((await h.call('POST', '/v1/channels/feed/events', { body: { data: i, ephemeral: true } })).status);
    assert.deepEqual(results, [202, 202, 202, 429]);
    const limited = await h.call('POST', '/v1/channels/feed/events', { body: { data: 9, ephemeral: true } });
    assert.equal(limited.headers.get('retry-after'), '1');
    assert.equal((await h.call('GET', '/v1/channels/feed/events?after=0')).body.events.length, 0);
  });

  it('send delivers to one member of the presence set, with the sender named; not to others, not to absent clients, not without publish rights', async () => {
    const h = await start();
    const alice = await connect(h, await token(h, 'alice', ['room:*'], ['room:*']));
    const bob = await connect(h, await token(h, 'bob', ['room:*'], ['room:*']));
    const carol = await connect(h, await token(h, 'carol', ['room:*'], ['room:*']));
    const reader = await connect(h, await token(h, 'reader', ['room:*']));
    const a = await join(alice, 'room:dm');
    const b = await join(bob, 'room:dm');
    await join(carol, 'room:dm');
    await join(reader, 'room:dm');

    alice.send({ op: 'send', channel: 'room:dm', to: b.presence.client, data: { kind: 'offer', sdp: 'v=0' }, ref: 'd1' });
    assert.deepEqual(await answerTo(alice, 'd1'), { op: 'ack', ref: 'd1' });
    const [message] = await bob.next('message');
    assert.deepEqual(message, { op: 'message', channel: 'room:dm', from: { client: a.presence.client, sub: 'alice' }, data: { kind: 'offer', sdp: 'v=0' } });
    // Bob answers the client that wrote to him.
    bob.send({ op: 'send', channel: 'room:dm', to: message.from.client, data: 'answer', ref: 'd2' });
    const [reply] = await alice.next('message');
    assert.equal(reply.data, 'answer');
    assert.equal(carol.ops('message').length + reader.ops('message').length, 0, 'nobody else got either message');

    alice.send({ op: 'send', channel: 'room:dm', to: 'cl_nobodyhere00000000', data: 1, ref: 'd3' });
    const absent = await answerTo(alice, 'd3');
    assert.equal(absent.code, 'not_present');
    // The target must be in that channel's set, not another's.
    alice.send({ op: 'send', channel: 'room:other', to: b.presence.client, data: 1, ref: 'd4' });
    assert.equal((await answerTo(alice, 'd4')).code, 'not_present');
    reader.send({ op: 'send', channel: 'room:dm', to: a.presence.client, data: 1, ref: 'd5' });
    assert.equal((await answerTo(reader, 'd5')).code, 'forbidden');
    alice.send({ op: 'send', channel: 'room:dm', data: 1, ref: 'd6' });
    assert.equal((await answerTo(alice, 'd6')).code, 'bad_request');
    // After Bob leaves, he is no longer a target.
    bob.send({ op: 'unsubscribe', channel: 'room:dm', ref: 'bye' });
    await answerTo(bob, 'bye');
    alice.send({ op: 'send', channel: 'room:dm', to: b.presence.client, data: 1, ref: 'd7' });
    assert.equal((await answerTo(alice, 'd7')).code, 'not_present');
  });
});

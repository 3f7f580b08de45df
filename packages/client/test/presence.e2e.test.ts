// The SDK's presence sets, ephemeral publishes and direct messages, against a real server (issue #14).
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket as NodeWebSocket } from 'ws';
import { Herald, HeraldClientError, type DirectMessage, type EphemeralMessage, type HeraldOptions, type PresenceMember } from '../src/index.js';
import { startTestServer, until, type TestServer } from '../../server/test/helpers.js';

const WebSocket = NodeWebSocket as unknown as typeof globalThis.WebSocket;
const fast = { backoff: { baseMs: 50, maxMs: 200 }, heartbeatTimeoutMs: 3000 } satisfies Partial<HeraldOptions>;

describe('@herald/client: presence, ephemeral publishes and direct messages', () => {
  const clients: Herald[] = [];
  let h: TestServer;
  after(async () => {
    for (const c of clients) c.close();
    await h?.stop();
  });

  async function client(sub: string, options: Partial<HeraldOptions> = {}): Promise<Herald> {
    h ??= await startTestServer({ channels: { presence: ['room:*'] } });
    const minted = await h.call('POST', '/v1/tokens', { body: { sub, channels: ['room:*'], publish: ['room:*'], ttl: 600 } });
    const c = new Herald({ url: h.url, token: minted.body.token, WebSocket, ...fast, ...options });
    clients.push(c);
    return c;
  }

  it('presence(): the members on joining, join and leave events, send() to a member, and a clear error for an absent one', async () => {
    const alice = await client('alice');
    const bob = await client('bob');
    const aliceRoom = alice.presence('room:sdk', { info: { name: 'Alice' } });
    const synced: PresenceMember[][] = [];
    aliceRoom.on('members', (members) => synced.push(members));
    const joins: PresenceMember[] = [];
    const leaves: PresenceMember[] = [];
    aliceRoom.on('join', (m) => joins.push(m));
    aliceRoom.on('leave', (m) => leaves.push(m));
    await until(() => synced.length === 1, 5000, 'alice joined');
    assert.deepEqual(synced[0], [{ client: aliceRoom.client, sub: 'alice', info: { name: 'Alice' } }]);

    const bobRoom = bob.presence('room:sdk');
    await until(() => bobRoom.client !== undefined && joins.length === 1, 5000, 'bob joined, alice told');
    assert.deepEqual(joins[0], { client: bobRoom.client, sub: 'bob', info: null });
    assert.deepEqual(bobRoom.members.map((m) => m.sub).sort(), ['alice', 'bob']);
    assert.equal(aliceRoom.members.length, 2);

    const received: DirectMessage[] = [];
    bobRoom.on('message', (m) => received.push(m));
    await alice.send('room:sdk', bobRoom.client!, { kind: 'offer' });
    await until(() => received.length === 1, 5000, 'direct message');
    assert.deepEqual(received[0], { channel: 'room:sdk', from: { client: aliceRoom.client, sub: 'alice' }, data: { kind: 'offer' } });

    await assert.rejects(alice.send('room:sdk', 'cl_absent000000000000', 1), (error: unknown) => error instanceof HeraldClientError && error.code === 'not_present');

    bobRoom.leave();
    await until(() => leaves.length === 1, 5000, 'bob left');
    assert.equal(leaves[0]!.client, joins[0]!.client);
    assert.deepEqual(aliceRoom.members.map((m) => m.sub), ['alice']);
  });

  it('a join refused while the set is busy (too_many_requests) is tried again, not given up with an error', async () => {
    const busy = await startTestServer({ channels: { presence: ['room:*'] }, limits: { presenceJoinsPerChannel: 1 } });
    const herd: Herald[] = [];
    try {
      const errors: unknown[] = [];
      for (const sub of ['ann', 'ben', 'cat']) {
        const minted = await busy.call('POST', '/v1/tokens', { body: { sub, channels: ['room:*'], ttl: 600 } });
        const c = new Herald({ url: busy.url, token: minted.body.token, WebSocket, ...fast });
        c.on('error', (error) => errors.push(error));
        herd.push(c);
      }
      // One join a second: two of the three are refused at first.
      const rooms = herd.map((c) => c.presence('room:herd'));
      await until(() => rooms.every((room) => room.members.length === 3), 10_000, 'all three in the set');
      assert.deepEqual(errors, []);
    } finally {
      for (const c of herd) c.close();
      await busy.stop();
    }
  });

  it('publish(…, {ephemeral: true}) over the WebSocket and over HTTP reaches WebSocket and SSE subscribers, and moves no position', async () => {
    let posts = 0;
    const counting: typeof fetch = (input, init) => {
      if (init?.method === 'POST') posts += 1;
      return fetch(input, init);
    };
    const publisher = await client('publisher', { fetch: counting });
    const overWs = await client('ws-reader');
    const overSse = await client('sse-reader', { transports: ['sse'] });
    const seenWs: EphemeralMessage[] = [];
    const seenSse: EphemeralMessage[] = [];
    const events: unknown[] = [];
    const wsSub = overWs.subscribe('room:eph', { onEphemeral: (m) => seenWs.push(m) }, (e) => events.push(e.data));
    const sseSub = overSse.subscribe('room:eph', { onEphemeral: (m) => seenSse.push(m) }, () => {});
    await until(() => overWs.state === 'connected' && overSse.state === 'connected' && h.sse.size === 1, 5000, 'readers connected');
    await h.call('POST', '/v1/channels/room:eph/events', { body: { data: 'logged' } });
    await until(() => wsSub.position === 1 && sseSub.position === 1, 5000, 'logged event');

    // Not connected (no subscription): over HTTP.
    assert.deepEqual(await publisher.publish('room:eph', { type: 'cursor', data: { x: 1 } }, { ephemeral: true }), { channel: 'room:eph', ephemeral: true });
    // Connected on a WebSocket: over it.
    publisher.subscribe('room:other', () => {});
    await until(() => publisher.state === 'connected', 5000, 'publisher connected');
    await publisher.publish('room:eph', { type: 'typing', data: { who: 'p' } }, { ephemeral: true });
    assert.equal(posts, 1, 'the first went over HTTP, the second over the WebSocket');

    await until(() => seenWs.length === 2 && seenSse.length === 2, 5000, 'ephemeral messages on both transports');
    for (const seen of [seenWs, seenSse]) {
      assert.deepEqual(
        seen.map((m) => [m.channel, m.type, m.data]),
        [
          ['room:eph', 'cursor', { x: 1 }],
          ['room:eph', 'typing', { who: 'p' }],
        ],
      );
      assert.ok(seen.every((m) => !('seq' in m) && !('id' in m)));
    }
    assert.equal(wsSub.position, 1);
    assert.equal(sseSub.position, 1);
    assert.deepEqual(events, ['logged']);
  });

  for (const transport of ['sse', 'poll'] as const) {
    it(`presence() on a client already connected over ${transport} fails the set with unavailable, at once`, async () => {
      const reader = await client(`${transport}-member`, { transports: [transport] });
      reader.subscribe('room:other', () => {});
      await until(() => reader.state === 'connected', 5000, `connected over ${transport}`);
      const room = reader.presence('room:late');
      const errors: HeraldClientError[] = [];
      room.on('error', (error) => errors.push(error));
      await until(() => errors.length > 0, 2000, 'the set to fail');
      assert.equal(errors[0]!.code, 'unavailable');
      assert.match(errors[0]!.message, new RegExp(`connected over ${transport}`));
    });
  }

  it('send() needs a WebSocket connection', async () => {
    const idle = await client('idle');
    await assert.rejects(idle.send('room:sdk', 'cl_x', 1), (error: unknown) => error instanceof HeraldClientError && error.code === 'unavailable');
  });
});

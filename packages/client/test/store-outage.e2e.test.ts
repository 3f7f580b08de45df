// The SDK on WebSocket against a server whose PostgreSQL store is unreachable for a while (a restart, a failover):
// a subscribe the server refuses with store_unavailable is sent again, and the channel flows once the store is back.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Herald, type HeraldClientError } from '../src/index.js';
import { ADMIN_KEY, startTestServer, until, type TestServer } from '../../server/test/helpers.js';
import { createTestDatabase, type TestDatabase } from '../../server/test/support/postgres.js';
import { faultyLinkTo, type FaultyLink } from '../../server/test/support/faulty-link.js';

describe('@herald/client while the server cannot reach its store', () => {
  let db: TestDatabase;
  let h: TestServer;
  let link: FaultyLink;

  before(async () => {
    db = await createTestDatabase('herald_sdk_store_outage');
    link = await faultyLinkTo(db.url);
    h = await startTestServer({ store: { url: link.url } });
  });

  after(async () => {
    await h?.stop();
    await link?.close();
    await db?.drop();
  });

  it('websocket: an API key the server cannot check while its store is down is no refusal: the client waits, then connects', async () => {
    // Never used before, so the server must read its hash from the store.
    const key = (await h.call('POST', '/v1/keys', { body: { name: 'outage', scopes: ['subscribe'], channels: ['checked'] } })).body.key as string;
    link.cut();
    const errors: HeraldClientError[] = [];
    const seen: unknown[] = [];
    const client = new Herald({ url: h.url, token: key, transports: ['websocket'], backoff: { baseMs: 50, maxMs: 300 } });
    try {
      client.subscribe('checked', { onError: (error) => errors.push(error) }, (event) => seen.push(event.data));
      client.on('error', (error) => errors.push(error));
      await new Promise((resolve) => setTimeout(resolve, 2000));
      // Before, the socket was closed with 1008 (invalid credential), and a fixed key ended the client for good.
      assert.deepEqual(errors, []);
      assert.notEqual(client.state, 'connected');
      link.restore();
      await until(() => client.state === 'connected', 15_000, 'connected once the store is back');
      await until(async () => (await h.call('POST', '/v1/channels/checked/events', { body: { data: 'checked' } })).status === 201, 10_000, 'a publish');
      await until(() => seen.length > 0, 10_000, 'the event');
      assert.deepEqual(errors, []);
    } finally {
      client.close();
    }
  });

  it('websocket: a subscribe refused with store_unavailable is tried again, and the events published once the store is back arrive', async () => {
    link.cut();
    const errors: HeraldClientError[] = [];
    const seen: unknown[] = [];
    const client = new Herald({ url: h.url, token: ADMIN_KEY, transports: ['websocket'], backoff: { baseMs: 50, maxMs: 300 } });
    try {
      client.subscribe('outage', { after: 0, onError: (error) => errors.push(error) }, (event) => seen.push(event.data));
      // The store is down: the subscribe is refused (more than once, as it is tried again).
      await new Promise((resolve) => setTimeout(resolve, 2500));
      assert.deepEqual(seen, []);
      link.restore();
      await until(async () => (await h.call('POST', '/v1/channels/outage/events', { body: { data: 'after' } })).status === 201, 10_000, 'the store back');
      await until(() => seen.length > 0, 15_000, 'the event published after the outage');
      assert.deepEqual(seen, ['after']);
      assert.equal(client.state, 'connected');
      assert.deepEqual(errors, [], 'a refusal that passes is not an error of the subscription');
    } finally {
      client.close();
    }
  });
});

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

// A COMMIT whose answer is lost, through a real node on PostgreSQL (a relay passes the COMMIT and drops its answer):
// the publisher is told the outcome is unknown, and the node, finding the events committed once the store answers,
// hands them to its subscribers then, not with the channel's next event.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';
import { faultyLinkTo, type FaultyLink } from './support/faulty-link.js';
import { HeraldNode, SseFollower, until } from './support/cluster.js';

describe('a publish whose COMMIT answer is lost', () => {
  let db: TestDatabase;
  let link: FaultyLink;
  let node: HeraldNode;

  before(async () => {
    db = await createTestDatabase('herald_commit_outcome');
    link = await faultyLinkTo(db.url);
    node = await HeraldNode.spawn({ id: 'lonely', store: link.url, env: { HERALD_STORE_QUERY_TIMEOUT: '2' } });
  });

  after(async () => {
    await node?.stop();
    await link?.close();
    await db?.drop();
  });

  it('is answered 503 with outcome unknown, and its subscribers get the event once it is found committed', async () => {
    const sse = new SseFollower(node, 'ledger', (await node.call('POST', '/v1/keys', { body: { name: 's', scopes: ['subscribe'], channels: ['*'] } })).body.key);
    await sse.opened;
    try {
      assert.equal((await node.publish('ledger', { n: 1 })).status, 201);
      await until(() => sse.last === 1, 5000, 'the first event');

      link.muteAfter('COMMIT');
      const lost = await node.call('POST', '/v1/channels/ledger/events', { body: { data: { n: 2 } }, headers: { 'idempotency-key': 'k-ledger-2' } });
      assert.equal(lost.status, 503, JSON.stringify(lost.body));
      assert.equal(lost.body.error.code, 'store_unavailable');
      assert.deepEqual(lost.body.error.details, { outcome: 'unknown' });

      await until(() => sse.last === 2, 10_000, 'the committed event, on the live stream, with no later publish');
      assert.deepEqual(sse.events.map((e) => e.data.n), [1, 2]);
      // The key's retry answers with it: written once.
      const retried = await node.call('POST', '/v1/channels/ledger/events', { body: { data: { n: 2 } }, headers: { 'idempotency-key': 'k-ledger-2' } });
      assert.equal(retried.status, 200, JSON.stringify(retried.body));
      assert.equal(retried.body.seq, 2);
      assert.equal((await node.readAll('ledger')).length, 2);
    } finally {
      sse.close();
    }
  });
});

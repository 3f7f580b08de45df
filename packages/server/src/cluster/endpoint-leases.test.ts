import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openSqliteStorage } from '../store/sqlite/open.js';
import { EndpointLeases } from './endpoint-leases.js';
import { LeaseKeeper } from './leases.js';

const TTL = 300;

test('a node logs once when it takes an endpoint over and once when it finds another node sends it', async () => {
  const storage = await openSqliteStorage({ dataDir: ':memory:' });
  const lines = { a: [] as string[], b: [] as string[] };
  const node = (id: 'a' | 'b') =>
    new EndpointLeases(new LeaseKeeper(storage.cluster, `node-${id}`, TTL), { liveCount: 1 }, {
      info: (fields, message) => void lines[id].push(`${message} ${(fields as { endpoint: string }).endpoint}`),
    });
  const [a, b] = [node('a'), node('b')];
  try {
    assert.equal(await a.owns('ep_1', 1), true);
    assert.equal(await a.owns('ep_1', 1), true);
    assert.equal(await b.owns('ep_1', 1), false);
    assert.deepEqual(lines, { a: ['endpoint lease taken: this node now sends its deliveries ep_1'], b: [] });

    // A stops renewing (paused, say): past the lease's lifetime B takes it, and A learns at its next check.
    await new Promise((resolve) => setTimeout(resolve, TTL + 50));
    assert.equal(await b.owns('ep_1', 1), true);
    assert.equal(await a.owns('ep_1', 1), false);
    assert.equal(await a.owns('ep_1', 1), false);
    assert.deepEqual(lines, {
      a: ['endpoint lease taken: this node now sends its deliveries ep_1', 'endpoint lease given up ep_1'],
      b: ['endpoint lease taken: this node now sends its deliveries ep_1'],
    });

    // Deleted: B hands the lease back at once, and A may take it (were the id ever used again) without waiting.
    b.forget('ep_1');
    await new Promise((resolve) => setTimeout(resolve, TTL / 4 + 10)); // A's last refusal is asked again after a quarter
    assert.equal(await a.owns('ep_1', 1), true);
    assert.equal(lines.b.length, 1, 'forgetting a deleted endpoint is not a hand-over to log');
  } finally {
    await storage.close();
  }
});

import { it } from 'node:test';
import assert from 'node:assert/strict';
import { openSqliteStorage } from '../store/sqlite/open.js';
import type { BusState, PeerView } from '../bus/types.js';
import { until } from '../../test/support/wait.js';
import { HEARTBEAT_MS, NodeRegistry } from './nodes.js';

const outcomes = { failed: (error: unknown) => assert.fail(String(error)), succeeded: () => {} };

it("tells the bus when another node's link is down, when it is back, and when a node stops beating", async () => {
  const storage = await openSqliteStorage({ dataDir: ':memory:' });
  let busOfA: BusState = 'up';
  const seenByB: PeerView[] = [];
  const a = new NodeRegistry(storage.cluster, 'a', '0.1.0', () => ({}), outcomes, () => busOfA);
  const b = new NodeRegistry(storage.cluster, 'b', '0.1.0', () => ({}), outcomes, () => 'up', (view) => seenByB.push(view));
  try {
    await a.start();
    await b.start();
    assert.deepEqual(seenByB, [{ peersDown: false, gone: false }], 'its own beat at start: a is up, nobody left');
    assert.equal(b.liveCount, 2);

    busOfA = 'down';
    await until(() => seenByB.at(-1)!.peersDown, 3 * HEARTBEAT_MS, "a's heartbeat saying its bus is down, seen by b");
    assert.deepEqual((await b.live()).map((n) => [n.id, n.bus]), [['a', 'down'], ['b', 'up']]);
    busOfA = 'up';
    await until(() => !seenByB.at(-1)!.peersDown, 3 * HEARTBEAT_MS, 'a back up');

    await a.stop();
    await until(() => seenByB.at(-1)!.gone, 2 * HEARTBEAT_MS, 'a gone');
    assert.deepEqual(seenByB.at(-1), { peersDown: false, gone: true });
    assert.ok(
      seenByB.slice(0, -1).every((view) => !view.gone),
      'gone only once a stopped',
    );
  } finally {
    await a.stop();
    await b.stop();
    await storage.close();
  }
});

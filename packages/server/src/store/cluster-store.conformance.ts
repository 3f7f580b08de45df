import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { NodeRecord } from './types.js';
import { useStorage, type OpenStorage } from './storage-harness.js';

const TTL = 10_000;

function node(id: string, lastSeen: number, extra: Partial<NodeRecord> = {}): NodeRecord {
  return { id, startedAt: 1000, lastSeen, connections: { ws: 3, sse: 1, long_poll: 0 }, version: '0.1.0', bus: 'up', adminKey: 'store', ...extra };
}

/** The contract of ClusterStore (leases and heartbeats), for every backend. */
export function describeClusterStoreConformance(name: string, open: OpenStorage): void {
  describe(`ClusterStore conformance: ${name}`, () => {
    const storage = useStorage(open);
    const cluster = () => storage().cluster;

    it('gives a lease to one holder at a time', async () => {
      assert.equal(await cluster().acquireLease('endpoint:ep_1', 'node-a', TTL, 1000), true);
      assert.equal(await cluster().acquireLease('endpoint:ep_1', 'node-b', TTL, 2000), false);
      assert.equal(await cluster().acquireLease('endpoint:ep_2', 'node-b', TTL, 2000), true, 'leases are independent');
      assert.deepEqual(await cluster().leases('endpoint:'), [
        { name: 'endpoint:ep_1', holder: 'node-a', expiresAt: 1000 + TTL },
        { name: 'endpoint:ep_2', holder: 'node-b', expiresAt: 2000 + TTL },
      ]);
    });

    it('lets the holder renew, and no one else, until it expires', async () => {
      await cluster().acquireLease('dispatcher', 'node-a', TTL, 1000);
      assert.equal(await cluster().acquireLease('dispatcher', 'node-a', TTL, 8000), true);
      assert.deepEqual(await cluster().leases('dispatcher'), [{ name: 'dispatcher', holder: 'node-a', expiresAt: 8000 + TTL }]);
      // Past the first expiry but within the renewed one: still node-a's.
      assert.equal(await cluster().acquireLease('dispatcher', 'node-b', TTL, 1000 + TTL + 1), false);
      assert.equal(await cluster().acquireLease('dispatcher', 'node-b', TTL, 8000 + TTL), false, 'not expired at its last instant');
      assert.equal(await cluster().acquireLease('dispatcher', 'node-b', TTL, 8000 + TTL + 1), true, 'taken over once expired');
      assert.equal(await cluster().acquireLease('dispatcher', 'node-a', TTL, 8000 + TTL + 2), false, 'the old holder lost it');
      assert.deepEqual((await cluster().leases('dispatcher')).map((l) => l.holder), ['node-b']);
    });

    it('releases a lease for its holder only', async () => {
      await cluster().acquireLease('trimmer', 'node-a', TTL, 1000);
      await cluster().releaseLease('trimmer', 'node-b');
      assert.equal(await cluster().acquireLease('trimmer', 'node-b', TTL, 2000), false, 'a non-holder cannot release it');
      await cluster().releaseLease('trimmer', 'node-a');
      assert.deepEqual(await cluster().leases('trimmer'), []);
      assert.equal(await cluster().acquireLease('trimmer', 'node-b', TTL, 2000), true, 'free at once after release');
    });

    it('lists leases by literal prefix, expired ones too', async () => {
      await cluster().acquireLease('endpoint:b', 'n', 1, 1000);
      await cluster().acquireLease('endpoint:a', 'n', TTL, 1000);
      await cluster().acquireLease('endpoints', 'n', TTL, 1000);
      await cluster().acquireLease('end%', 'n', TTL, 1000);
      await cluster().acquireLease('dispatcher', 'n', TTL, 1000);
      assert.deepEqual((await cluster().leases('endpoint:')).map((l) => l.name), ['endpoint:a', 'endpoint:b']);
      assert.deepEqual((await cluster().leases('end%')).map((l) => l.name), ['end%'], '% is not a wildcard');
      assert.deepEqual((await cluster().leases('endpoint_')).map((l) => l.name), [], '_ is not a wildcard');
      assert.equal((await cluster().leases('')).length, 5);
    });

    it('gives a raced lease to exactly one contender', async () => {
      const holders = Array.from({ length: 12 }, (_, i) => `node-${i}`);
      const won = await Promise.all(holders.map((h) => cluster().acquireLease('race', h, TTL, 1000)));
      assert.equal(won.filter(Boolean).length, 1);
      assert.deepEqual((await cluster().leases('race')).map((l) => l.holder), [holders[won.indexOf(true)]]);
    });

    it('keeps the latest heartbeat of each node and lists the live ones', async () => {
      await cluster().heartbeat(node('node-b', 1000));
      await cluster().heartbeat(node('node-a', 5000));
      await cluster().heartbeat(node('node-b', 6000, { connections: { ws: 9 }, version: '0.2.0', bus: 'down', adminKey: 'config' }));
      assert.deepEqual(await cluster().nodes(6000), [node('node-b', 6000, { connections: { ws: 9 }, version: '0.2.0', bus: 'down', adminKey: 'config' })]);
      assert.deepEqual((await cluster().nodes(5000)).map((n) => [n.id, n.bus]), [['node-a', 'up'], ['node-b', 'down']]);
      await cluster().removeNode('node-b');
      await cluster().removeNode('never-seen');
      assert.deepEqual(await cluster().nodes(0), [node('node-a', 5000)]);
    });
  });
}

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openSqliteStorage } from '../store/sqlite/open.js';
import type { ClusterStore } from '../store/types.js';
import { LeaseKeeper, SingletonRunner } from './leases.js';

const TTL = 3000;

/** The real SQLite cluster store, with its acquireLease calls counted. */
async function countingStore(): Promise<{ store: ClusterStore; asked: () => number; close: () => Promise<void> }> {
  const storage = await openSqliteStorage({ dataDir: ':memory:' });
  let asked = 0;
  const real = storage.cluster;
  const store = Object.create(real) as ClusterStore;
  store.acquireLease = (...args) => {
    asked += 1;
    return real.acquireLease(...args);
  };
  return { store, asked: () => asked, close: () => storage.close() };
}

test('a held lease is renewed only once a third of its lifetime has passed', async () => {
  const { store, asked, close } = await countingStore();
  const a = new LeaseKeeper(store, 'node-a', TTL);
  assert.equal(await a.hold('x', 0), true);
  assert.equal(await a.hold('x', 999), true);
  assert.equal(asked(), 1, 'held with more than 2/3 of its lifetime left: not asked');
  assert.equal(await a.hold('x', 1001), true);
  assert.equal(asked(), 2, 'renewed');
  await close();
});

test('a lease another node holds is asked for again only after a third of the lifetime, and taken once it expires', async () => {
  const { store, asked, close } = await countingStore();
  const a = new LeaseKeeper(store, 'node-a', TTL);
  const b = new LeaseKeeper(store, 'node-b', TTL);
  assert.equal(await a.hold('x', 0), true);
  assert.equal(await b.hold('x', 10), false);
  for (let now = 20; now < 760; now += 100) assert.equal(await b.hold('x', now), false);
  assert.equal(asked(), 2, 'refused once, then not asked on every check');
  assert.equal(await b.hold('x', 761), false, 'asked again: a still holds it');
  assert.equal(asked(), 3);
  // A SingletonRunner asks every third of the lifetime: each of its ticks reaches the store.
  assert.equal(await b.hold('x', 761 + Math.floor(TTL / 3)), false);
  assert.equal(asked(), 4);
  // a stops renewing (it died): its lease ends at 3000, and b's next question after that takes it.
  assert.equal(await b.hold('x', 2500), false);
  assert.equal(await b.hold('x', 3300), true);
  assert.equal(b.isHeld('x', 3300), true);
  assert.equal(await a.hold('x', 3400), false, 'the old holder finds it gone');
  await close();
});

test('a singleton whose start fails is undone and started again at the next tick', async () => {
  const { store, close } = await countingStore();
  const calls: string[] = [];
  let failures = 1;
  const runner = new SingletonRunner(
    new LeaseKeeper(store, 'node-a', 300),
    'job',
    {
      start: async () => {
        calls.push('start');
        if (failures-- > 0) throw new Error('store down');
      },
      stop: async () => {
        calls.push('stop');
      },
    },
    (error) => calls.push(`error: ${(error as Error).message}`),
  );
  await runner.start();
  assert.deepEqual(calls, ['start', 'stop', 'error: store down'], 'the half-done start is undone');
  assert.equal(runner.active, false);
  const deadline = Date.now() + 3000;
  while (!runner.active) {
    assert.ok(Date.now() < deadline, `not started again: ${calls.join(', ')}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.deepEqual(calls, ['start', 'stop', 'error: store down', 'start']);
  await runner.stop();
  await close();
});

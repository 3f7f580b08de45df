import { it } from 'node:test';
import assert from 'node:assert/strict';
import type { HeraldEvent } from '@herald/protocol';
import type { EventStore } from '../store/types.js';
import { openSqliteStorage } from '../store/sqlite/open.js';
import { LogFollower } from './log-follower.js';

it('fills a hole with one read of the log, in order, before handing on what came after it', async () => {
  const storage = await openSqliteStorage({ dataDir: ':memory:' });
  try {
    const { events } = await storage.events.append({
      events: Array.from({ length: 6 }, (_, i) => ({ channel: 'c', id: `e${i}`, type: 't', data: i, time: Date.now() })),
    });
    let reads = 0;
    const store = storage.events;
    const read = store.read.bind(store);
    store.read = (...args) => {
      reads += 1;
      return read(...args);
    };
    const handed: HeraldEvent[][] = [];
    const follower = new LogFollower(store, 'channels', (_channel, list) => handed.push([...list]));
    await follower.track('c');
    // Following from the head (6): appends 7 and 8 happen on "other nodes", and 8's message arrives first.
    const more = await storage.events.append({
      events: [7, 8, 9].map((n) => ({ channel: 'c', id: `e${n}`, type: 't', data: n, time: Date.now() })),
    });
    const [seven, eight, nine] = more.events as [HeraldEvent, HeraldEvent, HeraldEvent];
    follower.accept('c', [eight]);
    follower.accept('c', [seven]);
    follower.accept('c', [nine]);
    const deadline = Date.now() + 2000;
    while (handed.flat().length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(handed.flat().map((e) => e.seq), [7, 8, 9], 'every event once, in seq order');
    assert.equal(reads, 1, 'one read of the log for the hole, whatever the number of listeners');
    assert.equal(events.length, 6);
  } finally {
    await storage.close();
  }
});

/** An in-memory SQLite log for one test, closed after it. */
async function withLog(run: (store: EventStore) => Promise<void>): Promise<void> {
  const storage = await openSqliteStorage({ dataDir: ':memory:' });
  try {
    await run(storage.events);
  } finally {
    await storage.close();
  }
}

let appended = 0;
/** Appends `count` events to `channel`, each with an id of its own, and returns them. */
async function append(store: EventStore, channel: string, count = 1): Promise<HeraldEvent[]> {
  const events = Array.from({ length: count }, () => ({ channel, id: `a${(appended += 1)}`, type: 't', data: appended, time: Date.now() }));
  return (await store.append({ events })).events;
}

/** Lets the promise work queued now run: `n` turns of the event loop. */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

/** A listener that records the seqs it is handed, per channel. */
function recorder(): { handed: Map<string, number[]>; emit: (channel: string, events: readonly HeraldEvent[]) => void } {
  const handed = new Map<string, number[]>();
  return { handed, emit: (channel, events) => handed.set(channel, [...(handed.get(channel) ?? []), ...events.map((e) => e.seq)]) };
}

it('with listener positions, the whole-log follower remembers a bounded number of channels and reads forgotten ones on from the listener', () =>
  withLog(async (store) => {
    // The listener: what it was handed, per channel, is its position (as the dispatcher's cursor is).
    const { handed, emit } = recorder();
    const asked: string[] = [];
    const positions = {
      available: () => true,
      of: async (channel: string) => {
        asked.push(channel);
        return handed.get(channel)?.at(-1) ?? 0;
      },
    };
    const follower = new LogFollower(store, 'all', emit, positions, 3);
    await follower.start();
    for (let c = 0; c < 10; c++) {
      follower.accept(`c${c}`, await append(store, `c${c}`));
      await turns(20);
    }
    assert.equal(follower.followedChannels, 3, 'marks of 3 channels at most, not of every channel written');
    assert.deepEqual([...handed.values()], Array.from({ length: 10 }, () => [1]));

    // c0 was forgotten: its seq 2 never arrives on the wire, seq 3 does. Where the listener stands (1) shows the hole.
    const [, three] = await append(store, 'c0', 2);
    asked.length = 0;
    follower.accept('c0', [three!]);
    await turns(20);
    assert.deepEqual(asked, ['c0'], 'the position of the forgotten channel is asked for, once');
    assert.deepEqual(handed.get('c0'), [1, 2, 3], 'the hole is read from the log, nothing repeated');

    // A late copy of an event the listener had, on a forgotten channel, is not handed on again.
    const [late] = (await store.read('c1', 0, 1)).events;
    follower.accept('c1', [late!]);
    await turns(20);
    assert.deepEqual(handed.get('c1'), [1]);

    // A catch-up pass (after a link outage) reads forgotten channels on from the listener's position, not from 0.
    await append(store, 'c5', 2);
    await follower.catchUp();
    await turns(20);
    assert.deepEqual(handed.get('c5'), [1, 2, 3]);
    for (let c = 0; c < 10; c++) if (c !== 0 && c !== 5) assert.deepEqual(handed.get(`c${c}`), [1], `c${c}: nothing repeated`);
    assert.ok(follower.followedChannels <= 3);
  }));

for (const positions of [false, true]) {
  it(`hands on every event when a catch-up page waits behind a live hole fill (${positions ? 'with' : 'without'} listener positions)`, () =>
    withLog(async (store) => {
      const handed: number[] = [];
      const listener = { available: () => true, of: async () => handed.at(-1) ?? 0 };
      const follower = new LogFollower(store, 'all', (_c, list) => handed.push(...list.map((e) => e.seq)), positions ? listener : undefined, 100);
      await follower.start();
      follower.accept('x', await append(store, 'x', 5));
      await turns(1);
      const later = await append(store, 'x', 5);
      // Reads wait until the test lets them go, so the catch-up's page can come back before the fill's.
      const read = store.read.bind(store);
      const gates: Array<() => void> = [];
      store.read = async (...args) => {
        await new Promise<void>((r) => gates.push(r));
        return read(...args);
      };
      const pass = follower.catchUp(['x']);
      while (gates.length < 1) await turns(1);
      // Seq 7 arrives on the wire: a hole at 6, filled with a read of the log.
      follower.accept('x', [later[1]!]);
      while (gates.length < 2) await turns(1);
      gates[0]!(); // the catch-up's page 6..10 comes back first, and waits behind the fill
      await turns(20);
      gates[1]!();
      await pass;
      await turns(50);
      store.read = read;
      follower.accept('x', await append(store, 'x'));
      await turns(50);
      assert.deepEqual(handed, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    }));
}

it('a catch-up pass goes on past a channel whose position cannot be read, then fails so the bus runs it again', () =>
  withLog(async (store) => {
    const { handed, emit } = recorder();
    let failing = true;
    const positions = {
      available: () => true,
      of: async (channel: string) => {
        if (channel === 'bad' && failing) throw new Error('the store is down');
        return handed.get(channel)?.at(-1) ?? 0;
      },
    };
    const follower = new LogFollower(store, 'all', emit, positions, 10);
    await follower.start();
    for (const channel of ['a', 'bad', 'b']) await append(store, channel);
    await assert.rejects(follower.catchUp(), /could not say where they stand in bad/);
    assert.deepEqual([handed.get('a'), handed.get('b'), handed.get('bad')], [[1], [1], undefined], 'the other channels were caught up');
    failing = false;
    await follower.catchUp();
    assert.deepEqual(handed.get('bad'), [1], 'the next pass finds it');
    assert.deepEqual([handed.get('a'), handed.get('b')], [[1], [1]], 'nothing repeated');
  }));

import { it } from 'node:test';
import assert from 'node:assert/strict';
import type { HeraldEvent } from '@herald/protocol';
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

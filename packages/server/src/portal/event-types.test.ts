import { it } from 'node:test';
import assert from 'node:assert/strict';
import { openSqliteStorage } from '../store/sqlite/open.js';
import { SEEN_TYPES_LIMITS, seenEventTypes } from './event-types.js';

it('finds the types of matching channels by their literal prefix, and looks at a bounded number of names', async () => {
  const storage = await openSqliteStorage({ dataDir: ':memory:' });
  try {
    const store = storage.events;
    const append = (channel: string, type: string) => store.append({ events: [{ channel, id: `${channel}-${type}`, type, data: 1, time: Date.now() }] });
    for (let i = 0; i < 50; i++) await append(`globex:${String(i).padStart(2, '0')}`, 'globex.thing');
    await append('acme:orders', 'order.created');
    await append('acme:users', 'user.signup');
    await append('zeta:orders', 'zeta.order');
    let namesRead = 0;
    const channels = store.channels.bind(store);
    store.channels = async (page) => {
      const names = await channels(page);
      namesRead += names.length;
      return names;
    };
    assert.deepEqual(await seenEventTypes(store, ['acme:*']), ['order.created', 'user.signup']);
    assert.equal(namesRead, 2, "only the names under the pattern's prefix are read");

    // A pattern that starts with `*` can only be matched by looking at names: that look is bounded. In byte order the
    // first 20 names hold acme:orders, and zeta:orders comes after the 50 globex channels.
    namesRead = 0;
    assert.deepEqual(await seenEventTypes(store, ['*:orders'], { ...SEEN_TYPES_LIMITS, namesScanned: 20 }), ['order.created']);
    assert.ok(namesRead <= 40, `read ${namesRead} names`);
    assert.deepEqual(await seenEventTypes(store, ['*:orders']), ['order.created', 'zeta.order']);
    // A broad pattern beside a narrow one does not use up the narrow one's look.
    assert.deepEqual(await seenEventTypes(store, ['*:audit', 'zeta:*'], { ...SEEN_TYPES_LIMITS, namesScanned: 20 }), ['zeta.order']);
  } finally {
    await storage.close();
  }
});

it('reads a bounded number of bytes however large the events are, and still sees every channel', async () => {
  const storage = await openSqliteStorage({ dataDir: ':memory:' });
  try {
    const store = storage.events;
    const big = 'x'.repeat(8 * 1024);
    // 6 channels of 200 events of 8 KiB: 9.6 MB that a look used to load and parse in full, on every request.
    for (let c = 0; c < 6; c++) {
      const events = Array.from({ length: 200 }, (_, i) => ({ channel: `acme:${c}`, id: `acme-${c}-${i}`, type: `type.${c}`, data: { big }, time: Date.now() }));
      await store.append({ events });
    }
    let bytesRead = 0;
    const read = store.read.bind(store);
    store.read = async (...args) => {
      const result = await read(...args);
      for (const event of result.events) bytesRead += JSON.stringify(event.data).length;
      return result;
    };
    assert.deepEqual(await seenEventTypes(store, ['acme:*']), ['type.0', 'type.1', 'type.2', 'type.3', 'type.4', 'type.5']);
    assert.ok(bytesRead <= SEEN_TYPES_LIMITS.bytes + big.length + 64, `read ${bytesRead} bytes`);

    // One event over the whole budget: read once, and then no more channels are loaded.
    bytesRead = 0;
    assert.deepEqual(await seenEventTypes(store, ['acme:*'], { ...SEEN_TYPES_LIMITS, bytes: 1000 }), ['type.0']);
    assert.ok(bytesRead <= big.length + 64, `read ${bytesRead} bytes`);
  } finally {
    await storage.close();
  }
});

it('within the byte budget, reads the newest events of each channel first: a type sent lately is offered', async () => {
  const storage = await openSqliteStorage({ dataDir: ':memory:' });
  try {
    const store = storage.events;
    const big = 'x'.repeat(8 * 1024);
    // 200 events of 8 KiB (1.6 MB, over the 1 MiB budget): the oldest of an old type, the newest of a new one.
    const events = Array.from({ length: 200 }, (_, i) => ({ channel: 'acme:orders', id: `o-${i}`, type: i < 190 ? 'order.legacy' : 'order.v2', data: { big }, time: Date.now() }));
    await store.append({ events });
    assert.ok((await seenEventTypes(store, ['acme:*'])).includes('order.v2'), 'the type of the latest events');
    // With a budget of about one event, that one is the newest.
    assert.deepEqual(await seenEventTypes(store, ['acme:*'], { ...SEEN_TYPES_LIMITS, bytes: 1000 }), ['order.v2']);
  } finally {
    await storage.close();
  }
});

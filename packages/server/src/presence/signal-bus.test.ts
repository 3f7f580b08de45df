// The signal bus over each real transport: a message reaches the other node's listeners of its key only, the
// sender's own listeners once (not again from the wire's echo), and the all-topic's whole-log consumers never.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { HeraldError } from '@herald/protocol';
import { startRedis, type RedisProcess } from '../../test/support/redis.js';
import { createTestDatabase, type TestDatabase } from '../../test/support/postgres.js';
import { until } from '../../test/support/wait.js';
import { transportFor } from '../bus/create.js';
import { SignalBus } from './signal-bus.js';

let redis: RedisProcess;
let db: TestDatabase;
before(async () => {
  redis = await startRedis();
  db = await createTestDatabase('herald_signals');
});
after(async () => {
  await redis?.stop();
  await db?.drop();
});

for (const kind of ['Redis', 'PostgreSQL'] as const) {
  describe(`SignalBus over ${kind}`, () => {
    it('delivers to the listeners of the key on every node, once each, and nothing to the all-topic', async () => {
      const url = kind === 'Redis' ? redis.url : db.url;
      const errors: unknown[] = [];
      const [a, b] = await Promise.all([SignalBus.create(url, (e) => errors.push(e)), SignalBus.create(url, (e) => errors.push(e))]);
      // A whole-log consumer on the same server, as the dispatcher's bus would be.
      const everything: string[] = [];
      const all = transportFor(url);
      await all.start({ message: (_scope, message) => everything.push(message), state: () => {}, error: () => {} }, 5000);
      await all.subscribe('all');
      try {
        const gotA: unknown[] = [];
        const gotB: unknown[] = [];
        const gotOther: unknown[] = [];
        a.subscribe('#room', (body) => gotA.push(body));
        b.subscribe('#room', (body) => gotB.push(body));
        b.subscribe('#elsewhere', (body) => gotOther.push(body));
        await until(() => a.state === 'up' && b.state === 'up', 20_000, 'both up');
        // A subscription takes effect on the server asynchronously: send until B hears one.
        await until(() => {
          if (gotB.length === 0) void a.publish('#room', { n: 'probe' });
          return gotB.length > 0;
        }, 20_000, 'B hears A');
        gotA.length = 0;
        gotB.length = 0;
        await a.publish('#room', { n: 1 });
        await b.publish('#room', { n: 2 });
        // Then a marker from each: a node's subscriber gets the wire's messages in the server's order, so once
        // each node has the other's marker, an echo of its own message would have arrived before it.
        await a.publish('#room', { n: 'a-done' });
        await b.publish('#room', { n: 'b-done' });
        await until(() => gotA.some((m) => (m as { n: unknown }).n === 'b-done') && gotB.some((m) => (m as { n: unknown }).n === 'a-done'), 20_000, 'markers');
        // Between nodes there is no order; each node got each numbered message once (probes and markers aside).
        const sorted = (got: unknown[]) => got.map((m) => (m as { n: unknown }).n).filter((n) => typeof n === 'number').sort();
        assert.deepEqual(sorted(gotA), [1, 2]);
        assert.deepEqual(sorted(gotB), [1, 2]);
        assert.deepEqual(gotOther, []);
        assert.deepEqual(everything, []);
        if (kind === 'PostgreSQL') {
          // NOTIFY carries under 8000 bytes: a bigger message is refused before anyone gets it.
          await assert.rejects(a.publish('#room', { big: 'x'.repeat(9000) }), (e: unknown) => e instanceof HeraldError && e.code === 'payload_too_large');
          assert.deepEqual(sorted(gotA), [1, 2]);
        }
        assert.deepEqual(errors, []);
      } finally {
        await Promise.all([a.close(), b.close(), all.close()]);
      }
    });
  });
}

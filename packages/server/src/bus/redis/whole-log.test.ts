// How the cluster bus reads the log for a whole-log listener that gives its position (the dispatcher), over a real
// Redis that the tests stop and start: its passes neither hold up a channel's subscribers nor give up after a failure.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { HeraldEvent } from '@herald/protocol';
import { startRedis, type RedisProcess } from '../../../test/support/redis.js';
import { until } from '../../../test/support/wait.js';
import { openSqliteStorage } from '../../store/sqlite/open.js';
import type { Storage } from '../../store/types.js';
import { createBus } from '../create.js';
import type { Bus } from '../types.js';

describe('cluster bus: passes over the log for a whole-log listener with a position', () => {
  let redis: RedisProcess;
  let storage: Storage;
  let bus: Bus | undefined;
  let run = 0;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await redis?.stop();
  });

  async function open(): Promise<Bus> {
    storage = await openSqliteStorage({ dataDir: ':memory:' });
    bus = await createBus(`${redis.url}?prefix=wl${(run += 1)}`, { store: storage.events, pollIntervalMs: 50, connectTimeoutMs: 10_000 });
    return bus;
  }
  const close = async () => {
    await bus?.close();
    await storage.close();
  };
  /** An append by another node: in the log, not on this node's wire. */
  const appendElsewhere = async (channel: string) =>
    (await storage.events.append({ events: [{ channel, id: `${channel}-${Math.random()}`, type: 't', data: 1, time: Date.now() }] })).events[0]!;

  it("serves a channel's subscribers from the log while down, however long the whole-log listener takes to say where it stands", async () => {
    const b = await open();
    try {
      await appendElsewhere('slow');
      let release!: () => void;
      const stuck = new Promise<void>((r) => (release = r));
      b.subscribeAll(
        () => {},
        async (channel) => {
          if (channel === 'slow') await stuck;
          return 0;
        },
      );
      const room: HeraldEvent[] = [];
      b.subscribe('room', (events) => room.push(...events));
      await new Promise((r) => setTimeout(r, 200));
      await redis.kill();
      await until(() => b.state === 'down', 10_000, "the bus 'down'");
      // Passes every 50 ms while down: the first whole-log pass has started, and waits for 'slow'.
      await new Promise((r) => setTimeout(r, 300));
      const event = await appendElsewhere('room');
      // The whole-log pass is still waiting for 'slow': the subscriber's own passes go on without it.
      await until(() => room.some((e) => e.id === event.id), 10_000, 'the subscriber to read the event from the log');
      release();
    } finally {
      await redis.restart();
      await close();
    }
  });

  it('runs a whole-log pass again when the listener could not say where it stands', async () => {
    const b = await open();
    try {
      // Appended before the listener came, by another node: only the pass that follows the subscription finds it.
      const event = await appendElsewhere('late');
      let refusals = 2;
      const got: HeraldEvent[] = [];
      b.subscribeAll(
        (events) => got.push(...events),
        async () => {
          if (refusals > 0) {
            refusals -= 1;
            throw new Error('the store is down');
          }
          return 0;
        },
      );
      await until(() => got.some((e) => e.id === event.id), 10_000, 'the event, once the listener can say');
      assert.equal(refusals, 0);
      assert.equal(got.length, 1);
    } finally {
      await close();
    }
  });
});

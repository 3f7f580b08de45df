import { it } from 'node:test';
import assert from 'node:assert/strict';
import type { HeraldEvent } from '@herald/protocol';
import type { EventLog } from '../log/event-log.js';
import { ChannelFeed } from './feed.js';

/** A log in memory whose bus and reads the test drives: `append` stores events, `live` is what the bus says. */
function fakeLog() {
  const events: HeraldEvent[] = [];
  let listener: ((events: readonly HeraldEvent[]) => void) | undefined;
  const hooks: { beforeRead?: () => void } = {};
  const event = (seq: number): HeraldEvent => ({ id: `evt_${seq}`, channel: 'c', seq, type: 't', data: seq, time: new Date(0).toISOString() }) as HeraldEvent;
  const log = {
    bus: {
      subscribe: (_channel: string, fn: (events: readonly HeraldEvent[]) => void) => {
        listener = fn;
        return () => (listener = undefined);
      },
    },
    store: { head: async () => ({ epoch: 'e1', head: events.length, trimmed: 0 }) },
    read: async (_channel: string, after: number, limit: number) => {
      await Promise.resolve();
      hooks.beforeRead?.();
      const page = events.filter((e) => e.seq > after).slice(0, limit);
      return { events: page, epoch: 'e1', truncated: false, trimmed: 0, head: events.length };
    },
  };
  return {
    log: log as unknown as EventLog,
    hooks,
    /** Appends the next `n` events and announces them on the bus, as a publish does. */
    publish(n: number): void {
      const added = Array.from({ length: n }, (_, i) => event(events.length + 1 + i));
      events.push(...added);
      listener?.(added);
    },
    append(n: number): HeraldEvent[] {
      const added = Array.from({ length: n }, (_, i) => event(events.length + 1 + i));
      events.push(...added);
      return added;
    },
    event,
    announce(list: readonly HeraldEvent[]): void {
      listener?.(list);
    },
  };
}

function sink() {
  const seen: number[] = [];
  let release: (() => void) | undefined;
  let waiting = false;
  return {
    seen,
    /** While true, the backlog replay waits in drained(), as for a socket that has not flushed. */
    hold(on: boolean) {
      waiting = on;
      if (!on) release?.();
    },
    get blocked() {
      return release !== undefined;
    },
    sink: {
      event: (e: HeraldEvent) => seen.push(e.seq),
      gap: () => {},
      failed: (error: unknown) => {
        throw error;
      },
      drained: () =>
        waiting
          ? new Promise<void>((resolve) => {
              release = () => {
                release = undefined;
                resolve();
              };
            })
          : undefined,
    },
  };
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const settle = async () => {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
};

for (const backlog of [3, 600]) it(`events published while a backlog of ${backlog} waits for the socket arrive once each, with no hole, with nothing published after`, async () => {
  const f = fakeLog();
  f.append(backlog); // 600 is more than one page
  const s = sink();
  const feed = new ChannelFeed(f.log, 'c', s.sink);
  await feed.open(0);
  s.hold(true);
  const replay = feed.replay();
  await settle();
  assert.ok(s.blocked, 'the replay waits for the socket to drain');
  // 30 publishes while the replay waits: they are in the log and held as live events.
  for (let i = 0; i < 30; i++) f.publish(1);
  s.hold(false);
  await replay;
  assert.deepEqual(s.seen, range(1, backlog + 30));
  f.publish(1);
  assert.deepEqual(s.seen, range(1, backlog + 31));
  feed.stop();
});

it('a live event that the backlog read already returned is not handed over twice', async () => {
  const f = fakeLog();
  f.append(3);
  const s = sink();
  const feed = new ChannelFeed(f.log, 'c', s.sink);
  await feed.open(0);
  // Appended between subscribing and the read: the read returns it, and the bus announces it too.
  f.hooks.beforeRead = () => {
    f.hooks.beforeRead = undefined;
    f.announce(f.append(2));
  };
  await feed.replay();
  assert.deepEqual(s.seen, range(1, 5));
  // The bus may announce old events again (a batch that overlaps the position): only the new one is handed over.
  const [six] = f.append(1);
  f.announce([f.event(4), f.event(5), six!]);
  await settle();
  assert.deepEqual(s.seen, range(1, 6));
  feed.stop();
});

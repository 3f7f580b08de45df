import { it } from 'node:test';
import assert from 'node:assert/strict';
import type { HeraldEvent } from '@herald/protocol';
import type { EventLog } from '../log/event-log.js';
import type { BusSink } from '../bus/types.js';
import { ChannelFeed } from './feed.js';

/** A log in memory whose bus and reads the test drives: `append` stores events, `live` is what the bus says. */
function fakeLog() {
  const events: HeraldEvent[] = [];
  let listener: ((events: readonly HeraldEvent[]) => void) | undefined;
  const hooks: { beforeRead?: () => void } = {};
  const event = (seq: number): HeraldEvent => ({ id: `evt_${seq}`, channel: 'c', seq, type: 't', data: seq, time: new Date(0).toISOString() }) as HeraldEvent;
  const log = {
    bus: {
      join: (_channel: string, feed: BusSink) => {
        listener = (events) => feed.onEvents(events);
      },
      leave: () => (listener = undefined),
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

/**
 * A log whose history can be trimmed and whose reads can fail or be held, and a sink that records
 * everything it is told, in order: for the feed's edges (gaps, stops, failures, overflow, paging).
 */
function edgeLog() {
  const events: HeraldEvent[] = [];
  let trimmed = 0;
  let epoch = 'e1';
  let listener: ((events: readonly HeraldEvent[]) => void) | undefined;
  const reads: Array<{ after: number; limit: number }> = [];
  const bounds: Array<number | undefined> = [];
  /** `perEvent`: bytes each event counts for against a read's maxBytes, as the store counts data and meta. */
  const control: { fail?: Error; hold?: Promise<void>; afterRead?: () => void; unsubscribed: number; perEvent?: number } = { unsubscribed: 0 };
  const make = (seq: number): HeraldEvent => ({ id: `evt_${seq}`, channel: 'c', seq, type: 't', data: seq, time: new Date(0).toISOString() }) as HeraldEvent;
  const log = {
    bus: {
      join: (_channel: string, feed: BusSink) => {
        listener = (events) => feed.onEvents(events);
      },
      leave: () => {
        control.unsubscribed += 1;
        listener = undefined;
      },
    },
    store: { head: async () => ({ epoch, head: events.length, trimmed }) },
    read: async (_channel: string, after: number, limit: number, maxBytes?: number) => {
      reads.push({ after, limit });
      bounds.push(maxBytes);
      await Promise.resolve();
      if (control.hold) await control.hold;
      if (control.fail) throw control.fail;
      const from = Math.max(after, trimmed);
      // The store's rule: stop once the events read hold maxBytes or more.
      const fits = control.perEvent && maxBytes !== undefined ? Math.max(1, Math.ceil(maxBytes / control.perEvent)) : limit;
      const page = events.filter((e) => e.seq > from).slice(0, Math.min(limit, fits));
      const result = { events: page, epoch, truncated: after < trimmed, trimmed, head: events.length };
      control.afterRead?.();
      return result;
    },
  };
  return {
    log: log as unknown as EventLog,
    reads,
    bounds,
    control,
    get listening() {
      return listener !== undefined;
    },
    append(n: number): HeraldEvent[] {
      const added = Array.from({ length: n }, (_, i) => make(events.length + 1 + i));
      events.push(...added);
      return added;
    },
    publish(n: number): HeraldEvent[] {
      const added = this.append(n);
      listener?.(added);
      return added;
    },
    announce(list: readonly HeraldEvent[]): void {
      listener?.(list);
    },
    trimTo(seq: number): void {
      trimmed = seq;
    },
    setEpoch(next: string): void {
      epoch = next;
    },
    make,
  };
}

function recorder() {
  const told: string[] = [];
  const errors: unknown[] = [];
  return {
    told,
    errors,
    seqs: () => told.filter((t) => t.startsWith('event ')).map((t) => Number(t.slice(6))),
    sink: {
      event: (e: HeraldEvent) => told.push(`event ${e.seq}`),
      gap: (g: { channel: string; after: number; oldest: number }) => told.push(`gap ${g.channel} ${g.after}->${g.oldest}`),
      failed: (error: unknown) => errors.push(error),
    },
  };
}

/** A sink whose drained() holds the replay until released: `releaseOne` lets one page go, `releaseAll` stops holding. */
function holdingSink(r: ReturnType<typeof recorder>) {
  const releases: Array<() => void> = [];
  let holding = true;
  return {
    sink: { ...r.sink, drained: () => (holding ? new Promise<void>((resolve) => releases.push(resolve)) : undefined) },
    releaseOne: () => releases.shift()?.(),
    releaseAll: () => {
      holding = false;
      for (const release of releases.splice(0)) release();
    },
  };
}

/** A feed from 0 over `backlog` events, its replay under way and held in drained() after the first page. */
async function heldReplay(backlog: number) {
  const f = edgeLog();
  f.append(backlog);
  const r = recorder();
  const held = holdingSink(r);
  const feed = new ChannelFeed(f.log, 'c', held.sink);
  await feed.open(0);
  const replay = feed.replay();
  await settle();
  return { f, r, held, feed, replay };
}

it('open(undefined) starts live at the head; open(n) starts after n; both take the epoch', async () => {
  const f = edgeLog();
  f.append(4);
  f.setEpoch('e7');
  const live = recorder();
  const feed = new ChannelFeed(f.log, 'c', live.sink);
  const state = await feed.open(undefined);
  assert.deepEqual([feed.position, feed.epoch, state.head], [4, 'e7', 4]);
  await feed.replay();
  assert.deepEqual(live.told, [], 'nothing from before the head');
  f.publish(1);
  assert.deepEqual(live.told, ['event 5']);
  feed.stop();

  const from = recorder();
  const resumed = new ChannelFeed(f.log, 'c', from.sink);
  await resumed.open(2);
  assert.equal(resumed.position, 2);
  await resumed.replay();
  assert.deepEqual(from.seqs(), [3, 4, 5]);
  assert.equal(resumed.position, 5);
  resumed.stop();
});

it('reads the backlog in pages of 500, waiting for the sink to drain between pages', async () => {
  const f = edgeLog();
  f.append(1001);
  const r = recorder();
  let drains = 0;
  const feed = new ChannelFeed(f.log, 'c', { ...r.sink, drained: () => (drains++, undefined) });
  await feed.open(0);
  await feed.replay();
  assert.deepEqual(r.seqs(), range(1, 1001));
  assert.deepEqual(f.reads, [{ after: 0, limit: 500 }, { after: 500, limit: 500 }, { after: 1000, limit: 500 }]);
  assert.equal(drains, 3);
  feed.stop();
});

it('a full last page that reaches the head is the last read', async () => {
  const f = edgeLog();
  f.append(500);
  const r = recorder();
  const feed = new ChannelFeed(f.log, 'c', r.sink);
  await feed.open(0);
  await feed.replay();
  assert.deepEqual(f.reads.map((x) => x.after), [0]);
  assert.equal(r.seqs().length, 500);
  feed.stop();
});

it('reads the backlog in pages of at most 1 MiB of events, and reads on after a page cut short by its size', async () => {
  const f = edgeLog();
  f.append(10);
  // 300 KiB events: four make a page (the fourth reaches 1 MiB), so 10 take three short pages.
  f.control.perEvent = 300 * 1024;
  const r = recorder();
  const feed = new ChannelFeed(f.log, 'c', r.sink);
  await feed.open(0);
  await feed.replay();
  assert.deepEqual(r.seqs(), range(1, 10));
  assert.deepEqual(f.reads.map((x) => x.after), [0, 4, 8]);
  assert.deepEqual(f.bounds, [1024 * 1024, 1024 * 1024, 1024 * 1024]);
  feed.stop();
});

it('reports trimmed history as a gap before the events after it, and moves its position past the gap first', async () => {
  const f = edgeLog();
  f.append(10);
  f.trimTo(6);
  const r = recorder();
  let positionAtGap = -1;
  const feed: ChannelFeed = new ChannelFeed(f.log, 'c', { ...r.sink, gap: (g) => (r.sink.gap(g), (positionAtGap = feed.position)) });
  await feed.open(2);
  await feed.replay();
  assert.deepEqual(r.told, ['gap c 2->7', 'event 7', 'event 8', 'event 9', 'event 10']);
  assert.equal(positionAtGap, 6, 'a cursor read in gap() already skips the lost events');
  assert.equal(feed.position, 10);
  feed.stop();
});

it('takes the epoch of every page it reads', async () => {
  const f = edgeLog();
  f.append(2);
  const r = recorder();
  const feed = new ChannelFeed(f.log, 'c', r.sink);
  await feed.open(0);
  f.setEpoch('e2');
  await feed.replay();
  assert.equal(feed.epoch, 'e2');
  feed.stop();
});

it('live events that leave a hole make it read the log, and it delivers in order without duplicates', async () => {
  const f = edgeLog();
  const r = recorder();
  const feed = new ChannelFeed(f.log, 'c', r.sink);
  await feed.open(0);
  await feed.replay();
  const [one, two, three] = f.append(3);
  f.announce([three!]); // 1 and 2 were missed by the bus
  await settle();
  assert.deepEqual(r.seqs(), [1, 2, 3]);
  assert.equal(f.reads.length, 2, 'one read for the replay, one to fill the hole');
  f.announce([one!, two!, three!]);
  await settle();
  assert.deepEqual(r.seqs(), [1, 2, 3], 'old events announced again are dropped without a read');
  assert.equal(f.reads.length, 2);
  f.publish(2);
  assert.deepEqual(r.seqs(), [1, 2, 3, 4, 5], 'events that follow on are handed over at once');
  assert.equal(f.reads.length, 2);
  feed.stop();
});

it('a live batch with a hole in its middle delivers what follows on, then fills the rest from the log', async () => {
  const f = edgeLog();
  const r = recorder();
  const feed = new ChannelFeed(f.log, 'c', r.sink);
  await feed.open(0);
  await feed.replay();
  const [one, , three] = f.append(3);
  f.announce([one!, three!]);
  assert.deepEqual(r.seqs(), [1], 'the event that follows on goes at once');
  await settle();
  assert.deepEqual(r.seqs(), [1, 2, 3]);
  feed.stop();
});

it('holds at most 1000 live events while replaying; past that it drops them and reads them from the log', async () => {
  const { f, r, held, feed, replay } = await heldReplay(2);
  f.publish(600);
  f.publish(401); // 1001 held: over the bound
  held.releaseAll();
  await replay;
  assert.deepEqual(r.seqs(), range(1, 1003), 'nothing lost, nothing twice');
  assert.ok(f.reads.length >= 3, `the dropped events were read from the log (${f.reads.length} reads)`);
  f.publish(1);
  assert.deepEqual(r.seqs().at(-1), 1004, 'then live again');
  feed.stop();
});

it('holds exactly 1000 live events without dropping them', async () => {
  const { f, r, held, feed, replay } = await heldReplay(1);
  const readsBefore = f.reads.length;
  f.publish(1000);
  held.releaseAll();
  await replay;
  assert.deepEqual(r.seqs(), range(1, 1001));
  assert.equal(f.reads.length, readsBefore, 'the held events were enough: no second read');
  feed.stop();
});

it('after an overflow, events held later in the same replay are not lost', async () => {
  const { f, r, held, feed, replay } = await heldReplay(1);
  f.publish(1001); // overflow while the first page waits
  held.releaseOne();
  await settle();
  // The feed re-reads the dropped events; while that page waits, more live events are held.
  f.publish(5);
  held.releaseAll();
  await replay;
  await settle();
  assert.deepEqual(r.seqs(), range(1, 1007));
  feed.stop();
});

it('stop() ends the subscription once, drops held events and delivers nothing more', async () => {
  const { tally } = await import('../metrics/registry.js');
  const f = edgeLog();
  f.append(1);
  const r = recorder();
  const open = tally.subscriptions;
  const feed = new ChannelFeed(f.log, 'c', r.sink);
  assert.equal(tally.subscriptions, open + 1);
  assert.ok(f.listening);
  await feed.open(0);
  await feed.replay();
  feed.stop();
  feed.stop();
  assert.equal(tally.subscriptions, open, 'counted down once');
  assert.equal(f.control.unsubscribed, 1, 'unsubscribed from the bus once');
  f.announce([f.make(2)]);
  assert.deepEqual(r.seqs(), [1]);
});

it('stops mid-batch: events after the stop in the same batch are not delivered', async () => {
  const f = edgeLog();
  const r = recorder();
  const feed: ChannelFeed = new ChannelFeed(f.log, 'c', { ...r.sink, event: (e) => (r.sink.event(e), e.seq === 2 && feed.stop()) });
  await feed.open(0);
  await feed.replay();
  f.publish(4);
  assert.deepEqual(r.seqs(), [1, 2]);
});

it('stopping while a read is in flight delivers nothing from it, and reports no failure', async () => {
  const f = edgeLog();
  f.append(3);
  const r = recorder();
  let release!: () => void;
  f.control.hold = new Promise<void>((resolve) => (release = resolve));
  const feed = new ChannelFeed(f.log, 'c', r.sink);
  await feed.open(0);
  const replay = feed.replay();
  await settle();
  feed.stop();
  f.control.fail = new Error('closed');
  release();
  await replay;
  assert.deepEqual(r.told, []);
  assert.deepEqual(r.errors, [], 'a read that fails after the stop is nobody’s problem');

  const g = edgeLog();
  g.append(3);
  const s = recorder();
  let let2!: () => void;
  g.control.hold = new Promise<void>((resolve) => (let2 = resolve));
  const other = new ChannelFeed(g.log, 'c', s.sink);
  await other.open(0);
  const replaying = other.replay();
  await settle();
  other.stop();
  let2();
  await replaying;
  assert.deepEqual(s.told, [], 'a read that succeeds after the stop delivers nothing');
});

it('a failed read is handed to the sink, and the feed is live-idle after it', async () => {
  const f = edgeLog();
  f.append(2);
  const r = recorder();
  const boom = new Error('disk gone');
  f.control.fail = boom;
  const feed = new ChannelFeed(f.log, 'c', r.sink);
  await feed.open(0);
  await feed.replay();
  assert.deepEqual(r.errors, [boom]);
  assert.deepEqual(r.told, []);
  // Not catching up any more: a live event that follows on is delivered directly, without a read.
  f.control.fail = undefined;
  const reads = f.reads.length;
  f.announce([f.make(1)]);
  assert.deepEqual(r.seqs(), [1]);
  assert.equal(f.reads.length, reads);
  feed.stop();
});

/** Makes the log's reads leave out the first event of a page while `when()` says so: a hole in what it returns. */
function dropFirstEvent(log: EventLog, when: () => boolean): void {
  const reader = log as unknown as { read: (c: string, a: number, l: number) => Promise<{ events: HeraldEvent[] }> };
  const read = reader.read;
  reader.read = async (c, a, l) => {
    const page = await read(c, a, l);
    return when() ? { ...page, events: page.events.slice(1) } : page;
  };
}

it('a hole found while filling from the log is read again until the log catches up', async () => {
  const f = edgeLog();
  f.append(3);
  const r = recorder();
  const feed = new ChannelFeed(f.log, 'c', r.sink);
  await feed.open(0);
  // The first read returns events 2-3 only (as a read racing a trim-and-refill could): the feed must not skip 1.
  let skewed = true;
  dropFirstEvent(f.log, () => {
    const now = skewed;
    skewed = false;
    return now;
  });
  await feed.replay();
  assert.deepEqual(r.seqs(), [1, 2, 3]);
  feed.stop();
});

it('a log that keeps showing a hole fails the feed after a while, yielding to timers meanwhile instead of spinning', async () => {
  const f = edgeLog();
  f.append(3);
  const r = recorder();
  const feed = new ChannelFeed(f.log, 'c', r.sink);
  await feed.open(0);
  dropFirstEvent(f.log, () => true);
  let ticks = 0;
  const timer = setInterval(() => ticks++, 5);
  await feed.replay();
  clearInterval(timer);
  assert.deepEqual(r.seqs(), [], 'nothing past the hole');
  assert.equal(r.errors.length, 1);
  assert.match(String(r.errors[0]), /skips from 0 to 2/);
  assert.ok(ticks > 10, `timers ran ${ticks} times while it read`);
  feed.stop();
});

it('holds live events from the start until replay() runs, then hands them over in order', async () => {
  const f = edgeLog();
  const r = recorder();
  const feed = new ChannelFeed(f.log, 'c', r.sink);
  assert.deepEqual([feed.position, feed.epoch], [0, ''], 'nothing known before open()');
  await feed.open(0);
  f.publish(2);
  assert.deepEqual(r.told, [], 'held: the backlog has not been read yet');
  await feed.replay();
  assert.deepEqual(r.seqs(), [1, 2]);
  feed.stop();
});

it('tells no gap when it was stopped while the read that found the gap was in flight', async () => {
  const f = edgeLog();
  f.append(10);
  f.trimTo(6);
  const r = recorder();
  let release!: () => void;
  f.control.hold = new Promise<void>((resolve) => (release = resolve));
  const feed = new ChannelFeed(f.log, 'c', r.sink);
  await feed.open(2);
  const replay = feed.replay();
  await settle();
  feed.stop();
  release();
  await replay;
  assert.deepEqual(r.told, []);
  assert.equal(feed.position, 2, 'the position stays where the stopped feed left it');
});

// Issue #16, "the 1,000-pending overflow": while a ChannelFeed replays a backlog it holds live events in memory
// (MAX_PENDING, 1,000); past that it drops them and reads them from the log instead. Memory stays bounded and the
// subscriber still gets every event once, in order. feed.test.ts covers the feed's logic against a log in memory;
// these run it on the real SQLite log and the in-process bus, and measure what it holds.
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HeraldEvent } from '@herald/protocol';
import { openSqliteStorage } from '../store/sqlite/open.js';
import type { Storage } from '../store/types.js';
import { LocalBus } from '../bus/local-bus.js';
import { EventLog } from '../log/event-log.js';
import { ChannelFeed, type FeedSink } from './feed.js';

const CHANNEL = 'overflow';
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** A sink whose first `drained()` blocks until released: the socket of a subscriber that has stopped reading. */
function stalledSink() {
  const seqs: number[] = [];
  let release!: () => void;
  const stall = new Promise<void>((resolve) => (release = resolve));
  let stalled = false;
  let waiting!: () => void;
  const reached = new Promise<void>((resolve) => (waiting = resolve));
  const sink: FeedSink = {
    event: (event: HeraldEvent) => seqs.push(event.seq),
    gap: (gap) => assert.fail(`no gap expected: ${JSON.stringify(gap)}`),
    failed: (error) => assert.fail(String(error)),
    drained: () => {
      if (stalled) return undefined;
      stalled = true;
      waiting();
      return stall;
    },
  };
  return { sink, seqs, release, reached };
}

/** What the feed holds in memory for later; private, read here because the bound on it is the behaviour under test. */
const held = (feed: ChannelFeed): number => (feed as unknown as { pending?: unknown[] }).pending?.length ?? 0;

describe('ChannelFeed on the SQLite log: live events held during a replay', () => {
  let dir: string;
  let storage: Storage;
  let log: EventLog;
  const publish = async (count: number) => {
    // Batches of at most 1,000, as the API takes them.
    for (let done = 0; done < count; done += 1000) {
      await log.publish(Array.from({ length: Math.min(1000, count - done) }, (_, i) => ({ channel: CHANNEL, data: { i: done + i } })));
    }
  };

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'herald-feed-'));
    storage = await openSqliteStorage({ dataDir: dir });
    log = new EventLog(storage.events, new LocalBus());
  });
  afterEach(async () => {
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A feed on 300 stored events whose subscriber stopped reading once the whole backlog was handed to it. */
  const stalledFeed = async () => {
    await publish(300);
    const stalled = stalledSink();
    const feed = new ChannelFeed(log, CHANNEL, stalled.sink);
    await feed.open(0);
    const replaying = feed.replay();
    // The backlog fits one page: the feed has read it all and waits for the subscriber to drain.
    await stalled.reached;
    assert.deepEqual(stalled.seqs, range(1, 300));
    return { feed, replaying, ...stalled };
  };

  it('holds at most 1,000; past that it drops them and reads them from the log, so none is lost after the last page', async () => {
    const { feed, replaying, seqs, release } = await stalledFeed();
    await log.publish(Array.from({ length: 1000 }, (_, i) => ({ channel: CHANNEL, data: { live: i } })));
    assert.equal(held(feed), 1000, 'up to 1,000 live events are held');
    // The batch that passes the bound is the last one: nothing arrives after it to reveal the hole.
    await log.publish(Array.from({ length: 100 }, (_, i) => ({ channel: CHANNEL, data: { late: i } })));
    assert.equal(held(feed), 0, 'past 1,000 the held events are dropped, not kept growing');
    release();
    await replaying;
    assert.deepEqual(seqs, range(1, 1400), 'every dropped event read back from the log, once, in order');
    // And live again afterwards.
    await publish(1);
    assert.equal(seqs.at(-1), 1401);
    feed.stop();
  });

  it('never holds more than 1,000, however many arrive during the replay', async () => {
    const { feed, replaying, seqs, release } = await stalledFeed();
    let most = 0;
    for (let batch = 0; batch < 25; batch++) {
      await log.publish(Array.from({ length: 200 }, (_, i) => ({ channel: CHANNEL, data: { batch, i } })));
      most = Math.max(most, held(feed));
    }
    assert.ok(most <= 1000, `held at most 1,000, saw ${most}`);
    release();
    await replaying;
    assert.deepEqual(seqs, range(1, 300 + 25 * 200));
    feed.stop();
  });
});

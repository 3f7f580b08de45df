import { it } from 'node:test';
import assert from 'node:assert/strict';
import type { HeraldEvent } from '@herald/protocol';
import type { ReadResult, StubPage } from '../../store/types.js';
import { ByteBudget, ChannelMerge, type MergeSource } from './merge.js';

/** One channel's log in memory, as the store reads it: `head` is its latest seq at each read. */
function channelLog(channel: string, time = (seq: number) => seq) {
  const events: HeraldEvent[] = [];
  let trimmed = 0;
  const append = (count: number) => {
    for (let i = 0; i < count; i++) {
      const seq = events.length + 1;
      events.push({ id: `evt_${seq}`, channel, seq, type: 't', data: seq, time: new Date(time(seq)).toISOString() });
    }
  };
  const read = async (_channel: string, after: number, limit: number): Promise<ReadResult> => ({
    events: events.filter((e) => e.seq > Math.max(after, trimmed)).slice(0, limit),
    head: events.length,
    trimmed,
    epoch: 'e1',
    truncated: after < trimmed || after > events.length,
  });
  const stubs = async (_channel: string, after: number, limit: number): Promise<StubPage> => {
    const { events: page, ...state } = await read(channel, after, limit);
    return { ...state, stubs: page.map((e) => ({ seq: e.seq, time: Date.parse(e.time), bytes: JSON.stringify(e.data).length })) };
  };
  return { append, read, stubs, trim: (to: number) => (trimmed = to) };
}

/** Reads each channel from its log. */
function sourceOf(logs: Record<string, ReturnType<typeof channelLog>>): MergeSource {
  return {
    read: (channel, after, limit) => logs[channel]!.read(channel, after, limit),
    stubs: (channel, after, limit) => logs[channel]!.stubs(channel, after, limit),
  };
}

it("a channel's head in a merged page is never behind the events the page gives of it, as on its own page", async () => {
  const a = channelLog('a');
  const b = channelLog('b');
  a.append(3);
  let reads = 0;
  // Events appended to a after its first read, and read by its next page within the same request.
  const source = sourceOf({ a, b });
  const stubs = source.stubs;
  source.stubs = async (channel, after, limit) => {
    if (channel === 'a' && ++reads === 2) a.append(2);
    return stubs(channel, after, limit);
  };
  const merge = await ChannelMerge.open(source, ['a', 'b'], [0, 0], 4);
  const page = await merge.take(4, new ByteBudget(1 << 20));
  assert.deepEqual(
    page.taken.map((t) => t.event.seq),
    [1, 2, 3, 4],
    'the page goes past the head of its first read of a',
  );
  assert.equal(page.next.get('a'), 4);
  assert.ok(page.heads.a! >= page.next.get('a')!, `head ${page.heads.a} behind the position ${page.next.get('a')} the page took the channel to`);
});

it('merges by time across channels, loading only the events it answers with', async () => {
  // a's events at 1, 3, 5, …; b's at 2, 4, 6, …; c's much later.
  const a = channelLog('a', (seq) => 2 * seq - 1);
  const b = channelLog('b', (seq) => 2 * seq);
  const c = channelLog('c', (seq) => 1000 + seq);
  for (const log of [a, b, c]) log.append(5);
  const loaded: string[] = [];
  const source = sourceOf({ a, b, c });
  const read = source.read;
  source.read = async (channel, after, limit) => {
    const page = await read(channel, after, limit);
    loaded.push(...page.events.map((e) => `${channel}${e.seq}`));
    return page;
  };
  const merge = await ChannelMerge.open(source, ['c', 'b', 'a'], [0, 0, 0], 5);
  const page = await merge.take(5, new ByteBudget(1 << 20));
  const order = page.taken.map((t) => `${t.event.channel}${t.event.seq}`);
  assert.deepEqual(order, ['a1', 'b1', 'a2', 'b2', 'a3']);
  assert.deepEqual(loaded.sort(), [...order].sort(), 'c was never loaded');
  assert.deepEqual([...page.next], [['c', 0], ['b', 2], ['a', 3]]);
});

it('stops before an event trimmed between its stub and its load, and the channel keeps its exact position', async () => {
  const a = channelLog('a', (seq) => 2 * seq - 1);
  const b = channelLog('b', (seq) => 2 * seq);
  a.append(3);
  b.append(3);
  const merge = await ChannelMerge.open(sourceOf({ a, b }), ['a', 'b'], [0, 0], 6);
  b.trim(2);
  const page = await merge.take(6, new ByteBudget(1 << 20));
  // a1 then b1, which is gone: the page ends there, and the next poll reports b's gap from 0.
  assert.deepEqual(page.taken.map((t) => `${t.event.channel}${t.event.seq}`), ['a1']);
  assert.deepEqual([...page.next], [['a', 1], ['b', 0]]);
});

it('chooses within the byte budget by stored size, always at least one event', async () => {
  const a = channelLog('a');
  a.append(10);
  const source = sourceOf({ a });
  let loaded = 0;
  const read = source.read;
  source.read = async (channel, after, limit) => {
    const page = await read(channel, after, limit);
    loaded += page.events.length;
    return page;
  };
  // Each event's data is 1 byte (the tenth 2) and its JSON about 90: the stored sizes let 6 in, the JSON 1.
  const merge = await ChannelMerge.open(source, ['a'], [0], 10);
  const page = await merge.take(10, new ByteBudget(6));
  assert.deepEqual([page.taken.length, loaded], [1, 6]);
});

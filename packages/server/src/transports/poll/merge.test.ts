import { it } from 'node:test';
import assert from 'node:assert/strict';
import type { HeraldEvent } from '@herald/protocol';
import type { ReadResult } from '../../store/types.js';
import { ByteBudget, ChannelMerge } from './merge.js';

/** One channel's log in memory, as the store reads it: `head` is its latest seq at each read. */
function channelLog(channel: string) {
  const events: HeraldEvent[] = [];
  const append = (count: number) => {
    for (let i = 0; i < count; i++) {
      const seq = events.length + 1;
      events.push({ id: `evt_${seq}`, channel, seq, type: 't', data: seq, time: new Date(seq).toISOString() });
    }
  };
  const read = async (_channel: string, after: number, limit: number): Promise<ReadResult> => ({
    events: events.filter((e) => e.seq > after).slice(0, limit),
    head: events.length,
    trimmed: 0,
    epoch: 'e1',
    truncated: after > events.length,
  });
  return { append, read };
}

it("a channel's head in a merged page is never behind the events the page gives of it, as on its own page", async () => {
  const a = channelLog('a');
  const b = channelLog('b');
  a.append(3);
  let reads = 0;
  // Events appended to a after its first read, and read by its next page within the same request.
  const read = async (channel: string, after: number, limit: number) => {
    if (channel === 'b') return b.read(channel, after, limit);
    if (++reads === 2) a.append(2);
    return a.read(channel, after, limit);
  };
  const merge = await ChannelMerge.open(read, ['a', 'b'], [0, 0], 4);
  const page = await merge.take(4, new ByteBudget(1 << 20));
  assert.deepEqual(
    page.taken.map((t) => t.event.seq),
    [1, 2, 3, 4],
    'the page goes past the head of its first read of a',
  );
  assert.equal(page.next.get('a'), 4);
  assert.ok(page.heads.a! >= page.next.get('a')!, `head ${page.heads.a} behind the position ${page.next.get('a')} the page took the channel to`);
});

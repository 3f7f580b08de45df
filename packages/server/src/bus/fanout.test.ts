import { it } from 'node:test';
import assert from 'node:assert/strict';
import type { HeraldEvent } from '@herald/protocol';
import { Fanout } from './fanout.js';

const e = (seq: number): HeraldEvent => ({ id: `e${seq}`, channel: 'c', seq, type: 't', data: null, time: '' });

it('a listener subscribed twice hears each event twice, and each unsubscribe removes one subscription', () => {
  const interest: Array<[string, boolean]> = [];
  const fanout = new Fanout({ channel: (channel, wanted) => interest.push([channel, wanted]) });
  const heard: number[] = [];
  const listener = (events: readonly HeraldEvent[]) => heard.push(...events.map((x) => x.seq));
  const first = fanout.subscribe('c', listener);
  const second = fanout.subscribe('c', listener);
  fanout.emit('c', [e(1)]);
  assert.deepEqual(heard, [1, 1]);
  first();
  fanout.emit('c', [e(2)]);
  assert.deepEqual(heard, [1, 1, 2]);
  second();
  assert.equal(fanout.listenerCount('c'), 0);
  assert.deepEqual(interest, [['c', true], ['c', false]]);
});

it('an unsubscribe called again does not remove a later subscription of the same listener', () => {
  const fanout = new Fanout();
  const heard: number[] = [];
  const listener = (events: readonly HeraldEvent[]) => heard.push(...events.map((x) => x.seq));
  const stale = fanout.subscribe('c', listener);
  stale();
  fanout.subscribe('c', listener);
  stale();
  fanout.emit('c', [e(1)]);
  assert.deepEqual(heard, [1]);
  const all = fanout.subscribeAll(listener);
  all();
  fanout.subscribeAll(listener);
  all();
  fanout.emit('c', [e(2)]);
  assert.deepEqual(heard, [1, 2, 2], 'the channel listener and the whole-log listener');
});

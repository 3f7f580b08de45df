import { it } from 'node:test';
import assert from 'node:assert/strict';
import { LocalBus } from '../../bus/local-bus.js';
import { EventLog } from '../../log/event-log.js';
import type { EventStore } from '../../store/types.js';
import { EphemeralFrames } from '../../presence/frames.js';
import {
  allSubscriptions,
  findSubscription,
  Subscription,
  subscriptionCount,
  withoutSubscription,
  withSubscription,
  type SubscriptionOwner,
  type Subscriptions,
} from './subscription.js';

// The collection functions and the ephemeral hand-off read no store: the log is real, its store (an empty stand-in) is never called.
const bus = new LocalBus();
const log = new EventLog({} as EventStore, bus);
const sent: Buffer[] = [];
const owner: SubscriptionOwner = { event() {}, gap() {}, failed() {}, sendFrame: (frame) => void sent.push(frame) };
const subscribe = (channel: string, ref?: string) => new Subscription(log, channel, owner, ref);

it('holds one subscription as itself, two or more in a Map, and goes back to one', () => {
  let subs: Subscriptions = undefined;
  assert.equal(subscriptionCount(subs), 0);
  assert.deepEqual(allSubscriptions(subs), []);
  assert.equal(findSubscription(subs, 'a'), undefined);

  const a = subscribe('a');
  subs = withSubscription(subs, a);
  assert.equal(subs, a, 'one subscription is no Map');
  assert.equal(findSubscription(subs, 'a'), a);
  assert.equal(findSubscription(subs, 'b'), undefined);

  const b = subscribe('b');
  const c = subscribe('c');
  subs = withSubscription(withSubscription(subs, b), c);
  assert.ok(subs instanceof Map);
  assert.equal(subscriptionCount(subs), 3);
  assert.deepEqual(allSubscriptions(subs), [a, b, c]);
  assert.equal(findSubscription(subs, 'b'), b);

  subs = withoutSubscription(subs, 'a');
  assert.ok(subs instanceof Map, 'two are still a Map');
  assert.equal(findSubscription(subs, 'a'), undefined);
  subs = withoutSubscription(subs, 'nothing');
  assert.equal(subscriptionCount(subs), 2);
  subs = withoutSubscription(subs, 'c');
  assert.equal(subs, b, 'a Map left with one goes back to being that one');
  assert.equal(withoutSubscription(subs, 'a'), b, 'removing another channel leaves it');
  assert.equal(withoutSubscription(subs, 'b'), undefined);
});

it('a new subscription to a channel takes the place of the old one, alone or among others', () => {
  const first = subscribe('x', 'r1');
  const again = subscribe('x', 'r2');
  assert.equal(withSubscription(first, again), again);
  const other = subscribe('y');
  const both = withSubscription(withSubscription(first, other), again);
  assert.equal(subscriptionCount(both), 2);
  assert.equal(findSubscription(both, 'x')?.ref, 'r2');
});

it('joins the bus for its channel, leaves it when stopped, and hands ephemeral frames to its socket', () => {
  const s = subscribe('signals');
  assert.equal(bus.listenerCount('signals'), 1);
  const frames = new EphemeralFrames({ channel: 'signals', type: 'typing', data: { who: 'ann' }, time: new Date(0).toISOString() });
  s.ephemeral(frames);
  assert.equal(sent.at(-1), frames.websocket, 'the shared frame itself, not a copy');
  assert.deepEqual(JSON.parse(sent.at(-1)!.toString()), { op: 'ephemeral', channel: 'signals', type: 'typing', data: { who: 'ann' }, time: new Date(0).toISOString() });
  s.stop();
  assert.equal(bus.listenerCount('signals'), 0);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { HeraldEvent } from '@herald/protocol';
import { eventJson, eventListJson, eventWire, sharedEventJson } from './event-json.js';

const event = (n: number): HeraldEvent => ({ id: `evt_${n}`, channel: 'orders', seq: n, type: 'order.paid', data: { n }, time: '2026-11-29T21:50:00.000Z' });

test('a shared JSON is made once per event and reused by every later sender', () => {
  const e = event(1);
  const json = sharedEventJson(e);
  assert.equal(json, JSON.stringify(event(1)));
  (e.data as { n: number }).n = 2;
  assert.equal(sharedEventJson(e), json, 'the second call answers from the event, not by serializing again');
  assert.equal(eventJson(e), json, 'a single sender reuses it');
});

test('without subscribers an event carries nothing: a single sender serializes it and keeps nothing', () => {
  const e = event(3);
  assert.equal(eventJson(e), JSON.stringify(e));
  (e.data as { n: number }).n = 4;
  assert.equal(eventJson(e), JSON.stringify(e), 'made again, since nothing was kept');
  assert.equal(Object.getOwnPropertySymbols(e).length, 0);
});

test('what an event carries is invisible to JSON, keys, spreads and deep comparisons', () => {
  const e = event(5);
  eventWire(e).wsFrame = Buffer.from('frame');
  sharedEventJson(e);
  assert.equal(JSON.stringify(e), JSON.stringify(event(5)));
  assert.deepEqual(Object.keys(e), Object.keys(event(5)));
  assert.deepEqual(e, event(5), 'deepStrictEqual sees enumerable symbols: there are none');
  const copy = { ...e };
  assert.notEqual(eventWire(copy), eventWire(e), 'a copy starts with its own record');
  assert.equal(eventWire(copy).wsFrame, undefined);
  const child = Object.assign(Object.create(e) as HeraldEvent, { data: { n: 6 } });
  assert.equal(eventJson(child), JSON.stringify(child), 'nor does an object made with the event as its prototype');
  assert.equal(eventWire(child).wsFrame, undefined);
});

test('a frozen event still gets its texts, made afresh each time', () => {
  const e = Object.freeze(event(6));
  assert.equal(sharedEventJson(e), JSON.stringify(e));
  assert.notEqual(eventWire(e), eventWire(e));
});

test('a list is written as one array: in one go when nothing is carried, else with each carried text as it was made', () => {
  const plain = [event(7), event(8)];
  assert.equal(eventListJson(plain), `[${JSON.stringify(event(7))},${JSON.stringify(event(8))}]`);
  assert.equal(eventListJson([]), '[]');
  const shared = event(9);
  const text = sharedEventJson(shared);
  (shared.data as { n: number }).n = 10;
  const mixed = [event(7), shared, { ...event(8), data: undefined }];
  assert.equal(eventListJson(mixed), `[${JSON.stringify(event(7))},${text},${JSON.stringify({ ...event(8), data: undefined })}]`);
  assert.notEqual(text, JSON.stringify(shared), 'the carried text, not the event serialized again');
});

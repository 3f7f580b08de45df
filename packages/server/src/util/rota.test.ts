import { afterEach, beforeEach, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { Rota } from './rota.js';

beforeEach(() => mock.timers.enable({ apis: ['setInterval'] }));
afterEach(() => mock.timers.reset());

/** A rota of `n` numbered members over `periodMs`, with how often each was visited and the most visited in one tick. */
function rota(n: number, periodMs: number) {
  const visits = new Map<number, number>();
  let inTick = 0;
  let mostInTick = 0;
  const members = new Rota<number>(periodMs, (member) => {
    visits.set(member, (visits.get(member) ?? 0) + 1);
    inTick += 1;
  });
  for (let i = 0; i < n; i++) members.add(i);
  const tick = (ms: number, step = periodMs / 16) => {
    for (let done = 0; done < ms; done += step) {
      inTick = 0;
      mock.timers.tick(step);
      mostInTick = Math.max(mostInTick, inTick);
    }
  };
  return { members, visits, tick, mostInTick: () => mostInTick };
}

test('visits every member once per period, a sixteenth of them per tick', () => {
  const { visits, tick, mostInTick } = rota(160, 1600);
  tick(100);
  assert.equal(visits.size, 10, 'one tick, one slice');
  tick(1500);
  assert.equal(visits.size, 160);
  assert.ok([...visits.values()].every((n) => n === 1), 'each once in the first period');
  tick(1600);
  assert.ok([...visits.values()].every((n) => n === 2), 'and once in the next');
  assert.equal(mostInTick(), 10, 'never more than a slice in one tick');
});

test('spreads members that join one at a time between visits', () => {
  const { members, visits, tick, mostInTick } = rota(0, 1600);
  for (let i = 0; i < 64; i++) {
    members.add(i);
    if (i % 5 === 0) tick(100);
  }
  visits.clear();
  tick(1600);
  assert.equal(visits.size, 64);
  assert.ok([...visits.values()].every((n) => n === 1));
  assert.equal(mostInTick(), 4);
});

test('keeps the slices even when short-lived members come and go between long-lived ones', () => {
  const { members, visits, tick, mostInTick } = rota(0, 1600);
  // One connection that stays for every fifteen that leave: joining slices in turn would put every stayer in one.
  for (let stayer = 0; stayer < 32; stayer++) {
    members.add(stayer);
    for (let passer = 1000; passer < 1015; passer++) {
      members.add(passer);
      members.delete(passer);
    }
  }
  tick(1600);
  assert.equal(visits.size, 32);
  assert.equal(mostInTick(), 2);
});

test('holds each member once, and stops visiting those that leave', () => {
  const { members, visits, tick } = rota(20, 1600);
  members.add(3);
  assert.equal(members.size, 20);
  assert.deepEqual([...members].sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i));
  assert.equal(members.delete(3), true);
  assert.equal(members.delete(3), false);
  assert.equal(members.has(3), false);
  assert.equal(members.has(4), true);
  tick(3200);
  assert.equal(visits.get(3), undefined);
  assert.equal(visits.get(4), 2);
  assert.equal(members.size, 19);
});

test('stop ends the visits and keeps the members', () => {
  const { members, visits, tick } = rota(20, 1600);
  members.stop();
  tick(3200);
  assert.equal(visits.size, 0);
  assert.equal(members.size, 20);
});

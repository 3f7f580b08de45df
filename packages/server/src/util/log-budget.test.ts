import { it } from 'node:test';
import assert from 'node:assert/strict';
import { LogBudget } from './log-budget.js';

it('admits linesPerSecond per key and counts the rest into the next line admitted', () => {
  const budget = new LogBudget(2);
  const t = 1_000_000;
  assert.deepEqual([budget.admit('a', t), budget.admit('a', t), budget.admit('a', t), budget.admit('a', t)], [{ unlogged: 0 }, { unlogged: 0 }, undefined, undefined]);
  assert.deepEqual(budget.admit('b', t), { unlogged: 0 }, 'each key has its own budget');
  assert.deepEqual(budget.admit('a', t + 500), { unlogged: 2 });
});

it('below one line a second: the first at once, then one per period', () => {
  const budget = new LogBudget(1 / 60);
  const t = 5_000_000;
  assert.deepEqual(budget.admit('x', t), { unlogged: 0 });
  for (let i = 1; i <= 30; i++) assert.equal(budget.admit('x', t + i * 1000), undefined);
  assert.deepEqual(budget.admit('x', t + 60_000), { unlogged: 30 });
});

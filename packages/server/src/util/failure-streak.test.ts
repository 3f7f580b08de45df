import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FailureStreak, STREAK_LOG_MS } from './failure-streak.js';

function recorder() {
  const lines: Array<{ level: string; fields: Record<string, unknown>; message: string }> = [];
  const at = (level: string) => (fields: object, message: string) => void lines.push({ level, fields: fields as Record<string, unknown>, message });
  return { lines, logger: { warn: at('warn'), error: at('error'), info: at('info') } };
}

test('a streak is logged at its first failure, then once per STREAK_LOG_MS with its count, and once when it ends', () => {
  const { lines, logger } = recorder();
  let now = 1_000_000;
  const streak = new FailureStreak(logger, 'node heartbeat', 'warn', () => now);
  const down = new Error('connect ECONNREFUSED');

  streak.succeeded();
  assert.equal(lines.length, 0, 'success with no streak says nothing');

  streak.failed(down);
  assert.deepEqual(lines, [{ level: 'warn', fields: { err: down }, message: 'node heartbeat failed' }]);
  // Every 2 s for just under a minute: nothing more.
  for (let i = 0; i < 29; i++) {
    now += 2000;
    streak.failed(down);
  }
  assert.equal(lines.length, 1);
  now = 1_000_000 + STREAK_LOG_MS;
  streak.failed(down);
  assert.deepEqual(lines[1], { level: 'warn', fields: { err: down, failures: 31 }, message: 'node heartbeat still failing (31 failures in a row)' });
  now += STREAK_LOG_MS - 1;
  streak.failed(down);
  assert.equal(lines.length, 2, 'the next line waits a whole period after the last');

  streak.succeeded();
  assert.deepEqual(lines[2], { level: 'info', fields: { failures: 32 }, message: 'node heartbeat works again after 32 failures in a row' });
  streak.succeeded();
  assert.equal(lines.length, 3);

  // A new streak starts over: its first failure is logged at once.
  now += 1;
  streak.onError(down);
  assert.deepEqual(lines[3], { level: 'warn', fields: { err: down }, message: 'node heartbeat failed' });
});

test('the level is the caller\'s', () => {
  const { lines, logger } = recorder();
  new FailureStreak(logger, 'credential sweep', 'error').failed(new Error('x'));
  assert.equal(lines[0]!.level, 'error');
  assert.equal(lines[0]!.message, 'credential sweep failed');
});

import { it } from 'node:test';
import assert from 'node:assert/strict';
import { PerKeyQueue } from './per-key.js';

const tick = () => new Promise((resolve) => setTimeout(resolve, 1));

it('runs one key’s tasks one at a time, in order, and other keys’ alongside; a failure does not stop the next', async () => {
  const queue = new PerKeyQueue();
  const log: string[] = [];
  const task = (name: string, fail = false) => async () => {
    log.push(`${name} start`);
    await tick();
    log.push(`${name} end`);
    if (fail) throw new Error(name);
    return name;
  };
  const results = await Promise.allSettled([queue.run('a', task('a1', true)), queue.run('a', task('a2')), queue.run('b', task('b1'))]);
  assert.deepEqual(
    results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message)),
    ['a1', 'a2', 'b1'],
  );
  assert.ok(log.indexOf('a1 end') < log.indexOf('a2 start'), `a2 waited for a1: ${log.join(', ')}`);
  assert.ok(log.indexOf('b1 start') < log.indexOf('a1 end'), `b1 did not wait: ${log.join(', ')}`);
  await tick();
  assert.equal(queue.size, 0, 'idle keys hold nothing');
});

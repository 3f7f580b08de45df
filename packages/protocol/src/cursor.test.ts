import { it } from 'node:test';
import assert from 'node:assert/strict';
import { HeraldError } from './errors.js';
import { decodeCursor, encodeCursor } from './cursor.js';

it('round-trips positions and refuses cursors it did not make', () => {
  const positions = new Map([['a', 3], ['user:1', 0]]);
  assert.deepEqual(decodeCursor(encodeCursor(positions)), positions);
  assert.equal(decodeCursor(undefined).size, 0);
  for (const bad of ['!!!', Buffer.from('{"v":2,"p":{}}').toString('base64url'), Buffer.from('{"v":1,"p":{"a":-1}}').toString('base64url'), Buffer.from('{"v":1,"p":{"bad name":1}}').toString('base64url')]) {
    assert.throws(() => decodeCursor(bad), (e: unknown) => e instanceof HeraldError && e.code === 'invalid_cursor');
  }
});

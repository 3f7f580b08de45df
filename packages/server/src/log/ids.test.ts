import { it } from 'node:test';
import assert from 'node:assert/strict';
import { newEventId } from './ids.js';

it('makes unique, time-ordered ULID ids', () => {
  const ids = Array.from({ length: 10_000 }, () => newEventId());
  for (const id of ids) assert.match(id, /^evt_[0-9A-HJKMNP-TV-Z]{26}$/);
  assert.equal(new Set(ids).size, ids.length);
  assert.deepEqual([...ids].sort(), ids, 'creation order is sort order, within a millisecond too');
  const later = newEventId(Date.now() + 60_000);
  assert.ok(later > ids.at(-1)!);
  // The time part is the ULID encoding of the millisecond (checked against the ulidx library's encodeTime).
  assert.equal(newEventId(Date.UTC(2030, 0, 1)).slice(4, 14), '01Q3DCBD00');
});

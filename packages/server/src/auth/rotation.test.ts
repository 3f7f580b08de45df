import { it } from 'node:test';
import assert from 'node:assert/strict';
import { liveSecrets, MAX_PREVIOUS_SECRETS, rotate } from './rotation.js';

it('keeps old secrets for the grace period only, never extending an earlier expiry', () => {
  const now = 1_000_000;
  const once = rotate([{ secret: 'a' }], 'b', 60, now);
  assert.deepEqual(once, [{ secret: 'b' }, { secret: 'a', expiresAt: now + 60_000 }]);
  const twice = rotate(once, 'c', 3600, now + 1000);
  assert.deepEqual(twice, [{ secret: 'c' }, { secret: 'b', expiresAt: now + 1000 + 3_600_000 }, { secret: 'a', expiresAt: now + 60_000 }]);
  assert.deepEqual(liveSecrets(twice, now + 61_000).map((s) => s.secret), ['c', 'b']);
  assert.deepEqual(rotate(twice, 'd', 0, now), [{ secret: 'd' }]);
});

it(`keeps at most ${MAX_PREVIOUS_SECRETS} previous secrets, the newest: rotating in a loop cannot grow every signature header`, () => {
  let secrets = [{ secret: 's0' }] as ReturnType<typeof rotate>;
  for (let i = 1; i <= 1000; i++) secrets = rotate(secrets, `s${i}`, 30 * 86_400, 1_000_000 + i);
  assert.deepEqual(
    secrets.map((s) => s.secret),
    ['s1000', 's999', 's998', 's997'],
  );
});

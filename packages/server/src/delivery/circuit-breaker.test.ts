import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CircuitBreaker } from './circuit-breaker.js';

const settings = { failures: 3, cooldownMs: 1000, maxCooldownMs: 5000 };

/** A breaker opened at t = 0 by `settings.failures` failures. */
function opened(s = settings): CircuitBreaker {
  const b = new CircuitBreaker(s);
  for (let i = 0; i < s.failures; i++) b.record(false, 0);
  return b;
}

describe('CircuitBreaker', () => {
  it('stays closed below `failures` failures in a row, and a success starts the count again', () => {
    const b = new CircuitBreaker(settings);
    assert.equal(b.record(false, 0), undefined);
    assert.equal(b.record(false, 0), undefined);
    assert.equal(b.record(true, 0), undefined, 'closing a closed circuit is no change');
    assert.equal(b.record(false, 0), undefined);
    assert.equal(b.record(false, 0), undefined);
    assert.equal(b.admits(0), 'all');
    assert.equal(b.open, false);
  });

  it('opens at `failures` failures in a row, admitting nothing until the cooldown ends', () => {
    const b = new CircuitBreaker(settings);
    b.record(false, 0);
    b.record(false, 0);
    assert.deepEqual(b.record(false, 100), { to: 'open', failures: 3, cooldownMs: 1000, probeFailed: false });
    assert.equal(b.open, true);
    assert.equal(b.admits(100), 'none');
    assert.equal(b.admits(1099), 'none');
    assert.equal(b.probeAt(), 1100);
    assert.equal(b.admits(1100), 'probe');
  });

  it('admits one probe at a time: none while it is under way', () => {
    const b = opened();
    assert.equal(b.admits(1000), 'probe');
    b.probeStarted();
    assert.equal(b.admits(1000), 'none');
    assert.equal(b.admits(60_000), 'none');
    assert.equal(b.probeAt(), undefined, 'no wake-up for a probe while one is under way');
  });

  it('closes when the probe succeeds, and starts afresh (the next opening has the first cooldown again)', () => {
    const b = opened();
    const probe = b.probeStarted();
    assert.deepEqual(b.record(true, 1200, probe), { to: 'closed', failures: 3 });
    assert.equal(b.admits(1200), 'all');
    assert.equal(b.record(false, 2000), undefined);
    assert.equal(b.record(false, 2000), undefined);
    assert.deepEqual(b.record(false, 2000), { to: 'open', failures: 3, cooldownMs: 1000, probeFailed: false });
  });

  it('opens again after a failed probe, doubling the cooldown up to maxCooldown', () => {
    const b = opened();
    const cooldowns: number[] = [];
    let now = 0;
    for (let i = 0; i < 5; i++) {
      now = b.probeAt()!;
      assert.equal(b.admits(now), 'probe');
      const change = b.record(false, now, b.probeStarted());
      assert.equal(change?.to, 'open');
      if (change?.to === 'open') cooldowns.push(change.cooldownMs);
      assert.equal(b.admits(now), 'none');
    }
    assert.deepEqual(cooldowns, [2000, 4000, 5000, 5000, 5000]);
    assert.equal(b.probeAt(), now + 5000);
  });

  it('ignores failures of attempts that were under way when it opened: they do not push the probe out', () => {
    const b = opened();
    assert.equal(b.record(false, 500), undefined);
    assert.equal(b.record(false, 900), undefined);
    assert.equal(b.probeAt(), 1000);
    // Nor does a late answer of an older probe count as the one under way.
    const old = b.probeStarted();
    assert.equal(b.record(false, 1000, old)?.to, 'open');
    assert.equal(b.admits(3000), 'probe');
    const current = b.probeStarted();
    assert.equal(b.record(false, 3000, old), undefined, 'the old probe’s second answer is not the current probe’s');
    assert.equal(b.admits(3000), 'none', 'the current probe is still under way');
    assert.equal(b.record(false, 3000, current)?.to, 'open');
  });

  it('closes on any success, an attempt under way when it opened included', () => {
    const b = opened();
    assert.deepEqual(b.record(true, 10), { to: 'closed', failures: 3 });
    assert.equal(b.admits(10), 'all');
  });

  it('lets another probe go when the one under way was lost without an answer', () => {
    const b = opened();
    const probe = b.probeStarted();
    b.probeLost(probe);
    assert.equal(b.admits(1000), 'probe');
    assert.equal(b.open, true);
  });

  it('reset closes it at once and forgets the failures', () => {
    const b = opened();
    assert.equal(b.reset(), true);
    assert.equal(b.admits(0), 'all');
    assert.equal(b.reset(), false, 'was closed already');
    b.record(false, 0);
    b.record(false, 0);
    assert.equal(b.open, false, 'the count started again');
  });

  it('never opens with failures 0', () => {
    const b = new CircuitBreaker({ ...settings, failures: 0 });
    for (let i = 0; i < 1000; i++) assert.equal(b.record(false, i), undefined);
    assert.equal(b.admits(1000), 'all');
  });

  it('a longest cooldown below the first one wins', () => {
    const b = opened({ failures: 1, cooldownMs: 10_000, maxCooldownMs: 2000 });
    assert.equal(b.probeAt(), 2000);
  });
});

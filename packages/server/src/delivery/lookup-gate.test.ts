import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { LookupAddress } from 'node:dns';
import { LookupGate, threadPoolSize, type ResolveAll } from './lookup-gate.js';

/** A resolver that answers only when the test says so, recording what it was asked. */
function heldResolver() {
  const asked: Array<{ hostname: string; answer: (addresses: LookupAddress[]) => void; fail: (code: string) => void }> = [];
  const resolve: ResolveAll = (hostname, _options, callback) => {
    asked.push({
      hostname,
      answer: (addresses) => callback(null, addresses),
      fail: (code) => callback(Object.assign(new Error(code), { code }), []),
    });
  };
  return { asked, resolve };
}

function ask(gate: LookupGate, hostname: string) {
  const outcome: { addresses?: string[]; code?: string | undefined } = {};
  const done = new Promise<void>((resolve) =>
    gate.resolve(hostname, { all: true }, (err, addresses) => {
      if (err) outcome.code = err.code;
      else outcome.addresses = addresses.map((a) => a.address);
      resolve();
    }),
  );
  return { outcome, done };
}

const address = (a: string): LookupAddress[] => [{ address: a, family: 4 }];

describe('LookupGate', () => {
  it('runs at most its slots of lookups at once and starts the waiting ones in order as slots free', async () => {
    const held = heldResolver();
    const gate = new LookupGate(2, { resolve: held.resolve, timeoutMs: 60_000 });
    const calls = ['a.test', 'b.test', 'c.test', 'd.test'].map((name) => ask(gate, name));
    assert.deepEqual(held.asked.map((q) => q.hostname), ['a.test', 'b.test'], 'two slots: two lookups, the others wait');
    assert.equal(gate.pending, 4);
    held.asked[1]!.answer(address('192.0.2.2'));
    await calls[1]!.done;
    assert.deepEqual(calls[1]!.outcome.addresses, ['192.0.2.2']);
    assert.deepEqual(held.asked.map((q) => q.hostname), ['a.test', 'b.test', 'c.test'], 'the first waiting one takes the freed slot');
    held.asked[0]!.fail('EAI_AGAIN');
    await calls[0]!.done;
    assert.equal(calls[0]!.outcome.code, 'EAI_AGAIN', 'a failed lookup is passed on as it failed');
    assert.deepEqual(held.asked.map((q) => q.hostname), ['a.test', 'b.test', 'c.test', 'd.test']);
    held.asked[2]!.answer(address('192.0.2.3'));
    held.asked[3]!.answer(address('192.0.2.4'));
    await Promise.all(calls.map((c) => c.done));
    assert.equal(gate.pending, 0);
  });

  it('answers a caller by its deadline, running or waiting, and never starts a lookup for one that gave up waiting', async () => {
    const held = heldResolver();
    const gate = new LookupGate(1, { resolve: held.resolve, timeoutMs: 50 });
    const running = ask(gate, 'slow.test');
    const waiting = ask(gate, 'other.test');
    await Promise.all([running.done, waiting.done]);
    assert.equal(running.outcome.code, 'ETIMEOUT');
    assert.equal(waiting.outcome.code, 'ETIMEOUT');
    assert.deepEqual(held.asked.map((q) => q.hostname), ['slow.test'], 'the waiting caller left the queue');
    assert.equal(gate.pending, 1, 'the running lookup keeps its slot until it returns: it cannot be called off');
    held.asked[0]!.answer(address('192.0.2.9'));
    assert.equal(gate.pending, 0);
    assert.equal(running.outcome.code, 'ETIMEOUT', 'an answer after the deadline reaches no one');
    const next = ask(gate, 'next.test');
    assert.deepEqual(held.asked.map((q) => q.hostname), ['slow.test', 'next.test'], 'the slot is free again');
    held.asked[1]!.answer(address('192.0.2.10'));
    await next.done;
    assert.deepEqual(next.outcome.addresses, ['192.0.2.10']);
  });

  it('lets callers of a name being resolved share its lookup, waiting ones included', async () => {
    const held = heldResolver();
    const gate = new LookupGate(1, { resolve: held.resolve, timeoutMs: 60_000 });
    const first = ask(gate, 'same.test');
    const other = ask(gate, 'other.test');
    const second = ask(gate, 'same.test');
    assert.deepEqual(held.asked.map((q) => q.hostname), ['same.test']);
    held.asked[0]!.answer(address('192.0.2.1'));
    await Promise.all([first.done, second.done]);
    assert.deepEqual(second.outcome.addresses, ['192.0.2.1'], 'one getaddrinfo for both');
    assert.deepEqual(held.asked.map((q) => q.hostname), ['same.test', 'other.test']);
    held.asked[1]!.answer(address('192.0.2.2'));
    await other.done;
  });

  it('a narrowed gate takes at most its own slots of its parent, so the parent keeps the rest for others', async () => {
    const held = heldResolver();
    const parent = new LookupGate(2, { resolve: held.resolve, timeoutMs: 60_000 });
    const tenant = parent.narrowed(1);
    const tenantCalls = ['t1.test', 't2.test', 't3.test'].map((name) => ask(tenant, name));
    assert.deepEqual(held.asked.map((q) => q.hostname), ['t1.test'], 'one of the tenant lookups reaches the resolver');
    const platform = ask(parent, 'platform.test');
    assert.deepEqual(held.asked.map((q) => q.hostname), ['t1.test', 'platform.test'], 'the platform gets the other slot at once');
    held.asked[1]!.answer(address('192.0.2.7'));
    await platform.done;
    assert.deepEqual(platform.outcome.addresses, ['192.0.2.7']);
    held.asked[0]!.answer(address('192.0.2.1'));
    await tenantCalls[0]!.done;
    assert.deepEqual(held.asked.map((q) => q.hostname), ['t1.test', 'platform.test', 't2.test']);
    held.asked[2]!.answer(address('192.0.2.2'));
    await tenantCalls[1]!.done;
    held.asked[3]!.answer(address('192.0.2.3'));
    await tenantCalls[2]!.done;
  });

  it("sizes itself from libuv's pool", () => {
    assert.equal(threadPoolSize({}), 4);
    assert.equal(threadPoolSize({ UV_THREADPOOL_SIZE: '16' }), 16);
    assert.equal(threadPoolSize({ UV_THREADPOOL_SIZE: 'x' }), 4);
    assert.throws(() => new LookupGate(0), RangeError);
  });
});

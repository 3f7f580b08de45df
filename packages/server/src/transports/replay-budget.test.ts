import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { ReplayBudget, SocketReplays } from './replay-budget.js';
import type { RawSocket } from './outbox.js';

const MB = 1024 * 1024;

describe('ReplayBudget', () => {
  it('grants while there is room, then in turn, readers along first; one reservation always goes when nothing is held', () => {
    const budget = new ReplayBudget(2 * MB);
    const granted: string[] = [];
    assert.equal(budget.take(3 * MB, false, () => granted.push('huge')), undefined, 'nothing held: even a page over the budget goes');
    assert.equal(budget.held, 3 * MB);
    budget.give(3 * MB);
    assert.equal(budget.take(MB, false, () => {}), undefined);
    assert.equal(budget.take(MB, false, () => {}), undefined);
    assert.equal(budget.contended, false);
    const withdrawA = budget.take(MB, false, () => granted.push('a'));
    budget.take(MB, false, () => granted.push('b'));
    budget.take(MB, true, () => granted.push('reader'));
    const withdrawC = budget.take(MB, false, () => granted.push('c'));
    assert.ok(withdrawA && withdrawC);
    assert.equal(budget.contended, true);
    withdrawA();
    budget.give(MB);
    assert.deepEqual(granted, ['reader'], 'a reservation of a client reading along goes before the others');
    budget.give(2 * MB);
    assert.deepEqual(granted, ['reader', 'b', 'c']);
    assert.equal(budget.held, 2 * MB);
  });
});

/** A socket whose unsent bytes the test sets, as the kernel taking them would. */
function fakeSocket(): RawSocket & EventEmitter & { writableLength: number } {
  return Object.assign(new EventEmitter(), { writableLength: 0, destroyed: false, writable: true, write: () => true });
}

describe('SocketReplays', () => {
  it('holds what a page queued until the socket has sent it, and gives everything back when the socket closes', async () => {
    const budget = new ReplayBudget(8 * MB);
    const socket = fakeSocket();
    let idle = 0;
    const outlet = { buffered: 0 };
    const ledger = new SocketReplays(budget, outlet, socket, 60_000, () => assert.fail('not stalled'), () => idle++);
    const page = ledger.reserve(MB, false);
    assert.equal(page.ready, undefined);
    assert.equal(budget.held, MB);
    // The page queues 600 KB, all still unsent.
    ledger.queued += 600_000;
    outlet.buffered = 600_000;
    page.done();
    assert.equal(budget.held, 600_000, 'the rest of the reservation is given back');
    // The socket sends 400 KB of it: released when it drains or writes again.
    outlet.buffered = 200_000;
    socket.emit('drain');
    assert.equal(budget.held, 200_000);
    const next = ledger.reserve(MB, true);
    ledger.queued += 100_000;
    outlet.buffered = 300_000;
    next.done();
    assert.equal(budget.held, 300_000);
    socket.emit('close');
    assert.equal(budget.held, 0);
    assert.equal(idle, 1);
    assert.equal(socket.listenerCount('drain') + socket.listenerCount('close'), 0, 'its listeners are gone');
  });

  it('forgets itself once everything is sent, and a waiting reservation withdrawn leaves no trace', async () => {
    const budget = new ReplayBudget(MB);
    const other = budget.take(MB, false, () => {});
    assert.equal(other, undefined);
    const socket = fakeSocket();
    let idle = 0;
    const ledger = new SocketReplays(budget, { buffered: 0 }, socket, 60_000, () => {}, () => idle++);
    const waiting = ledger.reserve(MB, false);
    assert.ok(waiting.ready);
    waiting.done();
    await waiting.ready;
    assert.equal(idle, 1);
    budget.give(MB);
    assert.equal(budget.held, 0, 'the withdrawn reservation was not granted');
  });

  it('calls a connection stalled once it has sent nothing of its pages for the stall timeout', async () => {
    const budget = new ReplayBudget(8 * MB);
    const socket = fakeSocket();
    const outlet = { buffered: 0 };
    let stalled = 0;
    const ledger = new SocketReplays(budget, outlet, socket, 1000, () => stalled++, () => {});
    const page = ledger.reserve(MB, false);
    ledger.queued += 500_000;
    outlet.buffered = 500_000;
    page.done();
    await new Promise((resolve) => setTimeout(resolve, 2600));
    assert.equal(stalled, 1);
    assert.equal(budget.held, 500_000, 'held until the connection is gone');
    socket.emit('close');
    assert.equal(budget.held, 0);
  });
});

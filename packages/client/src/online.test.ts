// The `online` event, in Node: an EventTarget and a `navigator.onLine` installed on globalThis stand in for a
// browser's window (the browser itself is in test/online.e2e.test.ts). No server: every poll fails at once.
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { getEventListeners, setMaxListeners } from 'node:events';
import { Herald, type ConnectionState } from './client.js';
import { sleep, until } from '../../server/test/support/wait.js';

/** The backoff after a failure: up to an hour, far beyond every wait here. */
const HOUR = 3_600_000;

describe('the online event', () => {
  let window: EventTarget;
  let polls = 0;
  /** Closed after each test, pass or fail: a client left waiting out its hour would hold the test run for it. */
  const clients: Herald[] = [];
  const scope = globalThis as Record<string, unknown>;
  const saved = ['addEventListener', 'removeEventListener', 'navigator'].map((name) => [name, Object.getOwnPropertyDescriptor(globalThis, name)] as const);

  beforeEach(() => {
    window = new EventTarget();
    // Twenty clients below listen at once, by design: not the leak Node warns of past ten.
    setMaxListeners(50, window);
    polls = 0;
    Object.defineProperty(globalThis, 'addEventListener', { value: window.addEventListener.bind(window), configurable: true, writable: true });
    Object.defineProperty(globalThis, 'removeEventListener', { value: window.removeEventListener.bind(window), configurable: true, writable: true });
    Object.defineProperty(globalThis, 'navigator', { value: { onLine: true }, configurable: true, writable: true });
  });

  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
    for (const [name, descriptor] of saved) {
      if (descriptor) Object.defineProperty(globalThis, name, descriptor);
      else delete scope[name];
    }
  });

  /** A client whose every attempt fails at once (a network that is gone), then waits up to an hour. */
  function offlineClient(backoff = { baseMs: HOUR, maxMs: HOUR }): { herald: Herald; states: ConnectionState[] } {
    const herald = new Herald({
      url: 'http://herald.test',
      token: 'token',
      transports: ['poll'],
      backoff,
      fetch: async () => {
        polls += 1;
        throw new TypeError('Failed to fetch');
      },
    });
    clients.push(herald);
    const states: ConnectionState[] = [];
    herald.on('state', (state) => states.push(state));
    herald.subscribe('room', () => {});
    return { herald, states };
  }

  const settled = () => new Promise((resolve) => setTimeout(resolve, 20));

  it('reconnects at once a client waiting out its backoff, and a closed one not at all', async () => {
    const { herald, states } = offlineClient();
    await settled();
    assert.deepEqual(states, ['connecting', 'disconnected']);
    assert.equal(getEventListeners(window, 'online').length, 1);

    window.dispatchEvent(new Event('online'));
    await settled();
    assert.deepEqual(states, ['connecting', 'disconnected', 'connecting', 'disconnected'], 'an attempt at once, not in up to an hour');
    assert.equal(polls, 2);

    herald.close();
    assert.equal(getEventListeners(window, 'online').length, 0, 'close() removes the listener');
    window.dispatchEvent(new Event('online'));
    await settled();
    assert.equal(polls, 2);
    assert.equal(states.at(-1), 'disconnected');
  });

  it('starts the backoff over', async (t) => {
    // No jitter: the delay after the nth failure in a row is exactly 2^n ms.
    t.mock.method(Math, 'random', () => 1);
    offlineClient({ baseMs: 1, maxMs: HOUR });
    // Ten delays waited (1 + 2 + … + 512 ms): the next is 1024 ms.
    await until(() => polls >= 11, 5000, 'eleven attempts');
    const before = polls;
    window.dispatchEvent(new Event('online'));
    await sleep(200);
    // One attempt at once, then 1, 2, 4, 8… ms apart; without the reset, one attempt and 1024 ms.
    assert.ok(polls >= before + 4, `${polls - before} attempts in 200 ms after online`);
  });

  it('leaves no listener behind for clients made and closed', async () => {
    const clients = Array.from({ length: 20 }, () => offlineClient().herald);
    await settled();
    assert.equal(getEventListeners(window, 'online').length, 20);
    for (const c of clients) c.close();
    assert.equal(getEventListeners(window, 'online').length, 0);
  });

  it('listens to nothing where there is no navigator.onLine (Node)', async () => {
    delete scope.navigator;
    const { herald } = offlineClient();
    await settled();
    assert.equal(getEventListeners(window, 'online').length, 0);
    herald.close();
  });
});

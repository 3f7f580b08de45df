// Subscriptions that change while the transport is down and a health probe is already running (its SUBSCRIBE of
// every wanted topic sent, its token not back yet). On a loaded machine start-up gives up waiting for the link
// (SignalBus waits 1 s) and subscribes while such a probe runs: a node then never heard presence at all.
import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis, redisCli, type RedisProcess } from '../../../test/support/redis.js';
import { until } from '../../../test/support/wait.js';
import type { BusState } from '../types.js';
import type { TransportHandler } from '../transport.js';
import { RedisTransport, type RedisTransportOptions } from './redis-transport.js';
import { RedisTopics } from './topics.js';
import { parseRedisUrl } from './url.js';

let redis: RedisProcess;
let run = 0;
/** Closed after every test, passed or failed: an open transport keeps the test process alive. */
const open: RedisTransport[] = [];
before(async () => {
  redis = await startRedis();
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((transport) => transport.close()));
});
after(async () => {
  await redis?.stop();
});

/** A transport whose messages and states are recorded, on a prefix of its own test's. */
function recorded(prefix: string, options?: RedisTransportOptions) {
  const received: string[] = [];
  const states: BusState[] = [];
  const transport = new RedisTransport(parseRedisUrl(`${redis.url}?prefix=${prefix}`), options);
  open.push(transport);
  const handler: TransportHandler = { message: (_kind, message) => received.push(message), state: (state) => states.push(state), error: () => {} };
  return { transport, handler, received, up: () => states.at(-1) === 'up', down: () => states.at(-1) === 'down' };
}

/**
 * Starts `late` with its first probe stuck after its SUBSCRIBE: PUBLISH waits while clients' writes are paused,
 * SUBSCRIBE does not. Start-up gives up waiting first, as SignalBus's does on a loaded machine: the state is down.
 */
async function startDuringStuckProbe(late: ReturnType<typeof recorded>): Promise<void> {
  await redisCli(redis.port, 'CLIENT', 'PAUSE', '900', 'WRITE');
  await late.transport.start(late.handler, 300);
  assert.equal(late.up(), false, 'still down when start-up stops waiting');
}

const subscribers = async (name: string) => Number((await redisCli(redis.port, 'PUBSUB', 'NUMSUB', name)).split('\n')[1]);

describe('RedisTransport: subscriptions changed while the probe that brings the link up runs', () => {
  it('a topic subscribed then is subscribed before the state says up, and hears what is sent to it', async () => {
    const prefix = `race${(run += 1)}`;
    const sender = recorded(prefix);
    const late = recorded(prefix);
    await sender.transport.start(sender.handler, 5000);
    await startDuringStuckProbe(late);
    // What PresenceSync.start() does next: subscribe while down.
    await late.transport.subscribe({ channel: '!presence' });
    await until(late.up, 5000, 'up');
    assert.equal(await subscribers(new RedisTopics(prefix).channel('!presence')), 1, 'subscribed once up');
    await sender.transport.send({ channel: '!presence' }, 'hello');
    await until(() => late.received.includes('hello'), 5000, 'the message heard');
  });

  it('a topic dropped then is unsubscribed before the state says up', async () => {
    const prefix = `race${(run += 1)}`;
    const late = recorded(prefix);
    // Wanted before start: the stuck probe's resubscription sends it.
    await late.transport.subscribe({ channel: 'gone' });
    await startDuringStuckProbe(late);
    const name = new RedisTopics(prefix).channel('gone');
    await until(async () => (await subscribers(name)) === 1, 5000, 'the resubscription sent');
    late.transport.unsubscribe({ channel: 'gone' });
    await until(late.up, 5000, 'up');
    assert.equal(await subscribers(name), 0, 'unsubscribed once up');
  });

  it('a topic dropped while a live subscriber was down (its probe timed out) is unsubscribed once up', async () => {
    const prefix = `race${(run += 1)}`;
    const t = recorded(prefix, { healthIntervalMs: 200, healthTimeoutMs: 500 });
    await t.transport.start(t.handler, 5000);
    assert.ok(t.up());
    await t.transport.subscribe({ channel: 'x' });
    const name = new RedisTopics(prefix).channel('x');
    assert.equal(await subscribers(name), 1);
    // The probe's PUBLISH waits past its timeout: down, on a socket that keeps its subscriptions.
    await redisCli(redis.port, 'CLIENT', 'PAUSE', '1500', 'WRITE');
    await until(t.down, 5000, 'down');
    t.transport.unsubscribe({ channel: 'x' });
    await until(t.up, 5000, 'up again');
    assert.equal(await subscribers(name), 0, 'unsubscribed once up');
  });
});

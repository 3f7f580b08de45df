import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import type { PresenceAction } from '@herald/protocol';
import type { BusTransport, Topic, TransportHandler } from '../bus/transport.js';
import { PresenceRegistry, type MemberRecord } from './registry.js';
import { SignalBus } from './signal-bus.js';
import { PresenceSync } from './sync.js';
import { until } from '../../test/support/wait.js';

const topicName = (topic: Topic) => (topic === 'all' ? 'all' : topic.channel);

/** Nodes' transports wired together in memory; `drop` decides which messages are lost on the way. */
class Wire {
  readonly transports = new Set<MemoryTransport>();
  drop: (from: MemoryTransport, to: MemoryTransport, message: string) => boolean = () => false;
}

class MemoryTransport implements BusTransport {
  readonly maxMessageBytes = 8000;
  handler: TransportHandler | undefined;
  readonly topics = new Set<string>();

  constructor(private readonly wire: Wire) {}

  async start(handler: TransportHandler): Promise<void> {
    this.handler = handler;
    this.wire.transports.add(this);
    handler.state('up');
  }
  async subscribe(topic: Topic): Promise<void> {
    this.topics.add(topicName(topic));
  }
  unsubscribe(topic: Topic): void {
    this.topics.delete(topicName(topic));
  }
  async publish(): Promise<void> {
    throw new Error('not used by signals');
  }
  async send(topic: Topic, message: string): Promise<void> {
    for (const to of this.wire.transports) {
      if (to.topics.has(topicName(topic)) && !this.wire.drop(this, to, message)) setImmediate(() => to.handler?.message('channel', message));
    }
  }
  async close(): Promise<void> {
    this.wire.transports.delete(this);
  }
}

interface Node {
  registry: PresenceRegistry;
  sync: PresenceSync;
  transport: MemoryTransport;
  changes: Array<[PresenceAction, string]>;
}

describe('PresenceSync', () => {
  const syncs: PresenceSync[] = [];
  after(async () => {
    for (const sync of syncs) await sync.stop();
  });

  /**
   * A node on `wire`; with `errors`, what it reports goes there instead of failing the test. It beats every 40 ms,
   * but takes a peer for dead only after 10 s of silence: three beats (120 ms) is less than a loaded machine can stall
   * this process for, and the peer's members would leave mid-test. The test of that timeout passes `{ announceMs: 40 }`.
   */
  async function node(wire: Wire, id: string, errors?: unknown[], timing: { announceMs: number; silentMs?: number } = { announceMs: 40, silentMs: 10_000 }): Promise<Node> {
    const transport = new MemoryTransport(wire);
    const onError = (error: unknown) => (errors ? errors.push(error) : assert.fail(String(error)));
    const bus = await SignalBus.over(transport, onError);
    const registry = new PresenceRegistry();
    const changes: Node['changes'] = [];
    const sync = new PresenceSync(bus, registry, id, (action, record) => changes.push([action, record.client]), onError, timing);
    syncs.push(sync);
    sync.start();
    return { registry, sync, transport, changes };
  }

  function localJoin(n: Node, id: string, client: string): MemberRecord {
    const record = { channel: 'room', client, sub: 'u', info: null, node: id };
    n.registry.add(record);
    n.sync.joined(record);
    return record;
  }

  it('a node that starts late gets the others’ members from a snapshot', async () => {
    const wire = new Wire();
    const a = await node(wire, 'a');
    localJoin(a, 'a', 'c1');
    localJoin(a, 'a', 'c2');
    const b = await node(wire, 'b');
    await until(() => b.registry.count('room') === 2, 3000, 'snapshot');
    assert.deepEqual(b.changes.map(([action]) => action), ['join', 'join']);
  });

  it('a lost join is repaired: the next beat shows a version the receiver did not see, and it asks for a snapshot', async () => {
    const wire = new Wire();
    const a = await node(wire, 'a');
    const b = await node(wire, 'b');
    localJoin(a, 'a', 'c1');
    await until(() => b.registry.count('room') === 1, 3000, 'first join');
    let lost = 0;
    wire.drop = (from, to, message) => from === a.transport && to === b.transport && message.includes('"t":"join"') && ++lost === 1;
    localJoin(a, 'a', 'c2');
    await until(() => b.registry.get('room', 'c2') !== undefined, 3000, 'repaired by a snapshot');
    assert.equal(lost, 1);
    assert.deepEqual(b.changes, [
      ['join', 'c1'],
      ['join', 'c2'],
    ]);
  });

  it('a second lost join soon after the first is repaired too, though the ask it needs is held back a while', async () => {
    const wire = new Wire();
    const a = await node(wire, 'a');
    const b = await node(wire, 'b');
    localJoin(a, 'a', 'c0');
    await until(() => b.registry.count('room') === 1, 3000, 'first join');
    wire.drop = (from, to, message) => from === a.transport && to === b.transport && /"t":"join".*"(c1|c3)"/.test(message);
    localJoin(a, 'a', 'c1');
    localJoin(a, 'a', 'c2');
    // c2's version shows c1 was missed: B asks, and the snapshot brings c1.
    await until(() => b.registry.get('room', 'c1') !== undefined, 6000, 'the first gap repaired');
    // Lost again within ASK_AGAIN_MS of that ask: B may not ask at once, and c4's version is the one beats carry.
    localJoin(a, 'a', 'c3');
    localJoin(a, 'a', 'c4');
    await until(() => b.registry.get('room', 'c4') !== undefined, 3000, 'c4');
    await until(() => b.registry.get('room', 'c3') !== undefined, 6000, 'the second gap repaired at a later beat');
    assert.deepEqual(b.registry.ofNode('a').map((record) => record.client).sort(), ['c0', 'c1', 'c2', 'c3', 'c4']);
  });

  it('a member too big for the wire is left out of snapshots, so the gap its refused join left closes once', async () => {
    const wire = new Wire();
    const errors: unknown[] = [];
    const a = await node(wire, 'a', errors);
    const b = await node(wire, 'b');
    localJoin(a, 'a', 'c0');
    await until(() => b.registry.count('room') === 1, 3000, 'first join');
    // The snapshot A sends for B's start (20 ms after B says hello) goes first: only those after are counted.
    await new Promise((resolve) => setTimeout(resolve, 100));
    let snapshots = 0;
    wire.drop = (from, to, message) => {
      if (from === a.transport && to === b.transport && message.includes('"t":"snap"')) snapshots += 1;
      return false;
    };
    const big = { channel: 'room', client: 'big', sub: 'u'.repeat(9000), info: null, node: 'a' };
    a.registry.add(big);
    a.sync.joined(big);
    // c1's version shows B the join it never got: B asks, and one snapshot, without the big member, answers.
    localJoin(a, 'a', 'c1');
    await until(() => b.registry.get('room', 'c1') !== undefined, 3000, 'c1');
    await new Promise((resolve) => setTimeout(resolve, 4500));
    assert.ok(errors.some((error) => (error as { code?: string }).code === 'payload_too_large'), 'the big join was refused');
    assert.equal(snapshots, 1, 'one snapshot closed the gap; none asked for at later beats');
    assert.equal(b.registry.get('room', 'big'), undefined);
    assert.deepEqual(b.registry.ofNode('a').map((record) => record.client).sort(), ['c0', 'c1']);
  });

  it('leaves reach the others, and a silent node’s members leave after three missed beats', async () => {
    const wire = new Wire();
    const a = await node(wire, 'a');
    const b = await node(wire, 'b', undefined, { announceMs: 40 });
    const r1 = localJoin(a, 'a', 'c1');
    localJoin(a, 'a', 'c2');
    await until(() => b.registry.count('room') === 2, 3000, 'joins');
    a.registry.remove(r1.channel, r1.client);
    a.sync.left(r1);
    await until(() => b.registry.count('room') === 1, 3000, 'leave');
    // A goes silent (a kill -9): nothing more from it.
    wire.drop = (from) => from === a.transport;
    const silentSince = Date.now();
    await until(() => b.registry.count('room') === 0, 3000, 'eviction');
    assert.ok(Date.now() - silentSince >= 100, 'not before three beats were missed');
    assert.deepEqual(b.changes.at(-1), ['leave', 'c2']);
  });

  it('a node that restarts under the same id replaces what its previous run had', async () => {
    const wire = new Wire();
    const a = await node(wire, 'a');
    const b = await node(wire, 'b');
    localJoin(a, 'a', 'old');
    await until(() => b.registry.count('room') === 1, 3000, 'join');
    wire.drop = (from) => from === a.transport; // the old run dies
    const again = await node(wire, 'a');
    localJoin(again, 'a', 'new');
    await until(() => b.registry.get('room', 'old') === undefined && b.registry.get('room', 'new') !== undefined, 3000, 'replaced');
    assert.deepEqual(b.changes, [
      ['join', 'old'],
      ['leave', 'old'],
      ['join', 'new'],
    ]);
  });
});

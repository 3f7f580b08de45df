import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import type { HeraldEvent } from '@herald/protocol';
import { EventLog } from '../log/event-log.js';
import type { EventStore } from '../store/types.js';
import type { Bus, BusState } from './types.js';
import { ClusterBus } from './cluster-bus.js';
import { decodeMessage } from './message.js';
import { createBus } from './create.js';
import { openSqliteStorage } from '../store/sqlite/open.js';
import { faultyLinkTo, type FaultyLink } from '../../test/support/faulty-link.js';

export interface BusHarness {
  /** The shared log every node appends to. */
  store: EventStore;
  /**
   * A bus as one more node of the cluster would open it, on the shared link and log. LocalBus: the same one each time.
   * `wholeLogChannels`: how many channels a networked bus remembers for whole-log listeners that give their position.
   */
  node(options?: { wholeLogChannels?: number }): Promise<Bus>;
  /** How many connections subscribe on the server to a channel's topic ('all': the all-topic), where the server can tell. */
  subscriptions?(channel: string | 'all'): Promise<number>;
  /** Cuts the link between every node, and brings it back (same address); absent for an in-process bus. */
  outage?: { cut(): Promise<void>; restore(): Promise<void> };
  /** A node whose link alone can be cut, while the others' stays up; absent where nodes cannot be given links of their own. */
  isolatedNode?(): Promise<{ bus: Bus; cut(): void; blackhole(): void; restore(): void }>;
  cleanup(): Promise<void>;
}

const WAIT_MS = 10_000;

async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs = WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Records what a listener is handed: each call's seqs, and every event. */
class Recorder {
  readonly calls: number[][] = [];
  readonly events: HeraldEvent[] = [];
  /** Seqs that went backwards or repeated; the contract says never. */
  readonly disorder: string[] = [];
  private readonly last = new Map<string, number>();
  readonly listener = (events: readonly HeraldEvent[]) => {
    this.calls.push(events.map((e) => e.seq));
    this.events.push(...events);
    for (const e of events) {
      if (e.seq <= (this.last.get(e.channel) ?? 0)) this.disorder.push(`${e.channel}#${e.seq}`);
      this.last.set(e.channel, e.seq);
    }
  };
  /** The same, as a sink (`join` / `leave`). */
  readonly sink = { onEvents: (events: readonly HeraldEvent[]) => this.listener(events) };
  /** Its position, for `subscribeAll`: the highest seq of the channel it has been handed. */
  readonly position = async (channel: string) => this.last.get(channel) ?? 0;
  seqs(channel?: string): number[] {
    return this.events.filter((e) => channel === undefined || e.channel === channel).map((e) => e.seq);
  }
}

/** Seqs from one node never arrive repeated or backwards, on any bus. */
function assertOrdered(...recorders: Recorder[]): void {
  for (const r of recorders) assert.deepEqual(r.disorder, [], 'seqs only ever increase');
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
let unique = 0;

/** The channel of every message from another node that reaches `bus` from now on, in order. */
function channelsHeardBy(bus: ClusterBus): string[] {
  const heard: string[] = [];
  const node = bus as unknown as { receive(scope: string, raw: string): void };
  const receive = node.receive.bind(bus);
  node.receive = (scope, raw) => {
    heard.push(decodeMessage(raw)?.channel ?? '(malformed)');
    receive(scope, raw);
  };
  return heard;
}

/**
 * The contract of `Bus` (see types.ts), held against every implementation:
 * the in-process bus and each networked transport, with real servers.
 */
export function describeBusConformance(name: string, open: () => Promise<BusHarness>): void {
  describe(`Bus conformance: ${name}`, () => {
    let h: BusHarness;
    let ch: (base: string) => string;
    beforeEach(async () => {
      h = await open();
      const id = `${process.pid}-${(unique += 1)}`;
      ch = (base) => `${base}-${id}`;
    });
    afterEach(async () => {
      await h.cleanup();
    });

    /** Appends and announces, as every producer does, then waits for the append (not for the other nodes). */
    const publish = (bus: Bus, channel: string, count = 1, data: (i: number) => unknown = (i) => ({ i })) =>
      new EventLog(h.store, bus).publish(Array.from({ length: count }, (_, i) => ({ channel, data: data(i) })));

    /**
     * A first event on `channel`, waited for on every recorder: once it is
     * through, the subscriptions are in effect. Before that, events can come
     * from the log read that follows a new subscription, merged into fewer
     * calls or with a hole the listener fills from the log.
     */
    const warmUp = async (bus: Bus, channel: string, ...recorders: Recorder[]) => {
      const [event] = (await publish(bus, channel)).events;
      await waitUntil(`the warm-up event on ${channel}`, () => recorders.every((r) => r.events.some((e) => e.id === event!.id)));
      return event!.seq;
    };

    it('delivers a channel its own events, in order, batch by batch, to every node', async () => {
      const [a, b] = [await h.node(), await h.node()];
      const onA = new Recorder();
      const onB = new Recorder();
      const other = new Recorder();
      a.subscribe(ch('orders'), onA.listener);
      b.subscribe(ch('orders'), onB.listener);
      b.subscribe(ch('other'), other.listener);
      await warmUp(a, ch('orders'), onA, onB);
      for (let i = 0; i < 20; i += 1) await publish(a, ch('orders'), 1 + (i % 3));
      const total = 1 + Array.from({ length: 20 }, (_, i) => 1 + (i % 3)).reduce((x, y) => x + y);
      await waitUntil('node B to hear every event', () => onB.events.at(-1)?.seq === total);
      assertOrdered(onA, onB);
      assert.deepEqual(onB.seqs(), range(1, total), 'in seq order, none lost, none repeated');
      assert.deepEqual(onA.seqs(), range(1, total), 'the publishing node hears its own events');
      assert.deepEqual(onB.calls.slice(1).map((c) => c.length), Array.from({ length: 20 }, (_, i) => 1 + (i % 3)), 'one call per published batch');
      assert.ok(onB.events.every((e) => e.channel === ch('orders')));
      assert.deepEqual(other.events, [], 'another channel hears nothing');
    });

    it("lets two nodes hear each other's publishes", async () => {
      const [a, b] = [await h.node(), await h.node()];
      const onA = new Recorder();
      const onB = new Recorder();
      a.subscribe(ch('chat'), onA.listener);
      b.subscribe(ch('chat'), onB.listener);
      await publish(a, ch('chat'));
      await waitUntil('B to hear A', () => onB.events.at(-1)?.seq === 1);
      await publish(b, ch('chat'));
      await waitUntil('A to hear B', () => onA.events.at(-1)?.seq === 2);
      await waitUntil('B to hear itself', () => onB.events.at(-1)?.seq === 2);
      assertOrdered(onA, onB);
      assert.deepEqual(onA.seqs(), [1, 2]);
      assert.deepEqual(onB.seqs(), [1, 2]);
    });

    it('routes by interest: a node with no listener for a channel receives nothing for it', async () => {
      const [a, b] = [await h.node(), await h.node()];
      const marker = new Recorder();
      b.subscribe(ch('wanted'), marker.listener);
      if (h.subscriptions) {
        await waitUntil('the subscription to take effect', async () => (await h.subscriptions!(ch('wanted'))) === 1);
        assert.equal(await h.subscriptions(ch('unwanted')), 0, 'nobody subscribes to a channel without listeners');
        assert.equal(await h.subscriptions('all'), 0, 'nobody subscribes to the all-topic without a whole-log listener');
      }
      await warmUp(a, ch('wanted'), marker);
      // The channels of the messages that reach B from here on. Counted by channel, not in all: a publish that timed
      // out on a loaded machine is announced again, so the wanted channel may come twice.
      const heard = b instanceof ClusterBus ? channelsHeardBy(b) : undefined;
      await publish(a, ch('unwanted'), 5);
      // The same node publishes the marker after, and one node's publishes arrive in order.
      await publish(a, ch('wanted'));
      await waitUntil('the marker', () => marker.events.length === 2);
      if (heard) assert.deepEqual([...new Set(heard)], [ch('wanted')], 'only the wanted channel reached node B');
    });

    it('gives a whole-log listener every channel, grouped per channel, once each', async () => {
      const [a, b] = [await h.node(), await h.node()];
      const all = new Recorder();
      const one = new Recorder();
      b.subscribeAll(all.listener);
      b.subscribe(ch('x'), one.listener);
      if (h.subscriptions) await waitUntil('the all-topic subscription', async () => (await h.subscriptions!('all')) === 1);
      await warmUp(a, ch('warm'), all);
      all.events.length = 0;
      all.calls.length = 0;
      // One batch over three channels.
      await new EventLog(h.store, a).publish([
        { channel: ch('x'), data: 1 },
        { channel: ch('y'), data: 2 },
        { channel: ch('x'), data: 3 },
        { channel: ch('z'), data: 4 },
      ]);
      await publish(a, ch('y'), 2);
      await waitUntil('every event on the whole-log listener', () => all.events.length >= 6);
      await waitUntil('the channel listener', () => one.events.length >= 2);
      await new Promise((resolve) => setTimeout(resolve, 100));
      assertOrdered(all, one);
      assert.equal(all.events.length, 6, 'each event once, though node B also follows x');
      assert.deepEqual(one.seqs(), [1, 2], 'and the channel listener once too');
      for (const events of groupCalls(all)) assert.equal(new Set(events.map((e) => e.channel)).size, 1, 'one channel per call');
      assert.deepEqual(all.seqs(ch('x')), [1, 2]);
      assert.deepEqual(all.seqs(ch('y')), [1, 2, 3]);
      assert.deepEqual(all.seqs(ch('z')), [1]);
    });

    it('stops delivering after unsubscribe, and drops the subscription with the last listener', async () => {
      const [a, b] = [await h.node(), await h.node()];
      const gone = new Recorder();
      const stays = new Recorder();
      const marker = new Recorder();
      const off = b.subscribe(ch('u'), gone.listener);
      // The last one is a sink: it counts as a listener, and `leave` ends it as unsubscribing would.
      b.join(ch('u'), stays.sink);
      const offToo = () => b.leave(ch('u'), stays.sink);
      b.subscribe(ch('marker'), marker.listener);
      await warmUp(a, ch('u'), gone, stays);
      await warmUp(a, ch('marker'), marker);
      off();
      await publish(a, ch('u'));
      await waitUntil('the remaining listener', () => stays.events.length === 2);
      assertOrdered(gone, stays);
      assert.equal(gone.events.length, 1, 'an unsubscribed listener hears nothing more');
      offToo();
      if (h.subscriptions) await waitUntil('the server to drop the subscription', async () => (await h.subscriptions!(ch('u'))) === 0);
      // A transport that cannot be asked (LISTEN/NOTIFY is per session) gets time for its UNLISTEN to run.
      else await new Promise((r) => setTimeout(r, 300));
      const received = b instanceof ClusterBus ? b.messagesReceived : 0;
      await publish(a, ch('u'));
      await publish(a, ch('marker'));
      await waitUntil('the marker', () => marker.events.length === 2);
      assert.equal(stays.events.length, 2);
      if (b instanceof ClusterBus) assert.equal(b.messagesReceived - received, 1, 'node B no longer receives the channel');
    });

    it('carries large events and large batches intact', async () => {
      const [a, b] = [await h.node(), await h.node()];
      const on = new Recorder();
      const all = new Recorder();
      b.subscribe(ch('big'), on.listener);
      b.subscribeAll(all.listener);
      await warmUp(a, ch('big'), on, all);
      const blob = 'é✓x'.repeat(10_000); // ~50 KB of UTF-8
      await publish(a, ch('big'), 1, () => ({ blob }));
      await publish(a, ch('big'), 300, (i) => ({ i, pad: 'p'.repeat(100) }));
      await publish(a, ch('big'), 1, () => ({ small: true }));
      await waitUntil('every event', () => on.events.at(-1)?.seq === 303 && all.events.at(-1)?.seq === 303);
      assertOrdered(on, all);
      assert.deepEqual(on.seqs(), range(1, 303), 'in order, with a small batch after the large ones');
      assert.deepEqual(on.calls.map((c) => c.length), [1, 1, 300, 1]);
      assert.deepEqual(on.events[1]!.data, { blob });
      assert.deepEqual(on.events[301]!.data, { i: 299, pad: 'p'.repeat(100) });
      assert.deepEqual(all.seqs(), range(1, 303));
      const stored = (await h.store.read(ch('big'), 1, 1)).events[0];
      assert.deepEqual(on.events[1], stored, 'the event exactly as the log has it');
    });

    it('reports its state, and publishes never fail or hang', async () => {
      const a = await h.node();
      const states: BusState[] = [];
      const off = a.onStateChange((s) => states.push(s));
      assert.equal(a.state, 'up');
      if (!h.outage) {
        await a.publish([]);
        off();
        return;
      }
      await h.outage.cut();
      await waitUntil("state 'down'", () => a.state === 'down');
      assert.deepEqual(states, ['down']);
      const appended = await h.store.append({ events: [{ channel: ch('s'), id: `evt_${ch('s')}`, type: 't', data: 1, time: Date.now() }] });
      const started = Date.now();
      await a.publish(appended.events);
      assert.ok(Date.now() - started < 2000, 'publish resolves promptly while down');
      await h.outage.restore();
      await waitUntil("state 'up' again", () => a.state === 'up', 20_000);
      assert.deepEqual(states, ['down', 'up']);
      off();
    });

    it('serves a whole-log listener that gives its position from there, on a node that remembers 2 channels, across an outage', async () => {
      const a = await h.node();
      const b = await h.node({ wholeLogChannels: 2 });
      const all = new Recorder();
      b.subscribeAll(all.listener, all.position);
      const channels = Array.from({ length: 6 }, (_, i) => ch(`p${i}`));
      await warmUp(a, channels[0]!, all);
      for (const channel of channels.slice(1)) await publish(a, channel);
      await waitUntil('the first event of every channel', () => channels.every((c) => all.seqs(c).length === 1));
      if (b instanceof ClusterBus) assert.ok(b.followedChannels <= 2, `remembers ${b.followedChannels} channels`);
      if (h.outage) {
        await h.outage.cut();
        await waitUntil("B 'down'", () => b.state === 'down');
        // Appended while down: B reads them from the log, for forgotten channels from where the listener stands.
        for (const channel of channels) await publish(a, channel, 2);
        await waitUntil('the outage events from the log', () => channels.every((c) => all.seqs(c).length === 3), 5000);
        await h.outage.restore();
        await waitUntil("A and B 'up'", () => a.state === 'up' && b.state === 'up', 20_000);
      } else {
        for (const channel of channels) await publish(a, channel, 2);
      }
      for (const channel of channels) await publish(a, channel);
      await waitUntil('every event', () => channels.every((c) => all.seqs(c).length === 4), 5000);
      await new Promise((resolve) => setTimeout(resolve, 100));
      assertOrdered(all);
      for (const channel of channels) assert.deepEqual(all.seqs(channel), range(1, 4), `${channel}: nothing lost, nothing repeated`);
      if (b instanceof ClusterBus) assert.ok(b.followedChannels <= 2, `remembers ${b.followedChannels} channels`);
    });

    it('serves listeners from the log while down, and catches up when the link returns', async () => {
      if (!h.outage) return;
      const [a, b] = [await h.node(), await h.node()];
      const on = new Recorder();
      const all = new Recorder();
      b.subscribe(ch('o'), on.listener);
      b.subscribeAll(all.listener);
      await warmUp(a, ch('o'), on, all);
      await h.outage.cut();
      await waitUntil("B 'down'", () => b.state === 'down');
      await publish(a, ch('o'), 2);
      await publish(a, ch('new'), 1);
      await waitUntil('B to read the outage events from the log', () => on.events.at(-1)?.seq === 3 && all.seqs(ch('new')).length === 1, 5000);
      assert.equal(b.state, 'down', 'still down: these came from the log');
      // Appended in the instant before the link returns: only the catch-up read can find it.
      await h.outage.restore();
      await publish(a, ch('o'));
      await waitUntil("A and B 'up'", () => a.state === 'up' && b.state === 'up', 20_000);
      await publish(a, ch('o'));
      await waitUntil('everything', () => on.events.at(-1)?.seq === 5 && all.seqs(ch('o')).at(-1) === 5, 5000);
      assertOrdered(on, all);
      assert.deepEqual(on.seqs(), range(1, 5), 'nothing lost, nothing repeated across the outage');
      assert.deepEqual(all.seqs(ch('o')), range(1, 5));
      assert.deepEqual(all.seqs(ch('new')), [1]);
    });

    it('tells the others what a node published while its own link alone was down, once it is back, with no later event needed', async () => {
      if (!h.isolatedNode) return;
      const a = await h.isolatedNode();
      const b = await h.node();
      const on = new Recorder();
      const all = new Recorder();
      b.subscribe(ch('solo'), on.listener);
      b.subscribeAll(all.listener);
      await warmUp(a.bus, ch('solo'), on, all);
      a.cut();
      await waitUntil("A 'down'", () => a.bus.state === 'down');
      assert.equal(b.state, 'up', 'B keeps its link, so it has no reason to read the log');
      // The others are up and wait for the wire; A cannot send while it is down.
      await publish(a.bus, ch('solo'), 2);
      await publish(a.bus, ch('solo-new'));
      a.restore();
      await waitUntil("A 'up' again", () => a.bus.state === 'up', 20_000);
      await waitUntil('the events A published while down', () => on.seqs().at(-1) === 3 && all.seqs(ch('solo-new')).length === 1, 5000);
      assertOrdered(on, all);
      assert.deepEqual(on.seqs(), range(1, 3), 'nothing lost, nothing repeated');
      assert.deepEqual(all.seqs(ch('solo')), range(1, 3));
      assert.deepEqual(all.seqs(ch('solo-new')), [1]);
    });

    it("reads the log while another node's link is down, and once more when it is back or a node is gone", async () => {
      if (!h.outage) return;
      const [a, b] = [await h.node(), await h.node()];
      const on = new Recorder();
      const all = new Recorder();
      b.subscribe(ch('peer'), on.listener);
      b.subscribeAll(all.listener);
      await warmUp(a, ch('peer'), on, all);
      // Appended by a node that announces nothing (its link is down, or it died between its commit and its announcement).
      const append = async (n: number) => h.store.append({ events: [{ channel: ch('peer'), id: `evt_${ch('peer')}_${n}`, type: 't', data: n, time: Date.now() }] });
      await append(2);
      await new Promise((resolve) => setTimeout(resolve, 1500));
      assert.deepEqual(on.seqs(), [1], 'nothing reads the log while every link is up');
      b.observePeers({ peersDown: true, gone: false });
      await waitUntil('the event, by polling the log', () => on.seqs().at(-1) === 2 && all.seqs().at(-1) === 2, 5000);
      await append(3);
      await waitUntil('the next one, still polling', () => on.seqs().at(-1) === 3, 5000);
      await append(4);
      b.observePeers({ peersDown: false, gone: false });
      await waitUntil('one more read as the peer comes back', () => on.seqs().at(-1) === 4, 5000);
      await append(5);
      await new Promise((resolve) => setTimeout(resolve, 1500));
      assert.equal(on.seqs().at(-1), 4, 'polling stopped');
      b.observePeers({ peersDown: false, gone: true });
      await waitUntil('one read when a node is gone', () => on.seqs().at(-1) === 5 && all.seqs().at(-1) === 5, 5000);
      assertOrdered(on, all);
      assert.deepEqual(on.seqs(), range(1, 5));
      assert.deepEqual(all.seqs(), range(1, 5));
    });

    it('announces again a send that failed while the link still said up, once the link is back', async () => {
      if (!h.isolatedNode) return;
      const a = await h.isolatedNode();
      const b = await h.node();
      const on = new Recorder();
      b.subscribe(ch('hung'), on.listener);
      await warmUp(a.bus, ch('hung'), on);
      // The network stops passing anything: A's sockets stay open, so its state says up until a probe fails.
      a.blackhole();
      assert.equal(a.bus.state, 'up');
      await publish(a.bus, ch('hung'), 2);
      await waitUntil("A 'down'", () => a.bus.state === 'down');
      assert.equal(b.state, 'up');
      a.restore();
      await waitUntil("A 'up' again", () => a.bus.state === 'up', 20_000);
      await waitUntil('the events whose send failed', () => on.seqs().at(-1) === 3, 5000);
      assertOrdered(on);
      assert.deepEqual(on.seqs(), range(1, 3), 'nothing lost, nothing repeated');
    });
  });
}

function groupCalls(recorder: Recorder): HeraldEvent[][] {
  const out: HeraldEvent[][] = [];
  let at = 0;
  for (const call of recorder.calls) {
    out.push(recorder.events.slice(at, at + call.length));
    at += call.length;
  }
  return out;
}

/**
 * A harness for a networked bus at `url`: a fresh in-memory SQLite log per
 * test, every node a `createBus(url)`, all closed at cleanup.
 */
export async function networkHarness(
  url: string,
  extra: Pick<BusHarness, 'subscriptions' | 'outage'> & {
    /** The URL names the one server every node connects to, so a relay in front of it can be one node's own link. */
    relayable?: boolean;
  },
): Promise<BusHarness> {
  const storage = await openSqliteStorage({ dataDir: ':memory:' });
  const nodes: Bus[] = [];
  const links: FaultyLink[] = [];
  const node = async (options: { wholeLogChannels?: number } = {}, through = url) => {
    const bus = await createBus(through, { store: storage.events, connectTimeoutMs: 10_000, ...options });
    nodes.push(bus);
    assert.equal(bus.state, 'up', 'a node starts up when its link is reachable');
    return bus;
  };
  return {
    subscriptions: extra.subscriptions,
    outage: extra.outage,
    store: storage.events,
    node,
    isolatedNode: extra.relayable
      ? async () => {
          const link = await faultyLinkTo(url);
          links.push(link);
          return { bus: await node({}, link.url), cut: () => link.cut(), blackhole: () => link.blackhole(), restore: () => link.restore() };
        }
      : undefined,
    async cleanup() {
      await Promise.all(nodes.map((bus) => bus.close()));
      await Promise.all(links.map((link) => link.close()));
      await storage.close();
    },
  };
}

import { randomUUID } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import type { BusState } from '../types.js';
import type { BusTransport, Topic, TransportHandler } from '../transport.js';
import { HealthCheck, withTimeout } from '../health.js';
import { squareTopics } from '../subscriptions.js';
import { connectPair, type RedisPair } from './clients.js';
import { RedisTopics } from './topics.js';
import type { RedisTarget } from './url.js';

export interface RedisTransportOptions {
  /** How often the link is probed end to end; 1000 ms. */
  healthIntervalMs?: number;
  /** A probe that has not come back after this failed; 1500 ms. */
  healthTimeoutMs?: number;
  /** Down this long, the clients are replaced by new ones; 5000 ms. */
  reopenAfterMs?: number;
}

/**
 * Redis pub/sub between nodes. One server and Sentinel use PUBLISH and
 * SUBSCRIBE; Cluster uses SPUBLISH and SSUBSCRIBE (sharded pub/sub, which
 * managed cluster-mode services support and which does not broadcast every
 * message to every shard).
 *
 * The state is measured, not guessed from socket events: every second the
 * transport publishes a probe on its own topic and waits for it to come back
 * through its subscriber. A lost socket says `down` at once; only a probe
 * that comes back after every wanted topic has been subscribed again says
 * `up`.
 */
export class RedisTransport implements BusTransport {
  /** Redis takes messages up to 512 MB; past a few MB a hint and a read of the log is kinder to every node. */
  readonly maxMessageBytes = 4 * 1024 * 1024;
  private readonly topics: RedisTopics;
  private readonly probeTopic: string;
  private readonly wanted = new Set<string>();
  /**
   * The topics this transport has sent SUBSCRIBE for (and not UNSUBSCRIBE since), on the subscriber it has now.
   * A topic wanted or dropped while a probe that brings the link up was running is in one set and not the other:
   * the probe squares them before the state says `up`.
   */
  private told = new Set<string>();
  private readonly probes = new Map<string, () => void>();
  private readonly health: HealthCheck;
  private readonly healthTimeoutMs: number;
  private clients: RedisPair | undefined;
  private handler: TransportHandler | undefined;
  private state: BusState = 'down';
  private waitUp: (() => void) | undefined;
  private downSince: number | undefined;
  private readonly reopenAfterMs: number;

  constructor(
    private readonly target: RedisTarget,
    options: RedisTransportOptions = {},
  ) {
    this.topics = new RedisTopics(target.prefix);
    this.probeTopic = this.topics.probe(randomUUID());
    this.healthTimeoutMs = options.healthTimeoutMs ?? 1500;
    this.reopenAfterMs = options.reopenAfterMs ?? 5000;
    this.health = new HealthCheck(
      () => this.probe(),
      (ok, error) => this.onHealth(ok, error),
      options.healthIntervalMs ?? 1000,
      this.healthTimeoutMs,
    );
  }

  async start(handler: TransportHandler, timeoutMs: number): Promise<void> {
    this.handler = handler;
    this.open();
    const up = new Promise<void>((resolve) => (this.waitUp = resolve));
    this.health.start();
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([up, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  private open(): void {
    const clients = connectPair(this.target);
    this.clients = clients;
    this.told = new Set();
    const { publisher, subscriber, sharded } = clients;
    for (const client of [publisher, subscriber]) {
      // ioredis reports each failed reconnect; they are expected while down, and the state says so.
      client.on('error', (error: unknown) => this.state === 'up' && this.handler?.error(error));
    }
    subscriber.on(sharded ? 'smessage' : 'message', (name: string, message: string) => this.receive(name, message));
    subscriber.on('close', () => this.clients === clients && this.setState('down'));
    // A fresh connection: probe now rather than at the next tick.
    subscriber.on('ready', () => this.health.now());
  }

  /**
   * Throws the clients away and connects anew. A Cluster client whose every
   * node restarted can stay wedged on its old view of the slots; a new one
   * starts from the seeds.
   */
  private reopen(): void {
    const old = this.clients;
    this.open();
    old?.publisher.disconnect();
    old?.subscriber.disconnect();
  }

  subscribe(topic: Topic): Promise<void> {
    const name = this.topics.name(topic);
    this.wanted.add(name);
    // While down, the resubscription on the way back up takes it.
    if (this.state !== 'up') return Promise.resolve();
    this.told.add(name);
    return this.command('subscribe', [name]).then(
      () => undefined,
      (error: unknown) => this.handler?.error(error),
    );
  }

  unsubscribe(topic: Topic): void {
    const name = this.topics.name(topic);
    if (!this.wanted.delete(name) || this.state !== 'up') return;
    this.told.delete(name);
    this.command('unsubscribe', [name]).catch((error: unknown) => this.handler?.error(error));
  }

  async publish(channel: string, message: string): Promise<void> {
    const { publisher, sharded } = this.clients!;
    const names = [this.topics.channel(channel), this.topics.all];
    if (sharded) {
      // Two slots, usually two shards: two commands.
      await Promise.all(names.map((name) => publisher.spublish(name, message)));
      return;
    }
    const results = await (publisher as Redis).pipeline().publish(names[0]!, message).publish(names[1]!, message).exec();
    const failed = results?.find(([error]) => error);
    if (failed) throw failed[0];
  }

  async send(topic: Topic, message: string): Promise<void> {
    const { publisher, sharded } = this.clients!;
    const name = this.topics.name(topic);
    await (sharded ? publisher.spublish(name, message) : publisher.publish(name, message));
  }

  async close(): Promise<void> {
    this.health.stop();
    this.setState('down');
    this.clients?.publisher.disconnect();
    this.clients?.subscriber.disconnect();
    this.clients = undefined;
  }

  private command(kind: 'subscribe' | 'unsubscribe', names: string[]): Promise<unknown> {
    const { subscriber, sharded } = this.clients!;
    if (!sharded) return kind === 'subscribe' ? subscriber.subscribe(...names) : subscriber.unsubscribe(...names);
    // Sharded (un)subscribes must stay within one slot per command, and each topic has its own.
    const cluster = subscriber as Cluster;
    return Promise.all(names.map((name) => (kind === 'subscribe' ? cluster.ssubscribe(name) : cluster.sunsubscribe(name))));
  }

  private receive(name: string, message: string): void {
    if (name === this.probeTopic) {
      this.probes.get(message)?.();
      return;
    }
    const kind = this.topics.kind(name);
    if (kind) this.handler?.message(kind, message);
  }

  /** Publishes a token on this node's probe topic and resolves when the subscriber gets it back. */
  private async probe(): Promise<void> {
    const { publisher, subscriber, sharded } = this.clients!;
    if (subscriber.status !== 'ready') throw new Error(`redis subscriber ${subscriber.status}`);
    const resubscribing = this.state === 'down';
    if (resubscribing) {
      // Resubscribe everything before the probe, so a probe that returns means every subscription is in place.
      // Added to what was told, not in its place: a subscriber that outlived an outage (a probe that timed out on a
      // live socket) still holds a topic dropped since, which the squaring below must unsubscribe.
      const names = [this.probeTopic, ...this.wanted];
      for (const name of names) this.told.add(name);
      await this.command('subscribe', names);
    }
    const token = randomUUID();
    const back = new Promise<void>((resolve) => this.probes.set(token, resolve));
    try {
      await (sharded ? publisher.spublish(this.probeTopic, token) : publisher.publish(this.probeTopic, token));
      await withTimeout(back, this.healthTimeoutMs, 'redis bus probe');
    } finally {
      this.probes.delete(token);
    }
    // Topics asked for (or dropped) while down, after the resubscription above went out: nothing else would send them.
    // While up, subscribe and unsubscribe tell at once, so a probe that found the link up has nothing to square.
    if (!resubscribing) return;
    for (let sent = this.squareSubscriptions(); sent; sent = this.squareSubscriptions()) await sent;
  }

  /**
   * Sends SUBSCRIBE for each wanted topic not yet told to the subscriber, and UNSUBSCRIBE for each told topic no
   * longer wanted; undefined when they already agree (as they do while up, where subscribe and unsubscribe tell at
   * once). After a probe that resubscribed, and on the way up, so the state never says `up` with a topic missing or
   * one left over.
   */
  private squareSubscriptions(): Promise<unknown> | undefined {
    const change = squareTopics(this.wanted, this.told, this.probeTopic);
    if (!change) return undefined;
    return Promise.all([
      change.missing.length > 0 ? this.command('subscribe', change.missing) : undefined,
      change.unwanted.length > 0 ? this.command('unsubscribe', change.unwanted) : undefined,
    ]);
  }

  private onHealth(probed: boolean, error: unknown): void {
    let ok = probed;
    if (ok && this.state !== 'up') {
      // Subscriptions changed between the probe's last look and now (a turn of microtasks): sent now, and the state
      // stays down until the next probe has seen them answered.
      const sent = this.squareSubscriptions();
      if (sent) {
        ok = false;
        sent.catch((failure: unknown) => this.handler?.error(failure));
      }
    }
    if (!ok && this.state === 'up') this.handler?.error(error);
    this.setState(ok ? 'up' : 'down');
    if (ok) this.downSince = undefined;
    else if (this.downSince === undefined) this.downSince = Date.now();
    else if (Date.now() - this.downSince >= this.reopenAfterMs) {
      this.downSince = Date.now();
      this.reopen();
    }
  }

  private setState(state: BusState): void {
    if (state === this.state) return;
    this.state = state;
    if (state === 'up') this.waitUp?.();
    this.handler?.state(state);
  }
}

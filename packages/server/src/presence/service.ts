import {
  DEFAULT_EVENT_TYPE,
  HeraldError,
  PRESENCE_INFO_MAX_BYTES,
  type DirectMessage,
  type EphemeralMessage,
  type PresenceAction,
  type PresenceMember,
} from '@herald/protocol';
import type { HeraldConfig } from '../config/schema.js';
import type { AccessPolicy, Principal } from '../auth/principal.js';
import { matchesAny } from '../auth/patterns.js';
import { assertStorablePayload } from '../log/storable-payload.js';
import { EXAMPLE_CHANNELS } from '../examples/webrtc.js';
import { PresenceRegistry, publicMember, type MemberRecord } from './registry.js';
import { PresenceSync } from './sync.js';
import { channelSignalKey, type SignalBus } from './signal-bus.js';
import { EphemeralFrames, wsMessageFrame, wsPresenceFrame } from './frames.js';
import { KeyedRateLimit } from './rate-limit.js';

/** Where a local member's presence frames and direct messages go: its socket (an object, not a closure per socket). */
export interface FrameSink {
  sendFrame(frame: Buffer): void;
}

/** Who hears a channel's ephemeral publishes: a WebSocket subscription, an SSE stream. */
export interface EphemeralListener {
  ephemeral(frames: EphemeralFrames): void;
}

/** What travels on a channel's signal topic. */
type ChannelSignal = { k: 'e'; m: EphemeralMessage } | { k: 'd'; node: string; to: string; m: DirectMessage };

interface ChannelListeners {
  set: Set<EphemeralListener>;
  stop: () => void;
}

/** Something that allows or refuses one more message now: a socket's bucket, or a credential's. */
export interface RateGate {
  take(): boolean;
}

export interface PresenceServiceOptions {
  config: HeraldConfig;
  /** This node's id (`nodeId`), unique in the cluster. */
  node: string;
  bus: SignalBus;
  access: AccessPolicy;
  onError: (error: unknown) => void;
}

/**
 * Presence sets, ephemeral publishes and direct messages: everything
 * realtime that is not in the log. Presence is cluster-wide (see
 * `PresenceSync`); ephemeral and direct messages reach the other nodes over
 * the signal bus, on the channel's own topic, which a node follows while it
 * has subscribers of the channel.
 */
export class PresenceService {
  readonly registry = new PresenceRegistry();
  private readonly sync: PresenceSync | undefined;
  private readonly patterns: readonly string[];
  private readonly sinks = new Map<string, Map<string, FrameSink>>();
  private readonly listeners = new Map<string, ChannelListeners>();
  private readonly credentialLimits: KeyedRateLimit;
  private readonly channelJoinLimits: KeyedRateLimit;
  private readonly config: HeraldConfig;
  private readonly node: string;
  private readonly bus: SignalBus;
  private readonly access: AccessPolicy;

  constructor(options: PresenceServiceOptions) {
    ({ config: this.config, node: this.node, bus: this.bus, access: this.access } = options);
    this.patterns = [...this.config.channels.presence, ...(this.config.examples.enabled ? EXAMPLE_CHANNELS : [])];
    this.credentialLimits = new KeyedRateLimit(this.config.limits.ephemeralPerSecond);
    this.channelJoinLimits = new KeyedRateLimit(this.config.limits.presenceJoinsPerChannel);
    if (this.bus.clustered) {
      this.sync = new PresenceSync(this.bus, this.registry, this.node, (action, record) => this.broadcast(action, record), options.onError);
    }
  }

  start(): void {
    this.sync?.start();
  }

  async stop(): Promise<void> {
    await this.sync?.stop();
    await this.bus.close();
  }

  /** Ephemeral publishes plus direct messages per second per socket or credential. */
  get ephemeralPerSecond(): number {
    return this.config.limits.ephemeralPerSecond;
  }

  /** Whether `channel` has a presence set (`channels.presence`). */
  enabled(channel: string): boolean {
    return matchesAny(this.patterns, channel);
  }

  /** Every member of the channel's presence set, on every node. */
  members(channel: string): PresenceMember[] {
    return this.registry.list(channel).map(publicMember);
  }

  /**
   * Refuses a join before its subscription starts: presence off, no identity, info too big, the set full, or (with
   * `gate`, the socket's) joins too frequent. A join is told to every member, as an ephemeral publish is sent to
   * every subscriber, so it takes from the same bucket: re-subscribing in a loop made one socket flood every member.
   * And from the channel's own (limits.presenceJoinsPerChannel): with the socket's alone, 200 members re-joining in
   * turn, each within its own limit, made 2.8 million frames in 10 s, as the work grows with members² a second.
   */
  assertJoinable(principal: Principal | undefined, channel: string, info: unknown, client?: string, gate?: RateGate): asserts principal is Principal {
    if (!this.enabled(channel)) throw new HeraldError('bad_request', `Channel ${channel} has no presence set: add a pattern for it to channels.presence.`);
    if (!principal) throw new HeraldError('unauthorized', 'Joining a presence set needs a credential: its `sub` names the member.');
    if (info !== undefined) {
      assertStorablePayload(this.config.limits.jsonDepth, { data: info });
      if (Buffer.byteLength(JSON.stringify(info)) > PRESENCE_INFO_MAX_BYTES) {
        throw new HeraldError('payload_too_large', `Presence \`info\` is at most ${PRESENCE_INFO_MAX_BYTES} bytes of JSON.`);
      }
    }
    const max = this.config.limits.presenceMembers;
    const rejoin = client !== undefined && this.registry.get(channel, client) !== undefined;
    if (!rejoin && this.registry.count(channel) >= max) throw new HeraldError('presence_full', `Channel ${channel} has ${max} presence members, the most limits.presenceMembers allows.`);
    const perSub = this.config.limits.presencePerSub;
    if (!rejoin && this.registry.countOf(channel, principal.id) >= perSub) {
      throw new HeraldError('presence_full', `${principal.id} has ${perSub} members in the presence set of ${channel}, the most limits.presencePerSub allows.`);
    }
    if (gate) {
      this.take(gate);
      if (!this.channelJoinLimits.take(channel)) {
        throw new HeraldError(
          'too_many_requests',
          `Channel ${channel} has had ${this.config.limits.presenceJoinsPerChannel} presence joins in the last second, the most limits.presenceJoinsPerChannel allows; try again shortly.`,
        );
      }
    }
  }

  /** Joins this node's connection `client`; returns every member, itself included. */
  join(principal: Principal | undefined, channel: string, client: string, info: unknown, sink: FrameSink): PresenceMember[] {
    this.assertJoinable(principal, channel, info);
    const record: MemberRecord = { channel, client, sub: principal.id, info: info ?? null, node: this.node };
    this.registry.add(record);
    let sinks = this.sinks.get(channel);
    if (!sinks) {
      sinks = new Map();
      this.sinks.set(channel, sinks);
    }
    sinks.set(client, sink);
    this.sync?.joined(record);
    this.broadcast('join', record);
    return this.members(channel);
  }

  leave(channel: string, client: string): void {
    const sinks = this.sinks.get(channel);
    if (sinks?.delete(client) && sinks.size === 0) this.sinks.delete(channel);
    if (this.registry.get(channel, client)?.node !== this.node) return;
    const record = this.registry.remove(channel, client)!;
    this.sync?.left(record);
    this.broadcast('leave', record);
  }

  /**
   * Follows the channel's ephemeral publishes until `unlisten`. A listener is held once per channel, however
   * often it listens: one `unlisten` ends it.
   */
  listen(channel: string, listener: EphemeralListener): void {
    let entry = this.listeners.get(channel);
    if (!entry) {
      const set = new Set<EphemeralListener>();
      const stop = this.bus.subscribe(channelSignalKey(channel), (body) => this.onChannelSignal(set, body as ChannelSignal));
      entry = { set, stop };
      this.listeners.set(channel, entry);
    }
    entry.set.add(listener);
  }

  /** How many listeners hear the channel's ephemeral publishes on this node (for tests). */
  listenerCount(channel: string): number {
    return this.listeners.get(channel)?.set.size ?? 0;
  }

  unlisten(channel: string, listener: EphemeralListener): void {
    const entry = this.listeners.get(channel);
    if (!entry?.set.delete(listener) || entry.set.size > 0) return;
    this.listeners.delete(channel);
    entry.stop();
  }

  /** The gate of a credential publishing over HTTP (the default); a WebSocket has a bucket of its own. */
  private credentialGate(principal: Principal): RateGate {
    return { take: () => this.credentialLimits.take(`${principal.kind}:${principal.id}`) };
  }

  /** Fans out to the channel's current subscribers on every node; nothing is logged. */
  async publishEphemeral(principal: Principal | undefined, channel: string, input: { type?: string | undefined; data: unknown }, gate?: RateGate): Promise<EphemeralMessage> {
    this.access.assertPublish(principal, channel);
    this.assertMessage(input.data, gate ?? this.credentialGate(principal!));
    const message: EphemeralMessage = { channel, type: input.type ?? DEFAULT_EVENT_TYPE, data: input.data, time: new Date().toISOString() };
    await this.bus.publish(channelSignalKey(channel), { k: 'e', m: message } satisfies ChannelSignal);
    return message;
  }

  /** A direct message to `to`, a member of the channel's presence set on any node. */
  async send(principal: Principal | undefined, from: string, channel: string, to: string, data: unknown, gate: RateGate): Promise<void> {
    this.access.assertPublish(principal, channel);
    this.assertMessage(data, gate);
    const target = this.registry.get(channel, to);
    if (!target) throw new HeraldError('not_present', `No member ${to} in the presence set of ${channel}.`);
    const message: DirectMessage = { channel, from: { client: from, sub: principal!.id }, data };
    if (target.node === this.node) return this.deliverDirect(message, to);
    await this.bus.publish(channelSignalKey(channel), { k: 'd', node: target.node, to, m: message } satisfies ChannelSignal);
  }

  private assertMessage(data: unknown, gate: RateGate): void {
    assertStorablePayload(this.config.limits.jsonDepth, { data });
    const max = this.config.limits.ephemeralBytes;
    if (Buffer.byteLength(JSON.stringify(data) ?? '') > max) throw new HeraldError('payload_too_large', `Ephemeral and direct messages carry at most ${max} bytes of data (limits.ephemeralBytes).`);
    this.take(gate);
  }

  private take(gate: RateGate): void {
    if (!gate.take()) {
      throw new HeraldError(
        'too_many_requests',
        `At most ${this.config.limits.ephemeralPerSecond} ephemeral publishes, direct messages and presence joins per second (limits.ephemeralPerSecond).`,
      );
    }
  }

  private onChannelSignal(listeners: Set<EphemeralListener>, signal: ChannelSignal): void {
    if (signal.k === 'e') {
      const frames = new EphemeralFrames(signal.m);
      for (const listener of listeners) listener.ephemeral(frames);
    } else if (signal.k === 'd' && signal.node === this.node) {
      this.deliverDirect(signal.m, signal.to);
    }
  }

  private deliverDirect(message: DirectMessage, to: string): void {
    this.sinks.get(message.channel)?.get(to)?.sendFrame(wsMessageFrame(message));
  }

  /** Tells this node's members of the channel, except the one it is about. */
  private broadcast(action: PresenceAction, record: MemberRecord): void {
    const sinks = this.sinks.get(record.channel);
    if (!sinks) return;
    const frame = wsPresenceFrame(record.channel, action, publicMember(record));
    for (const [client, sink] of sinks) if (client !== record.client) sink.sendFrame(frame);
  }
}

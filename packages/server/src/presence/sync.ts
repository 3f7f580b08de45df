import { randomUUID } from 'node:crypto';
import type { PresenceAction } from '@herald/protocol';
import type { MemberRecord, PresenceRegistry } from './registry.js';
import { PRESENCE_SIGNAL_KEY, type SignalBus } from './signal-bus.js';

/**
 * Every node says "still here, at version v" this often. A node not heard from for three of these is gone,
 * and its members leave: a `kill -9` is noticed within about 20 s.
 */
export const ANNOUNCE_MS = 5000;
/** At most one snapshot request per peer in this time. */
const ASK_AGAIN_MS = 2000;
/** Snapshot parts that have not all arrived after this are dropped (the next beat asks again). */
const ASSEMBLY_MS = 10_000;
/** Largest snapshot part, whatever the wire takes. */
const PART_BYTES = 256 * 1024;

/** channel, client, sub, info */
type WireMember = [string, string, string, unknown];

/**
 * The presence messages between nodes. `i` is the sender's incarnation
 * (new at each start) and `v` the version of its member set, bumped by
 * each local join and leave: a receiver that sees a version it did not
 * expect (a lost message, a restart) asks for a snapshot.
 */
type Message =
  | { t: 'join'; n: string; i: string; v: number; m: WireMember }
  | { t: 'leave'; n: string; i: string; v: number; c: string; id: string }
  | { t: 'beat'; n: string; i: string; v: number }
  | { t: 'sync'; n: string; to?: string }
  | { t: 'snap'; n: string; i: string; v: number; p: number; of: number; m: WireMember[] }
  | { t: 'bye'; n: string; i: string };

interface Peer {
  incarnation: string;
  version: number;
  heardAt: number;
  askedAt: number;
  /**
   * A message of this peer's was missed, and no snapshot since has covered it. Its later messages still move
   * `version` on, so the beats match it: without this, a gap whose ask was held back (ASK_AGAIN_MS) stayed open.
   */
  behind: boolean;
}

interface Assembly {
  incarnation: string;
  version: number;
  parts: Array<WireMember[] | undefined>;
  received: number;
  startedAt: number;
}

const toWire = (r: MemberRecord): WireMember => [r.channel, r.client, r.sub, r.info];

function isWireMember(value: unknown): value is WireMember {
  return Array.isArray(value) && value.length === 4 && typeof value[0] === 'string' && typeof value[1] === 'string' && typeof value[2] === 'string';
}

function sameMember(a: MemberRecord, b: MemberRecord): boolean {
  return a.node === b.node && a.sub === b.sub && JSON.stringify(a.info) === JSON.stringify(b.info);
}

/**
 * Keeps every node's presence registry in step with the others' over the
 * signal bus: joins and leaves as they happen, a beat every `ANNOUNCE_MS`
 * carrying the sender's version, and full snapshots on request (at start,
 * after the link returns, and whenever a version shows a message was
 * missed). A node silent for three announcements is taken for dead: its
 * members leave.
 */
export class PresenceSync {
  private readonly incarnation = randomUUID();
  private version = 0;
  private readonly peers = new Map<string, Peer>();
  private readonly assemblies = new Map<string, Assembly>();
  private timer: NodeJS.Timeout | undefined;
  private snapshotTimer: NodeJS.Timeout | undefined;
  private stopListening: () => void = () => {};
  private stopWatchingState: () => void = () => {};

  constructor(
    private readonly bus: SignalBus,
    private readonly registry: PresenceRegistry,
    private readonly node: string,
    /** A member of another node joined or left; the registry has already changed. */
    private readonly changed: (action: PresenceAction, record: MemberRecord) => void,
    private readonly onError: (error: unknown) => void,
    /** Shorter in tests; `silentMs` is three announcements unless given. */
    private readonly timing: { announceMs: number; silentMs?: number } = { announceMs: ANNOUNCE_MS },
  ) {}

  private get silentMs(): number {
    return this.timing.silentMs ?? 3 * this.timing.announceMs;
  }

  start(): void {
    this.stopListening = this.bus.subscribe(PRESENCE_SIGNAL_KEY, (body) => this.receive(body as Message));
    // Back after an outage: whatever changed meanwhile was missed both ways.
    this.stopWatchingState = this.bus.onStateChange((state) => state === 'up' && this.hello());
    this.timer = setInterval(() => this.tick(), this.timing.announceMs);
    this.timer.unref();
    this.hello();
  }

  /** A member of this node joined. */
  joined(record: MemberRecord): void {
    this.send({ t: 'join', n: this.node, i: this.incarnation, v: ++this.version, m: toWire(record) });
  }

  /** A member of this node left. */
  left(record: MemberRecord): void {
    this.send({ t: 'leave', n: this.node, i: this.incarnation, v: ++this.version, c: record.channel, id: record.client });
  }

  /** A clean stop: the others drop this node's members at once instead of waiting for its silence. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    clearTimeout(this.snapshotTimer);
    this.stopWatchingState();
    this.stopListening();
    await this.bus.publish(PRESENCE_SIGNAL_KEY, { t: 'bye', n: this.node, i: this.incarnation } satisfies Message).catch(this.onError);
  }

  private hello(): void {
    this.send({ t: 'sync', n: this.node });
    this.beat();
  }

  private beat(): void {
    this.send({ t: 'beat', n: this.node, i: this.incarnation, v: this.version });
  }

  private tick(): void {
    this.beat();
    const now = Date.now();
    for (const [node, peer] of this.peers) if (now - peer.heardAt > this.silentMs) this.dropNode(node);
    for (const [node, assembly] of this.assemblies) if (now - assembly.startedAt > ASSEMBLY_MS) this.assemblies.delete(node);
  }

  private send(message: Message): void {
    this.bus.publish(PRESENCE_SIGNAL_KEY, message).catch(this.onError);
  }

  private receive(message: Message): void {
    if (typeof message !== 'object' || message === null || typeof message.n !== 'string' || message.n === this.node) return;
    switch (message.t) {
      case 'sync':
        if (message.to === undefined || message.to === this.node) this.scheduleSnapshot();
        return;
      case 'bye':
        if (this.peers.get(message.n)?.incarnation === message.i) this.dropNode(message.n);
        return;
      case 'beat': {
        const peer = this.peerOf(message.n, message.i);
        if (peer.behind || peer.version !== message.v) this.ask(message.n, peer);
        return;
      }
      case 'join':
      case 'leave': {
        const peer = this.peerOf(message.n, message.i);
        if (message.v !== peer.version + 1) {
          peer.behind = true;
          this.ask(message.n, peer);
        }
        peer.version = message.v;
        if (message.t === 'join' && isWireMember(message.m)) this.put(message.n, message.m);
        else if (message.t === 'leave') this.take(message.n, message.c, message.id);
        return;
      }
      case 'snap':
        return this.assemble(message);
      default:
        return;
    }
  }

  /** The peer's state, heard from now; a new incarnation (a restart) drops what its previous one had. */
  private peerOf(node: string, incarnation: string): Peer {
    let peer = this.peers.get(node);
    if (peer && peer.incarnation !== incarnation) {
      this.dropNode(node);
      peer = undefined;
    }
    if (!peer) {
      // Version -1: nothing known yet, so its first message asks for a snapshot.
      peer = { incarnation, version: -1, heardAt: Date.now(), askedAt: 0, behind: false };
      this.peers.set(node, peer);
    }
    peer.heardAt = Date.now();
    return peer;
  }

  private ask(node: string, peer: Peer): void {
    const now = Date.now();
    if (now - peer.askedAt < ASK_AGAIN_MS) return;
    peer.askedAt = now;
    this.send({ t: 'sync', n: this.node, to: node });
  }

  private put(node: string, [channel, client, sub, info]: WireMember): void {
    const record: MemberRecord = { channel, client, sub, info, node };
    const previous = this.registry.get(channel, client);
    if (previous && sameMember(previous, record)) return;
    this.registry.add(record);
    if (previous) this.changed('leave', previous);
    this.changed('join', record);
  }

  private take(node: string, channel: string, client: string): void {
    if (this.registry.get(channel, client)?.node !== node) return;
    const record = this.registry.remove(channel, client);
    if (record) this.changed('leave', record);
  }

  private dropNode(node: string): void {
    this.peers.delete(node);
    this.assemblies.delete(node);
    for (const record of this.registry.ofNode(node)) {
      this.registry.remove(record.channel, record.client);
      this.changed('leave', record);
    }
  }

  /** Requests that arrive together (several nodes starting) get one snapshot. */
  private scheduleSnapshot(): void {
    if (this.snapshotTimer) return;
    this.snapshotTimer = setTimeout(() => {
      this.snapshotTimer = undefined;
      this.sendSnapshot();
    }, 20);
    this.snapshotTimer.unref();
  }

  private sendSnapshot(): void {
    const budget = Math.min(this.bus.maxMessageBytes, PART_BYTES) - 512;
    const parts: WireMember[][] = [[]];
    let size = 0;
    for (const record of this.registry.ofNode(this.node)) {
      const member = toWire(record);
      const bytes = Buffer.byteLength(JSON.stringify(member)) + 1;
      // Too big for the wire even alone (a long `sub` from an outside token): its join was refused the same way, and a
      // part that can never arrive would leave every snapshot of this node incomplete, so asked for again at each beat.
      if (bytes > budget) continue;
      if (size + bytes > budget && parts.at(-1)!.length > 0) {
        parts.push([]);
        size = 0;
      }
      parts.at(-1)!.push(member);
      size += bytes;
    }
    parts.forEach((m, p) => this.send({ t: 'snap', n: this.node, i: this.incarnation, v: this.version, p, of: parts.length, m }));
  }

  private assemble(message: Extract<Message, { t: 'snap' }>): void {
    const { n: node, i: incarnation, v: version, p: part, of: parts } = message;
    if (!Number.isInteger(part) || !Number.isInteger(parts) || part < 0 || part >= parts || !Array.isArray(message.m)) return;
    this.peerOf(node, incarnation);
    let assembly = this.assemblies.get(node);
    if (!assembly || assembly.incarnation !== incarnation || assembly.version !== version || assembly.parts.length !== parts) {
      assembly = { incarnation, version, parts: new Array<WireMember[] | undefined>(parts), received: 0, startedAt: Date.now() };
      this.assemblies.set(node, assembly);
    }
    if (assembly.parts[part]) return;
    assembly.parts[part] = message.m.filter(isWireMember);
    assembly.received += 1;
    if (assembly.received < parts) return;
    this.assemblies.delete(node);
    this.replaceNode(node, assembly.parts.flatMap((m) => m ?? []));
    const peer = this.peers.get(node);
    if (peer) {
      // The snapshot left this node after every message of its before it, so it covers any gap among them.
      peer.version = version;
      peer.behind = false;
    }
  }

  /** The node's members are exactly `members` now: leaves for those gone, joins for those new. */
  private replaceNode(node: string, members: WireMember[]): void {
    const wanted = new Map(members.map((m) => [`${m[0]}\n${m[1]}`, m]));
    for (const record of this.registry.ofNode(node)) {
      if (wanted.has(`${record.channel}\n${record.client}`)) continue;
      this.registry.remove(record.channel, record.client);
      this.changed('leave', record);
    }
    for (const member of wanted.values()) this.put(node, member);
  }
}

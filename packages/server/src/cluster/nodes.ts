import type { ClusterStore, NodeRecord } from '../store/types.js';
import type { BusState, PeerView } from '../bus/types.js';
import { StartupError } from '../startup-error.js';
import type { FailureStreak } from '../util/failure-streak.js';

/** Seconds between heartbeats; a node silent for three of them is no longer listed as live. */
export const HEARTBEAT_MS = 2000;
export const NODE_LIVE_MS = 3 * HEARTBEAT_MS;

/**
 * This node's heartbeat in the shared store, with its connection counts, and
 * the view of the other nodes that operators (`GET /v1/nodes`) and the fair
 * sharing of endpoint leases use.
 */
export class NodeRegistry {
  private timer: NodeJS.Timeout | undefined;
  private readonly startedAt = Date.now();
  private beating = false;
  /** Live nodes at the last heartbeat; at least this one. */
  liveCount = 1;
  /** The other live nodes at the last heartbeat, to tell which stopped beating since. */
  private peers: Set<string> | undefined;

  constructor(
    private readonly store: ClusterStore,
    readonly id: string,
    private readonly version: string,
    private readonly connections: () => Record<string, number>,
    /** Each beat's outcome: a store outage fails every beat, and is logged as one streak. */
    private readonly outcomes: Pick<FailureStreak, 'failed' | 'succeeded'>,
    /** This node's link to the bus, written with each beat; always `up` for the in-process bus. */
    private readonly busState: () => BusState = () => 'up',
    /** What each beat saw of the other nodes (the bus's `observePeers`). */
    private readonly onPeers: (view: PeerView) => void = () => {},
  ) {}

  /** `unique`: refuse to start while another live process beats under this id (a shared store). */
  async start(options: { unique?: boolean } = {}): Promise<void> {
    if (options.unique) await this.refuseIdInUse();
    this.beating = true;
    await this.beat();
    this.timer = setInterval(() => void this.beat(), HEARTBEAT_MS);
    this.timer.unref();
  }

  /**
   * Two processes under one id would both hold every lease that id holds (each endpoint's deliveries sent twice,
   * the dispatcher run twice) and ignore each other's presence messages. A live record of this id that keeps
   * beating belongs to another process; one that stops is this node's previous run (killed, then restarted at once).
   */
  private async refuseIdInUse(): Promise<void> {
    // A store that fails to answer here fails the first heartbeat too, which is logged: no reason to refuse the start.
    const lastSeen = async () => (await this.store.nodes(Date.now() - NODE_LIVE_MS).catch(() => [])).find((n) => n.id === this.id)?.lastSeen;
    const before = await lastSeen();
    if (before === undefined) return;
    await new Promise((resolve) => setTimeout(resolve, HEARTBEAT_MS * 1.5));
    const after = await lastSeen();
    if (after !== undefined && after !== before) {
      throw new StartupError(`node id ${this.id} is in use by another live node: give each node its own --node-id (HERALD_NODE_ID)`);
    }
  }

  private async beat(): Promise<void> {
    const now = Date.now();
    try {
      const bus = this.busState();
      await this.store.heartbeat({ id: this.id, startedAt: this.startedAt, lastSeen: now, connections: this.connections(), version: this.version, bus });
      const live = await this.store.nodes(now - NODE_LIVE_MS);
      this.liveCount = Math.max(1, live.length);
      const others = live.filter((n) => n.id !== this.id);
      const peers = new Set(others.map((n) => n.id));
      const gone = this.peers !== undefined && [...this.peers].some((id) => !peers.has(id));
      this.peers = peers;
      this.outcomes.succeeded();
      this.onPeers({ peersDown: others.some((n) => n.bus === 'down'), gone });
    } catch (error) {
      this.outcomes.failed(error);
    }
  }

  live(now = Date.now()): Promise<NodeRecord[]> {
    return this.store.nodes(now - NODE_LIVE_MS);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    // A start refused for its id leaves the other node's record alone.
    if (!this.beating) return;
    await this.store.removeNode(this.id).catch((error: unknown) => this.outcomes.failed(error));
  }
}

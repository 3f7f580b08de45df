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
    /** Where this node's admin key comes from, for `herald admin-key reset` (NodeRecord.adminKey). */
    private readonly adminKey: NodeRecord['adminKey'] = 'store',
  ) {}

  /**
   * `unique`: refuse to start while another live process beats under this id (a shared store). `alone`: refuse while
   * any other process beats in the store (SQLite: one process per data directory).
   */
  async start(options: { unique?: boolean; alone?: boolean } = {}): Promise<void> {
    if (options.alone) {
      await this.refuseWhileBeating(
        () => true,
        (id) => `another Herald server (node ${id}) is running on this data directory: stop it first, or give this one a --data of its own`,
      );
    } else if (options.unique) {
      await this.refuseWhileBeating(
        (node) => node.id === this.id,
        () => `node id ${this.id} is in use by another live node: give each node its own --node-id (HERALD_NODE_ID)`,
      );
    }
    this.beating = true;
    await this.beat();
    this.timer = setInterval(() => void this.beat(), HEARTBEAT_MS);
    this.timer.unref();
  }

  /**
   * Refuses the start while a live record that `matches` keeps beating. Two processes under one id would both hold
   * every lease that id holds (each endpoint's deliveries sent twice, the dispatcher run twice) and ignore each
   * other's presence messages; two processes on one SQLite data directory each trust the channel heads they cache,
   * so the first one's appends to a channel the second wrote to failed with 500s, and its reads went stale. A record
   * that stops beating is a previous run's (killed, then restarted at once), which is waited out, at most 3 s.
   */
  private async refuseWhileBeating(matches: (node: NodeRecord) => boolean, refusal: (id: string) => string): Promise<void> {
    // A store that fails to answer here fails the first heartbeat too, which is logged: no reason to refuse the start.
    const beats = async () =>
      new Map((await this.store.nodes(Date.now() - NODE_LIVE_MS).catch(() => [])).filter(matches).map((n) => [n.id, n.lastSeen]));
    const before = await beats();
    if (before.size === 0) return;
    await new Promise((resolve) => setTimeout(resolve, HEARTBEAT_MS * 1.5));
    for (const [id, lastSeen] of await beats()) {
      if (before.get(id) !== lastSeen) throw new StartupError(refusal(id));
    }
  }

  private async beat(): Promise<void> {
    const now = Date.now();
    try {
      const bus = this.busState();
      await this.store.heartbeat({ id: this.id, startedAt: this.startedAt, lastSeen: now, connections: this.connections(), version: this.version, bus, adminKey: this.adminKey });
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

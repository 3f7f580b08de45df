import type { ClusterStore, NodeRecord } from '../store/types.js';
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
  /** Live nodes at the last heartbeat; at least this one. */
  liveCount = 1;

  constructor(
    private readonly store: ClusterStore,
    readonly id: string,
    private readonly version: string,
    private readonly connections: () => Record<string, number>,
    /** Each beat's outcome: a store outage fails every beat, and is logged as one streak. */
    private readonly outcomes: Pick<FailureStreak, 'failed' | 'succeeded'>,
  ) {}

  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => void this.beat(), HEARTBEAT_MS);
    this.timer.unref();
  }

  private async beat(): Promise<void> {
    const now = Date.now();
    try {
      await this.store.heartbeat({ id: this.id, startedAt: this.startedAt, lastSeen: now, connections: this.connections(), version: this.version });
      this.liveCount = Math.max(1, (await this.store.nodes(now - NODE_LIVE_MS)).length);
      this.outcomes.succeeded();
    } catch (error) {
      this.outcomes.failed(error);
    }
  }

  live(now = Date.now()): Promise<NodeRecord[]> {
    return this.store.nodes(now - NODE_LIVE_MS);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.store.removeNode(this.id).catch((error: unknown) => this.outcomes.failed(error));
  }
}

import type { EndpointOwnership } from '../delivery/worker.js';
import type { LeaseKeeper } from './leases.js';
import type { NodeRegistry } from './nodes.js';

const PREFIX = 'endpoint:';

/**
 * Endpoint leases shared fairly: a node keeps the leases it holds, and takes
 * a free (or expired) one only while it holds fewer than its share
 * (endpoints ÷ live nodes, rounded up), so the endpoints spread over the
 * nodes instead of all going to whichever started first.
 */
export class EndpointLeases implements EndpointOwnership {
  /** The endpoints this node last found it sends, so taking one over and losing one are each logged once. */
  private readonly sending = new Set<string>();

  constructor(
    private readonly leases: LeaseKeeper,
    private readonly nodes: Pick<NodeRegistry, 'liveCount'>,
    private readonly logger: { info(fields: object, message: string): void },
  ) {}

  async owns(endpointId: string, enabledEndpoints: number): Promise<boolean> {
    const owned = await this.ask(endpointId, enabledEndpoints);
    if (owned && !this.sending.has(endpointId)) {
      this.sending.add(endpointId);
      this.logger.info({ endpoint: endpointId }, 'endpoint lease taken: this node now sends its deliveries');
    } else if (!owned && this.sending.delete(endpointId)) {
      this.logger.info({ endpoint: endpointId }, 'endpoint lease given up');
    }
    return owned;
  }

  /** A deleted or disabled endpoint's lease is handed back, so neither it nor its name stays with this node. */
  forget(endpointId: string): void {
    this.sending.delete(endpointId);
    void this.leases.release(PREFIX + endpointId);
  }

  private async ask(endpointId: string, enabledEndpoints: number): Promise<boolean> {
    const name = PREFIX + endpointId;
    if (this.leases.isHeld(name)) return this.leases.hold(name);
    const share = Math.ceil(enabledEndpoints / Math.max(1, this.nodes.liveCount));
    if (this.leases.count(PREFIX) >= share) return false;
    return this.leases.hold(name);
  }
}

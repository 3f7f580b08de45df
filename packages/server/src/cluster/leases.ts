import type { ClusterStore } from '../store/types.js';

/**
 * This node's leases, renewed lazily: `hold` asks the store only when the
 * lease is unknown or a third of its lifetime has passed, so checking it on
 * every pump costs nothing most of the time. A lease this node stops renewing
 * (it died, or it paused longer than the lifetime) passes to another node.
 */
export class LeaseKeeper {
  private readonly held = new Map<string, number>();
  /**
   * Leases refused when last asked (another node holds them), and when to ask again: a node short of its share
   * of endpoints would otherwise ask the store for each of the others' on every pump. A quarter of the lifetime:
   * shorter than the SingletonRunner's third, so each of its ticks still asks, and a dead holder's lease passes on
   * within 1¼ lifetimes.
   */
  private readonly refused = new Map<string, number>();
  /** The size of `refused` at which expired entries are next dropped. */
  private pruneAt = 1000;

  constructor(
    private readonly store: ClusterStore,
    readonly holder: string,
    readonly ttlMs: number,
  ) {}

  async hold(name: string, now = Date.now()): Promise<boolean> {
    const expiresAt = this.held.get(name);
    if (expiresAt !== undefined && expiresAt - now > (this.ttlMs * 2) / 3) return true;
    if ((this.refused.get(name) ?? 0) > now) return false;
    let ok: boolean;
    try {
      ok = await this.store.acquireLease(name, this.holder, this.ttlMs, now);
    } catch {
      // The store is unreachable: assume the lease lost rather than act on one another node may now hold.
      ok = false;
    }
    if (ok) {
      this.held.set(name, now + this.ttlMs);
      this.refused.delete(name);
    } else {
      this.held.delete(name);
      this.refuse(name, now);
    }
    return ok;
  }

  private refuse(name: string, now: number): void {
    // Names of endpoints deleted since would otherwise stay for good. Pruned when the map has doubled, so the
    // scans cost O(1) per refusal however many leases other nodes hold.
    if (this.refused.size >= this.pruneAt) {
      for (const [other, retryAt] of this.refused) if (retryAt <= now) this.refused.delete(other);
      this.pruneAt = Math.max(1000, this.refused.size * 2);
    }
    this.refused.set(name, now + this.ttlMs / 4);
  }

  /** Leases believed held, by name prefix. */
  count(prefix: string, now = Date.now()): number {
    let n = 0;
    for (const [name, expiresAt] of this.held) if (name.startsWith(prefix) && expiresAt > now) n++;
    return n;
  }

  isHeld(name: string, now = Date.now()): boolean {
    return (this.held.get(name) ?? 0) > now;
  }

  async release(name: string): Promise<void> {
    if (!this.held.delete(name)) return;
    await this.store.releaseLease(name, this.holder).catch(() => {});
  }

  /** A clean shutdown hands every lease over at once instead of after it expires. */
  async releaseAll(): Promise<void> {
    await Promise.all([...this.held.keys()].map((name) => this.release(name)));
  }
}

/**
 * Runs a piece of work on one node of the cluster at a time: the holder of
 * the lease `name`. Every node tries to take it every third of its lifetime;
 * the one that gets it starts the work, and stops it if it ever loses it.
 */
export class SingletonRunner {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private stopped = false;
  private transition: Promise<void> = Promise.resolve();

  constructor(
    private readonly leases: LeaseKeeper,
    private readonly name: string,
    private readonly work: { start(): Promise<void>; stop(): Promise<void> },
    private readonly onError: (error: unknown) => void,
  ) {}

  async start(): Promise<void> {
    await this.tick();
    this.timer = setInterval(() => void this.tick(), Math.max(100, Math.floor(this.leases.ttlMs / 3)));
    this.timer.unref();
  }

  get active(): boolean {
    return this.running;
  }

  private tick(): Promise<void> {
    this.transition = this.transition.then(async () => {
      if (this.stopped) return;
      const held = await this.leases.hold(this.name);
      try {
        if (held && !this.running) {
          this.running = true;
          try {
            await this.work.start();
          } catch (error) {
            // Half started: undo it, so the next tick starts it again rather than holding the lease with no work.
            this.running = false;
            await this.work.stop().catch(this.onError);
            throw error;
          }
        } else if (!held && this.running) {
          this.running = false;
          await this.work.stop();
        }
      } catch (error) {
        this.onError(error);
      }
    });
    return this.transition;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.transition;
    if (this.running) {
      this.running = false;
      await this.work.stop().catch(this.onError);
    }
    await this.leases.release(this.name);
  }
}

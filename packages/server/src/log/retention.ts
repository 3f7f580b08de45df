import { dedupeLifetime, type HeraldConfig } from '../config/schema.js';
import { channelPages, type EventStore, type TrimPolicy } from '../store/types.js';
import { matchesAny } from '../auth/patterns.js';
import type { LeaseKeeper } from '../cluster/leases.js';

type RetentionConfig = HeraldConfig['retention'];

/** The longest the retention pass runs before it lets other work in (ms). */
const RETENTION_SLICE_MS = 5;

/** The policy for one channel: the first rule whose patterns match, else the defaults. */
export function retentionFor(config: RetentionConfig, channel: string): { maxEvents: number; maxAge: number } {
  const rule = config.rules.find((r) => matchesAny(r.channels, channel));
  return { maxEvents: rule?.maxEvents ?? config.maxEvents, maxAge: rule?.maxAge ?? config.maxAge };
}

/** Trims every channel in the background, one channel at a time so appends keep flowing. */
export class RetentionTrimmer {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  private readonly config: RetentionConfig;
  /** Publish idempotency keys and ingest dedupe ids share one table, so they expire at the longer window. */
  private readonly idempotencyWindow: number;

  constructor(
    private readonly store: EventStore,
    config: Pick<HeraldConfig, 'retention' | 'ingest'>,
    private readonly onError: (error: unknown) => void,
    /** In a cluster, only the holder of the `retention` lease trims, so nodes do not trim the same channels at once. */
    private readonly leases?: LeaseKeeper,
  ) {
    this.config = config.retention;
    this.idempotencyWindow = dedupeLifetime(config);
  }

  start(): void {
    this.timer = setInterval(() => void this.runOnce(), this.config.trimInterval * 1000);
    this.timer.unref();
  }

  /** One pass over every channel; concurrent calls share the pass in progress. */
  runOnce(now = Date.now()): Promise<void> {
    this.running ??= this.pass(now).catch(this.onError).finally(() => (this.running = undefined));
    return this.running;
  }

  private async pass(now: number): Promise<void> {
    if (this.leases && !(await this.leases.hold('retention', now))) return;
    let slice = performance.now();
    for await (const page of channelPages(this.store)) {
      for (const channel of page) {
        if (this.stopped) return;
        // A channel with nothing to trim resolves without a turn of the event loop; over many channels that adds
        // up to a long stall. Give other work its turn every few milliseconds.
        if (performance.now() - slice > RETENTION_SLICE_MS) {
          await new Promise((r) => setImmediate(r));
          slice = performance.now();
        }
        const { maxEvents, maxAge } = retentionFor(this.config, channel);
        const policy: TrimPolicy = { maxEvents, olderThan: now - maxAge * 1000 };
        await this.store.trim(channel, policy);
      }
    }
    await this.store.expireIdempotencyKeys(now - this.idempotencyWindow * 1000);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running;
  }
}

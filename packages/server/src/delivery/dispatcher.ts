import type { HeraldEvent } from '@herald/protocol';
import type { FastifyBaseLogger } from 'fastify';
import type { EventLog } from '../log/event-log.js';
import type { DeliveryStore, EndpointRecord, NewDelivery } from '../store/types.js';
import { matchesAny } from '../auth/patterns.js';

const PAGE = 500;
/** How often cursors that moved without creating deliveries are written. */
const CURSOR_SAVE_MS = 1000;

/** `eventTime` is the event's time in ms, parsed once by the caller for all endpoints. */
function endpointWants(endpoint: EndpointRecord, event: HeraldEvent, eventTime: number): boolean {
  return (
    // An endpoint receives what happened after it was registered, not the history before.
    eventTime >= endpoint.createdAt &&
    matchesAny(endpoint.channels, event.channel) &&
    (endpoint.types.length === 0 || matchesAny(endpoint.types, event.type))
  );
}

/**
 * Turns the log into deliveries. It follows every channel from its own
 * durable cursor, so deliveries are derived from the log rather than from a
 * notification: after a crash it reads on from the cursor and recreates what
 * was missed (the store ignores a delivery that already exists).
 */
export class Dispatcher {
  private cursors = new Map<string, number>();
  private endpoints: EndpointRecord[] = [];
  /** One chain per channel keeps each channel's deliveries in order without blocking the others. */
  private readonly chains = new Map<string, Promise<void>>();
  private unsubscribe: (() => void) | undefined;
  private stopped = false;
  /** Channels whose cursor moved past events no endpoint wanted, not yet written. */
  private readonly unsaved = new Set<string>();
  private saveTimer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly log: EventLog,
    private readonly store: DeliveryStore,
    private readonly logger: FastifyBaseLogger,
    private readonly onCreated: () => void,
  ) {}

  async start(): Promise<void> {
    this.endpoints = await this.store.listEndpoints();
    this.cursors = await this.store.cursors();
    this.unsubscribe = this.log.bus.subscribeAll((events) => this.enqueue(events[0]!.channel, events));
    for (const channel of await this.log.store.channels()) this.enqueue(channel, []);
    this.saveTimer = setInterval(() => this.saveCursors(), CURSOR_SAVE_MS);
    this.saveTimer.unref();
  }

  /**
   * Writes cursors that moved without creating deliveries. Their writes can
   * wait: a stale cursor only makes the dispatcher look at those events
   * again after a crash, and it skips them again (or the store ignores the
   * delivery that already exists).
   */
  private saveCursors(): void {
    for (const channel of this.unsaved) this.enqueue(channel, [], true);
    this.unsaved.clear();
  }

  /** Called after any endpoint change, so matching uses the current set. */
  async reloadEndpoints(): Promise<void> {
    this.endpoints = await this.store.listEndpoints();
  }

  private enqueue(channel: string, events: readonly HeraldEvent[], save = false): void {
    const previous = this.chains.get(channel) ?? Promise.resolve();
    const next = previous
      .then(() => (save ? this.store.createDeliveries(channel, this.cursors.get(channel) ?? 0, []) : this.advance(channel, events)))
      .catch((err: unknown) => this.logger.error({ err, channel }, 'creating deliveries failed; will retry from the log'));
    this.chains.set(channel, next);
    void next.finally(() => {
      if (this.chains.get(channel) === next) this.chains.delete(channel);
    });
  }

  /** Creates deliveries for everything after the channel's cursor: from the bus when it follows on, else from the log. */
  private async advance(channel: string, live: readonly HeraldEvent[]): Promise<void> {
    if (this.stopped) return;
    let cursor = this.cursors.get(channel) ?? 0;
    if (live.length > 0 && live[0]!.seq <= cursor + 1 && live.at(-1)!.seq > cursor) {
      await this.create(channel, live.filter((e) => e.seq > cursor));
      return;
    }
    if (live.length > 0 && live.at(-1)!.seq <= cursor) return;
    for (;;) {
      const page = await this.log.read(channel, cursor, PAGE);
      if (page.events.length === 0) {
        if (page.head > cursor) await this.create(channel, [], page.head);
        return;
      }
      await this.create(channel, page.events);
      cursor = page.events.at(-1)!.seq;
      if (page.events.length < PAGE || this.stopped) return;
    }
  }

  private async create(channel: string, events: readonly HeraldEvent[], headSeq?: number): Promise<void> {
    const deliveries: NewDelivery[] = [];
    const now = Date.now();
    for (const event of events) {
      let payload: string | undefined;
      const eventTime = Date.parse(event.time);
      for (const endpoint of this.endpoints) {
        if (!endpointWants(endpoint, event, eventTime)) continue;
        payload ??= JSON.stringify(event);
        deliveries.push({ endpointId: endpoint.id, eventId: event.id, channel, seq: event.seq, payload, createdAt: now });
      }
    }
    const seq = events.at(-1)?.seq ?? headSeq!;
    if (deliveries.length > 0) {
      await this.store.createDeliveries(channel, seq, deliveries);
      this.unsaved.delete(channel);
    } else {
      this.unsaved.add(channel);
    }
    this.cursors.set(channel, Math.max(seq, this.cursors.get(channel) ?? 0));
    if (deliveries.length > 0) this.onCreated();
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    clearInterval(this.saveTimer);
    this.saveCursors();
    this.stopped = true;
    await Promise.all([...this.chains.values()]);
  }
}

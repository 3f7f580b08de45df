import type { BatchPublishInput } from '@herald/protocol';
import { DEFAULT_EVENT_TYPE, GENERATED_EVENT_ID_PATTERN, HeraldError } from '@herald/protocol';
import type { Bus } from '../bus/types.js';
import type { AppendResult, EventStore, ReadResult, StubPage } from '../store/types.js';
import { newEventId } from './ids.js';
import { observeFanoutLag, recordAppend, type WayIn } from '../metrics/index.js';
import { publishSpans, withTraceparent } from '../tracing/index.js';
import { WriteHealth } from '../store/disk-full.js';

export interface LogPublishInput extends BatchPublishInput {
  meta?: Record<string, unknown> | undefined;
}

export interface PublishOptions {
  /** The way in, for `herald_events_appended_total`; `http` when not said. */
  via?: WayIn;
  /** A validated W3C `traceparent`: kept as each event's `meta.traceparent` (unless its own meta has one). */
  traceparent?: string | undefined;
}

/**
 * The one way events enter Herald, whatever the transport: stamp them,
 * append them durably, then announce the new ones on the bus. Every
 * producer (HTTP, WebSocket, ingest) goes through here so they all get the
 * same ids, dedupe and fan-out.
 */
export class EventLog {
  /** Whether appends can be written (false after a disk-full failure until one succeeds again); see /readyz. */
  readonly writes = new WriteHealth();

  constructor(
    readonly store: EventStore,
    readonly bus: Bus,
    private readonly onBusError: (error: unknown) => void = () => {},
  ) {
    // An append answered as of unknown outcome that did commit: announced now, as a resolved one would have been.
    store.onLateCommit?.((events) => void this.bus.publish(events).catch(this.onBusError));
  }

  async publish(inputs: readonly LogPublishInput[], idempotencyKey?: string, options: PublishOptions = {}): Promise<AppendResult> {
    for (const input of inputs) if (input.id !== undefined && GENERATED_EVENT_ID_PATTERN.test(input.id)) throw reservedId(input.id);
    const time = Date.now();
    const via = options.via ?? 'http';
    const started = performance.now();
    const tracing = publishSpans(options.traceparent, () => ({ 'herald.via': via, 'herald.events': inputs.length }));
    const appending = this.store.append({
      idempotencyKey,
      events: inputs.map((input) => ({
        channel: input.channel,
        id: input.id ?? newEventId(),
        generated: input.id === undefined,
        type: input.type ?? DEFAULT_EVENT_TYPE,
        data: input.data,
        time,
        meta: withTraceparent(input.meta, tracing.traceparent),
      })),
    });
    let result: AppendResult;
    try {
      result = await appending;
    } catch (error) {
      tracing.end(error);
      throw this.writes.failed(error);
    }
    this.writes.succeeded();
    tracing.appended();
    const fresh = result.created.every(Boolean) ? result.events : result.events.filter((_, i) => result.created[i]);
    recordAppend(via, fresh.length, (performance.now() - started) / 1000);
    // Announced after the append resolves, so a listener never hears of an event it cannot read.
    if (fresh.length > 0) {
      // Local listeners are called before publish returns: the lag is observed once per publish, not per socket.
      tracing.fanout(fresh.length, () => this.bus.publish(fresh).catch(this.onBusError));
      observeFanoutLag((Date.now() - time) / 1000);
    }
    tracing.end();
    return result;
  }

  /** See {@link EventStore.read}: with `maxBytes`, a page can end before `head` with fewer than `limit` events. */
  read(channel: string, after: number, limit: number, maxBytes?: number): Promise<ReadResult> {
    return this.store.read(channel, after, limit, maxBytes);
  }

  /** See {@link EventStore.stubs}. */
  stubs(channel: string, after: number, limit: number): Promise<StubPage> {
    return this.store.stubs(channel, after, limit);
  }
}

function reservedId(id: string): HeraldError {
  return new HeraldError('bad_request', `Event id ${id} has the form of the ids Herald generates (evt_ and 26 base32 characters); choose another.`);
}

import type { BatchPublishInput } from '@herald/protocol';
import { DEFAULT_EVENT_TYPE } from '@herald/protocol';
import type { Bus } from '../bus/types.js';
import type { AppendResult, EventStore, ReadResult } from '../store/types.js';
import { newEventId } from './ids.js';

export interface LogPublishInput extends BatchPublishInput {
  meta?: Record<string, unknown> | undefined;
}

/**
 * The one way events enter Herald, whatever the transport: stamp them,
 * append them durably, then announce the new ones on the bus. Every
 * producer (HTTP, WebSocket, ingest) goes through here so they all get the
 * same ids, dedupe and fan-out.
 */
export class EventLog {
  constructor(
    readonly store: EventStore,
    readonly bus: Bus,
    private readonly onBusError: (error: unknown) => void = () => {},
  ) {}

  async publish(inputs: readonly LogPublishInput[], idempotencyKey?: string): Promise<AppendResult> {
    const time = Date.now();
    const result = await this.store.append({
      idempotencyKey,
      events: inputs.map((input) => ({
        channel: input.channel,
        id: input.id ?? newEventId(),
        type: input.type ?? DEFAULT_EVENT_TYPE,
        data: input.data,
        time,
        meta: input.meta,
      })),
    });
    const fresh = result.created.every(Boolean) ? result.events : result.events.filter((_, i) => result.created[i]);
    // Announced after the append resolves, so a listener never hears of an event it cannot read.
    if (fresh.length > 0) this.bus.publish(fresh).catch(this.onBusError);
    return result;
  }

  read(channel: string, after: number, limit: number): Promise<ReadResult> {
    return this.store.read(channel, after, limit);
  }
}

import type { SseStream } from './stream.js';
import { Rota } from '../../util/rota.js';

/**
 * Every open SSE stream. One rota pings them all, a slice at a time (one shared buffer, no timer per connection),
 * and shutdown ends them all with a `close` event.
 */
export class SseHub {
  private readonly streams: Rota<SseStream>;
  /** Set by `closeAll`: a stream that opens later (its start was still being read) is ended at once with it. */
  private closedWith: string | undefined;

  constructor(heartbeatSeconds: number) {
    this.streams = new Rota(heartbeatSeconds * 1000, (stream) => stream.ping());
  }

  get size(): number {
    return this.streams.size;
  }

  add(stream: SseStream): void {
    if (this.closedWith !== undefined) {
      stream.end(this.closedWith);
      return;
    }
    this.streams.add(stream);
  }

  remove(stream: SseStream): void {
    this.streams.delete(stream);
  }

  closeAll(reason: string): void {
    this.closedWith = reason;
    this.streams.stop();
    for (const stream of [...this.streams]) stream.end(reason);
  }
}

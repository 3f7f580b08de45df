import type { SseStream } from './stream.js';

/**
 * Every open SSE stream. One timer pings them all (one shared buffer, no timer
 * per connection), and shutdown ends them all with a `close` event.
 */
export class SseHub {
  private readonly streams = new Set<SseStream>();
  private readonly timer: NodeJS.Timeout;
  /** Set by `closeAll`: a stream that opens later (its start was still being read) is ended at once with it. */
  private closedWith: string | undefined;

  constructor(heartbeatSeconds: number) {
    this.timer = setInterval(() => {
      for (const stream of this.streams) stream.ping();
    }, heartbeatSeconds * 1000);
    this.timer.unref();
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
    clearInterval(this.timer);
    for (const stream of [...this.streams]) stream.end(reason);
  }
}

import type { TransportContext, TransportEnd, TransportHandlers } from './types.js';

/** What every transport shares: it ends once, and closing it says nothing to the client. */
export abstract class BaseTransport {
  protected ended = false;

  constructor(
    protected readonly ctx: TransportContext,
    protected readonly handlers: TransportHandlers,
  ) {}

  /** Releases sockets, streams and timers. */
  protected abstract cleanup(): void;

  protected finish(end: TransportEnd): void {
    if (this.ended) return;
    this.ended = true;
    this.cleanup();
    this.handlers.end(end);
  }

  close(): void {
    this.ended = true;
    this.cleanup();
  }
}

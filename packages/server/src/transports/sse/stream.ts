import type { ServerResponse } from 'node:http';
import type { FastifyBaseLogger } from 'fastify';
import { countSlowConsumer } from '../../metrics/index.js';

const PING = Buffer.from(': ping\n\n');

/**
 * One open `text/event-stream` response. It holds the raw response and the
 * shared logger only, never Fastify's request or reply, so an idle stream
 * costs as little memory as Node's own objects allow. Writes are refused past the send
 * buffer bound: the client is dropped rather than let server memory grow.
 */
export class SseStream {
  closed = false;
  private drainWaiter: Promise<void> | undefined;

  constructor(
    readonly res: ServerResponse,
    private readonly maxBuffered: number,
    private readonly logger: FastifyBaseLogger,
    private readonly onClosed: (stream: SseStream) => void,
  ) {
    res.once('close', () => this.finish());
  }

  write(chunk: Buffer | string): void {
    if (this.closed) return;
    if (this.res.writableLength + chunk.length > this.maxBuffered) {
      this.logger.warn({ buffered: this.res.writableLength }, 'SSE client too slow: dropping it');
      countSlowConsumer('sse');
      this.res.destroy();
      this.finish();
      return;
    }
    this.res.write(chunk);
  }

  /** Resolves once the socket has flushed, or undefined when it need not wait. */
  drained(): Promise<void> | undefined {
    if (this.closed || this.res.writableLength < this.maxBuffered / 2) return undefined;
    this.drainWaiter ??= new Promise<void>((resolve) => {
      const done = () => {
        this.res.off('drain', done);
        this.res.off('close', done);
        this.drainWaiter = undefined;
        resolve();
      };
      this.res.on('drain', done);
      this.res.on('close', done);
    });
    return this.drainWaiter;
  }

  /** Something broke under the stream: log it and cut the connection, so the client reconnects and resumes. */
  fail(err: unknown): void {
    this.logger.error({ err }, 'SSE stream failed');
    this.res.destroy();
    this.finish();
  }

  ping(): void {
    this.write(PING);
  }

  /** A named `close` event, then the end of the response: sent before a planned shutdown. */
  end(reason: string): void {
    if (this.closed) return;
    this.write(`event: close\ndata: ${JSON.stringify({ reason })}\n\n`);
    this.res.end();
    this.finish();
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClosed(this);
  }
}

import type { ServerResponse } from 'node:http';
import type { GapInfo, HeraldEvent } from '@herald/protocol';
import type { FastifyBaseLogger } from 'fastify';
import { countRealtimeDelivery, countSlowConsumer } from '../../metrics/index.js';
import type { ChannelFeed, FeedSink } from '../feed.js';
import { httpChunk, sharedChunk, sseEvent, type SseEventKind } from '../frames.js';
import { Outbox, type RawSocket } from '../outbox.js';
import { watchStall } from '../stall-watch.js';
import type { ReplayBudget, ReplayReservation } from '../replay-budget.js';
import type { EphemeralListener } from '../../presence/service.js';
import type { EphemeralFrames } from '../../presence/frames.js';

const PING = Buffer.from(': ping\n\n');
const NO_FEEDS: readonly ChannelFeed[] = [];
const STREAM = Symbol('herald.sseStream');
/** One listener for every response, not a closure (and a once-wrapper) per stream: it finds its stream on it. */
function onResponseClose(this: ServerResponse & { [STREAM]?: SseStream }): void {
  this[STREAM]?.responseClosed();
}
/** Stands in for the socket of a response whose client left before the stream opened. */
const GONE: RawSocket = { write: () => false, writableLength: 0, destroyed: true, writable: false, on: () => {}, off: () => {} };

/** What every stream of a server shares: one object, not five fields on each idle stream. */
export interface SseStreamSettings {
  /** `limits.sendBufferBytes`: past it the client is dropped. */
  readonly maxBuffered: number;
  /** `limits.replayStallTimeout`, ms: a replay waiting on a client that reads nothing for this long drops it. */
  readonly stallMs: number;
  /** `limits.replayBytes`: what the node's replays may hold together. */
  readonly replayBudget: ReplayBudget;
  readonly logger: FastifyBaseLogger;
  readonly onClosed: (stream: SseStream) => void;
}

/**
 * One open `text/event-stream` response. The status line and headers go out
 * through Node's response; after that every byte is written to the socket
 * directly, through the outbox it extends: an event's bytes (chunk framing
 * included) are built once and shared by every stream, and a tick's events
 * leave in one write. It holds the raw response, its feeds and the shared
 * logger only, never Fastify's request or reply. Writes are refused past the
 * send buffer bound: the client is dropped rather than let server memory grow.
 *
 * As the sink of a single-channel stream's feed it writes `id: <seq>` events;
 * multi-channel streams give their feeds sinks of their own (see routes.ts).
 */
export class SseStream extends Outbox implements FeedSink, EphemeralListener {
  closed = false;
  /** The feeds this stream follows; stopped when it closes. */
  private feeds: readonly ChannelFeed[] = NO_FEEDS;
  /** Stops the credential watch; called when it closes. */
  unwatch: (() => void) | undefined;
  private drainWaiter: Promise<void> | undefined;
  /** HTTP/1.1 responses are chunked; an HTTP/1.0 body simply runs until the connection closes. Known at `begin`. */
  private chunked = false;

  constructor(
    readonly res: ServerResponse,
    private readonly settings: SseStreamSettings,
  ) {
    super(res.socket && !res.socket.destroyed ? res.socket : GONE);
    if (this.socket === GONE) {
      this.closed = true;
      return;
    }
    (res as ServerResponse & { [STREAM]?: SseStream })[STREAM] = this;
    res.on('close', onResponseClose);
  }

  /** Called once the response head is written (before any write): only then is the body's framing known. */
  begin(): void {
    this.chunked = this.res.chunkedEncoding;
  }

  /**
   * Queues SSE bytes. A Buffer is taken to be shared by many streams (an
   * ephemeral broadcast, the ping) and its chunk is built once; a string is
   * this stream's own.
   */
  write(bytes: Buffer | string): void {
    if (this.closed) return;
    this.send(this.chunked ? (typeof bytes === 'string' ? httpChunk(bytes) : sharedChunk(bytes)) : typeof bytes === 'string' ? Buffer.from(bytes) : bytes);
  }

  /** Queues an event's SSE bytes, framed once for every stream (frames.ts). */
  writeEvent(event: HeraldEvent, kind: SseEventKind): void {
    if (this.closed) return;
    this.send(sseEvent(event, kind, this.chunked));
  }

  private send(frame: Buffer): void {
    if (this.buffered + frame.length > this.settings.maxBuffered) return this.tooSlow('SSE client too slow: dropping it');
    this.queue(frame);
  }

  private tooSlow(message: string): void {
    if (this.closed) return;
    this.settings.logger.warn({ buffered: this.buffered }, message);
    countSlowConsumer('sse');
    this.discard();
    this.res.destroy();
    this.finish();
  }

  /** FeedSink of a single-channel stream: the event with its seq as the id. */
  event(event: HeraldEvent): void {
    this.writeEvent(event, 'single');
    countRealtimeDelivery('sse');
  }

  /** FeedSink of a single-channel stream: a `gap` event whose id moves the cursor past the lost events. */
  gap(gap: GapInfo): void {
    this.write(`id: ${gap.oldest - 1}\nevent: gap\ndata: ${JSON.stringify(gap)}\n\n`);
  }

  /** Ephemeral publishes: named events without `id:`, so the stream's cursor stays on the last logged event. */
  ephemeral(frames: EphemeralFrames): void {
    this.write(frames.eventStream);
  }

  /** The channels of the feeds it follows. */
  channels(): string[] {
    return this.feeds.map((feed) => feed.channel);
  }

  /** The feeds to stop when the stream closes (at once, when it already has). */
  follow(feeds: readonly ChannelFeed[]): void {
    this.feeds = feeds;
    if (this.closed) for (const feed of feeds) feed.stop();
  }

  /** Resolves once the socket has flushed, or undefined when it need not wait. */
  drained(): Promise<void> | undefined {
    if (this.closed || this.buffered < this.settings.maxBuffered / 2) return undefined;
    const socket = this.res.socket;
    if (!socket) return undefined;
    this.drainWaiter ??= new Promise<void>((resolve) => {
      const done = () => {
        stopWatching();
        socket.off('drain', done);
        socket.off('close', done);
        this.drainWaiter = undefined;
        resolve();
      };
      // Dropping the stream closes its socket, which ends this wait.
      // Progress is the buffer going down.
      const stopWatching = watchStall(() => -this.buffered, this.settings.stallMs, () => this.tooSlow('SSE client read nothing of its replay: dropping it'));
      socket.on('drain', done);
      socket.on('close', done);
    });
    return this.drainWaiter;
  }

  /** FeedSink: room for a replay page in the node's budget; none once the stream has closed. */
  reserveReplay(bytes: number, continuing: boolean): ReplayReservation | undefined {
    if (this.closed) return undefined;
    return this.replayRoom(this.settings.replayBudget, bytes, continuing, this.settings.stallMs, () => this.tooSlow('SSE client read nothing of its replay pages: dropping it'));
  }

  /** Something broke under the stream: log it and cut the connection, so the client reconnects and resumes. */
  fail(err: unknown): void {
    this.settings.logger.error({ err }, 'SSE stream failed');
    this.discard();
    this.res.destroy();
    this.finish();
  }

  /** FeedSink: the log could not be read. */
  failed(err: unknown): void {
    this.fail(err);
  }

  ping(): void {
    this.write(PING);
  }

  /** A named `close` event, then the end of the response: sent before a planned shutdown. */
  end(reason: string): void {
    if (this.closed) return;
    this.write(`event: close\ndata: ${JSON.stringify({ reason })}\n\n`);
    // The queued bytes go before the end of the body that Node writes.
    this.flush();
    this.res.end();
    this.finish();
  }

  /** The response closed: the client left, or the stream ended or failed. */
  responseClosed(): void {
    this.finish();
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    for (const feed of this.feeds) feed.stop();
    this.unwatch?.();
    this.settings.onClosed(this);
  }
}

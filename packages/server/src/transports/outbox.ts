import { SocketReplays, type ReplayBudget, type ReplayReservation } from './replay-budget.js';

/** The socket side an outbox needs: Node's `net.Socket` has all of it. */
export interface RawSocket {
  write(chunk: Buffer): boolean;
  readonly writableLength: number;
  readonly destroyed: boolean;
  readonly writable: boolean;
  /** `drain` and `close`, for a replay's ledger (replay-budget.ts). */
  on(event: 'drain' | 'close', listener: () => void): unknown;
  off(event: 'drain' | 'close', listener: () => void): unknown;
}

/**
 * Past this many queued bytes an outbox writes at once rather than at the end of the tick: coalescing is for
 * small frames, and the kernel should take big ones as they come so the send buffer bound (which counts what
 * is queued here) is reached only by a client that does not read.
 */
const WRITE_AT_BYTES = 64 * 1024;

/** Outboxes with frames queued in this tick, flushed together once the tick's work is done. */
let dirty: Outbox[] = [];

/**
 * Writes every queued outbox. A broadcast queues the same frames (the same
 * Buffer objects) on every subscriber's outbox, so when an outbox holds more
 * than one frame and the previous one held the very same frames, their
 * joined bytes are reused: one copy per tick for the whole broadcast, and
 * one write per socket however many events the tick delivered.
 */
function flushAll(): void {
  const boxes = dirty;
  dirty = [];
  let lastFrames: Buffer[] | undefined;
  let lastJoined: Buffer | undefined;
  for (const box of boxes) {
    const frames = box.take();
    if (frames === undefined) continue;
    if (!Array.isArray(frames)) {
      box.writeNow(frames);
      continue;
    }
    if (!lastFrames || lastFrames.length !== frames.length || frames.some((f, i) => f !== lastFrames![i])) {
      lastFrames = frames;
      lastJoined = Buffer.concat(frames);
    }
    box.writeNow(lastJoined!);
  }
}

/**
 * One connection's outgoing bytes, written at most once per tick. Frames are
 * queued as they are produced (an event per subscriber, a page of backlog)
 * and written when the tick's synchronous work and promise jobs are done,
 * so a group commit of many events costs each socket one system call, not
 * one per event. Nothing waits for a timer: the write happens in the same
 * turn of the event loop, so latency does not grow.
 *
 * Callers must send everything for the connection through the outbox (or
 * `flush()` first), so bytes keep their order on the wire.
 */
export class Outbox {
  /** One queued frame, or several; undefined when empty, so an idle connection holds no array. */
  private queued: Buffer | Buffer[] | undefined;
  /** Bytes queued and not yet handed to the socket. */
  private queuedBytes = 0;
  /** Its replay pages held under the node's replay budget; undefined while it holds none. */
  private replays: SocketReplays | undefined;

  constructor(protected readonly socket: RawSocket) {}

  /**
   * Room in `budget` for the next page of a replay on this connection (see replay-budget.ts; `continuing`: not its
   * first page), or undefined once the socket is gone. A connection that sends nothing of its replay pages for
   * `stallMs` is `stalled`.
   */
  protected replayRoom(budget: ReplayBudget, bytes: number, continuing: boolean, stallMs: number, stalled: () => void): ReplayReservation | undefined {
    if (this.socket.destroyed) return undefined;
    this.replays ??= new SocketReplays(budget, this, this.socket, stallMs, stalled, () => (this.replays = undefined));
    return this.replays.reserve(bytes, continuing);
  }

  /** What the connection holds and the client has not read yet: the socket's buffer plus this tick's queue. */
  get buffered(): number {
    return this.socket.writableLength + this.queuedBytes;
  }

  /** Queues bytes to go out at the end of this tick. */
  queue(frame: Buffer): void {
    if (this.queued === undefined) {
      this.queued = frame;
      if (dirty.push(this) === 1) process.nextTick(flushAll);
    } else if (Array.isArray(this.queued)) {
      this.queued.push(frame);
    } else {
      this.queued = [this.queued, frame];
    }
    this.queuedBytes += frame.length;
    if (this.replays) this.replays.queued += frame.length;
    if (this.queuedBytes >= WRITE_AT_BYTES) this.flush();
  }

  /** Writes what is queued now, before something that must follow it (a close frame, the end of a response). */
  flush(): void {
    const frames = this.take();
    if (frames !== undefined) this.writeNow(Array.isArray(frames) ? Buffer.concat(frames) : frames);
  }

  /** Drops what is queued: the connection is going away. */
  discard(): void {
    this.take();
  }

  /** @internal Empties the queue and returns it; for `flushAll`. */
  take(): Buffer | Buffer[] | undefined {
    const frames = this.queued;
    this.queued = undefined;
    this.queuedBytes = 0;
    return frames;
  }

  /** @internal */
  writeNow(bytes: Buffer): void {
    if (this.socket.destroyed || !this.socket.writable) return;
    this.socket.write(bytes);
    // A replay page the kernel took at once is no longer held: its budget goes back now, not at the next check.
    this.replays?.release();
  }
}

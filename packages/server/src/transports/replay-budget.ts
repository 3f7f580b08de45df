import type { RawSocket } from './outbox.js';
import { watchStall } from './stall-watch.js';
import { countReplayWait } from '../metrics/index.js';

/**
 * While replays wait for room, a connection whose replay pages have not moved for this long gives its share up (it is
 * dropped, and its client resumes from its position when it reconnects), whatever `limits.replayStallTimeout` says:
 * otherwise clients that read nothing could hold the whole budget, and every other replay, for that long.
 */
const CONTENDED_STALL_MS = 5000;

/** A reservation waiting for room, in its turn. */
interface Wait {
  readonly bytes: number;
  readonly granted: () => void;
}

/**
 * What the SSE and WebSocket replays and the poll answers of every connection on this node may hold together in their
 * sockets' send buffers (`limits.replayBytes`). One connection's replay is bounded by its send buffer bound, and one
 * whose client reads nothing is dropped after `limits.replayStallTimeout`; across connections, only the connection
 * cap bounded them: 300 SSE streams that read nothing of a 32 MB backlog made the server hold 1.3 GB. Live events
 * need no share: a broadcast's frames are the same bytes on every socket, where each replay reads and frames its own.
 *
 * A replay reserves a page before reading it and, once the page is handed over, keeps what it queued until its
 * socket has sent it (see {@link SocketReplays}); a replay with no room waits in turn. One reservation is always let
 * through when nothing is held, so a page larger than the budget still goes.
 */
export class ReplayBudget {
  /** Bytes reserved or held. */
  private used = 0;
  /**
   * Waiting reservations, oldest first: those of replays whose last page has been sent (a client reading along, who
   * should not wait behind every new replay for each page), then the others. Sets, so one withdrawn (its connection
   * closed) leaves in O(1).
   */
  private readonly reading = new Set<Wait>();
  private readonly waits = new Set<Wait>();

  constructor(readonly capacity: number) {}

  get held(): number {
    return this.used;
  }

  /** Whether some reservation waits for room. */
  get contended(): boolean {
    return this.reading.size > 0 || this.waits.size > 0;
  }

  /**
   * Takes `bytes` and returns undefined when there is room and nobody waits before it; otherwise queues the
   * reservation (before the others when `reading`), calls `granted` once its turn comes and the bytes are taken, and
   * returns what withdraws it before then.
   */
  take(bytes: number, reading: boolean, granted: () => void): (() => void) | undefined {
    if (this.reading.size === 0 && (reading || this.waits.size === 0) && this.fits(bytes)) {
      this.used += bytes;
      return undefined;
    }
    countReplayWait();
    const wait: Wait = { bytes, granted };
    const queue = reading ? this.reading : this.waits;
    queue.add(wait);
    return () => void queue.delete(wait);
  }

  /** Gives `bytes` back (a negative count takes more, without waiting: a page a little over its reservation). */
  give(bytes: number): void {
    this.used -= bytes;
    if (bytes > 0 && this.grant(this.reading)) this.grant(this.waits);
  }

  /** Grants `queue`'s reservations in order while they fit; true when it emptied it. */
  private grant(queue: Set<Wait>): boolean {
    for (const wait of queue) {
      if (!this.fits(wait.bytes)) return false;
      queue.delete(wait);
      this.used += wait.bytes;
      wait.granted();
    }
    return true;
  }

  private fits(bytes: number): boolean {
    return this.used === 0 || this.used + bytes <= this.capacity;
  }
}

/** The part of a connection its replays' ledger reads: what it holds unsent. */
export interface ReplayOutlet {
  readonly buffered: number;
}

/** Bytes one page of a replay queued, held against the budget until the socket has sent them. */
interface Lease {
  /** Where the page's last byte is in the connection's count of queued bytes (`SocketReplays.queued`). */
  readonly end: number;
  /** Of them, those still held (the page's tail the socket has not sent). */
  bytes: number;
}

/**
 * One reservation of a replay page: waiting for room, then granted, then done. The feed calls `done` once the page
 * is handed over (or not read after all): what the connection queued since the grant is kept as the page's lease,
 * the rest of the reservation is given back. A reservation still waiting is withdrawn.
 */
export class ReplayReservation {
  /** Resolves once granted, or withdrawn; undefined when it was granted at once. */
  readonly ready: Promise<void> | undefined;
  private withdraw: (() => void) | undefined;
  private resolve: (() => void) | undefined;
  private granted = false;
  private finished = false;
  /** The connection's queued count when granted: the page's bytes are what it queued after. */
  private start = 0;

  constructor(
    private readonly ledger: SocketReplays,
    private readonly bytes: number,
    reading: boolean,
  ) {
    ledger.reservations++;
    this.withdraw = ledger.budget.take(bytes, reading, () => this.grant());
    if (this.withdraw === undefined) this.grant();
    else this.ready = new Promise<void>((resolve) => (this.resolve = resolve));
  }

  /** Granted: it holds its bytes (and, once done, what the page queued). False while waiting, or once withdrawn. */
  get isGranted(): boolean {
    return this.granted;
  }

  private grant(): void {
    this.withdraw = undefined;
    this.granted = true;
    this.start = this.ledger.queued;
    this.resolve?.();
  }

  /** Keeps what the page queued as its lease and gives back the rest, or withdraws the wait. Once. */
  done(): void {
    if (this.finished) return;
    this.finished = true;
    this.ledger.reservations--;
    if (!this.granted) {
      this.withdraw?.();
      this.resolve?.();
      this.ledger.release();
    } else if (!this.ledger.open) {
      // Its connection closed meanwhile: nothing it queued is held any more.
      this.ledger.budget.give(this.bytes);
    } else {
      this.ledger.keep(this.ledger.queued - this.start, this.bytes);
    }
  }
}

/**
 * One connection's replay pages held under the node's {@link ReplayBudget}, each until its socket has sent it; made
 * by the connection's first reservation and dropped once it holds nothing, so an idle connection costs nothing.
 *
 * A page's bytes leave in order, so the page has left once the connection has sent everything it queued up to the
 * page's end: `queued - buffered` (bytes queued since the ledger began, less those still unsent) counts what has
 * left. It is read after each write to the socket, when the socket drains, and every second. While it holds bytes, a
 * connection that sends nothing for `stallMs` (5 s while other replays wait for room) is dropped: one that read
 * nothing of a replay small enough to be sent whole (no wait for the buffer to drain, so no stall watch there) held
 * it, and its share of the budget, for as long as it stayed connected.
 */
export class SocketReplays {
  /** Bytes the connection queued since this ledger began (the outbox adds to it). */
  queued = 0;
  /** Reservations not yet done, waiting or granted: the ledger stays while there are any. */
  reservations = 0;
  open = true;
  private leases: Lease[] = [];
  private stopWatching: (() => void) | undefined;
  private readonly settle = () => this.release();
  private readonly closed = () => this.close();
  private readonly stallTimeout = () => (this.budget.contended ? Math.min(this.stallMs, CONTENDED_STALL_MS) : this.stallMs);

  constructor(
    readonly budget: ReplayBudget,
    private readonly outlet: ReplayOutlet,
    private readonly socket: RawSocket,
    private readonly stallMs: number,
    private readonly stalled: () => void,
    /** Called once it holds nothing: the outbox forgets it (a poll's ledger, made for one answer, needs no telling). */
    private readonly onIdle: () => void = () => {},
  ) {
    socket.on('drain', this.settle);
    socket.on('close', this.closed);
  }

  /**
   * A reservation of `bytes` for a replay's next page. One that goes on from pages this connection has all sent
   * (`continuing`, no page unsent and none being read) waits before the others: its client reads along.
   */
  reserve(bytes: number, continuing: boolean): ReplayReservation {
    return new ReplayReservation(this, bytes, continuing && this.leases.length === 0 && this.reservations === 0);
  }

  /** @internal A page that queued `bytes` is done: they are held until sent, the rest of its `reserved` given back. */
  keep(bytes: number, reserved: number): void {
    if (bytes > 0) this.leases.push({ end: this.queued, bytes });
    this.budget.give(reserved - bytes);
    this.release();
  }

  /** @internal Gives back what the socket has sent of each page; once nothing is held or reserved, it closes. */
  release(): void {
    if (!this.open) return;
    const sent = this.sent;
    let freed = 0;
    while (this.leases.length > 0) {
      const lease = this.leases[0]!;
      const unsent = Math.min(lease.bytes, Math.max(0, lease.end - sent));
      freed += lease.bytes - unsent;
      lease.bytes = unsent;
      if (unsent > 0) break;
      this.leases.shift();
    }
    if (freed > 0) this.budget.give(freed);
    if (this.leases.length > 0) {
      this.stopWatching ??= this.watch();
    } else {
      this.stopWatching?.();
      this.stopWatching = undefined;
      if (this.reservations === 0) this.close();
    }
  }

  /**
   * Watches for a stall, and releases what was sent at each look too: `drain` comes only after a write the socket
   * refused, so an answer smaller than the socket's high-water mark that the kernel took late says nothing.
   */
  private watch(): () => void {
    let first = true;
    const progress = () => {
      // Not at the first look, made from within release() itself.
      if (!first) this.release();
      first = false;
      return this.sent;
    };
    return watchStall(progress, this.stallTimeout, this.stalled);
  }

  /** Bytes that have left the connection since the ledger began. */
  private get sent(): number {
    return this.queued - this.outlet.buffered;
  }

  /** The connection closed, or the ledger holds nothing: everything goes back, and the outbox forgets it. */
  private close(): void {
    if (!this.open) return;
    this.open = false;
    this.stopWatching?.();
    this.stopWatching = undefined;
    let held = 0;
    for (const lease of this.leases) held += lease.bytes;
    this.leases = [];
    this.socket.off('drain', this.settle);
    this.socket.off('close', this.closed);
    this.onIdle();
    // Granted reservations still being read give theirs back when done (`open` is false).
    if (held > 0) this.budget.give(held);
  }
}

import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';

/** Resolves a name to all its addresses, as `dns.lookup(name, { all: true }, callback)` does. */
/** What a connection's lookup may ask besides the name: Node's `net` passes `family` and `hints`. */
export interface ResolveOptions {
  all: true;
  family?: LookupOptions['family'] | undefined;
  hints?: number | undefined;
}

export type ResolveAll = (hostname: string, options: ResolveOptions, callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) => void;

export const systemResolveAll: ResolveAll = (hostname, options, callback) => dnsLookup(hostname, options, callback);

/** libuv's thread pool: 4 threads unless UV_THREADPOOL_SIZE (read by libuv once, before the pool's first use) says otherwise. */
export function threadPoolSize(env: NodeJS.ProcessEnv = process.env): number {
  const size = Number(env.UV_THREADPOOL_SIZE);
  return Number.isInteger(size) && size > 0 ? Math.min(size, 1024) : 4;
}

/** How long a caller waits for an endpoint host's addresses, queued or resolving, before it is told the name did not resolve. */
export const LOOKUP_TIMEOUT_MS = 10_000;

interface Waiter {
  hostname: string;
  options: ResolveOptions;
  callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void;
  timer: NodeJS.Timeout;
  answered: boolean;
}

/**
 * Endpoint host lookups, a few at a time. `dns.lookup` is getaddrinfo() on libuv's thread pool, which also runs
 * the WAL's fdatasync (store/sqlite/wal-sync.ts), so a durable publish waits for a free thread; and endpoint hosts
 * are chosen by whoever registers an endpoint, portal tenants among them. A name whose DNS never answers holds its
 * thread for as long as the system resolver retries (seconds to tens of seconds), and a few of them took every
 * thread: publishes and inbound webhooks then waited for a tenant's DNS. So at most `slots` lookups run at once, the
 * rest wait in order, and every caller is answered by its deadline with `ETIMEOUT` (a getaddrinfo() already running
 * cannot be called off: its slot stays taken until it returns). Callers asking for the same name at once share one
 * lookup. Not a cache: each new connection still resolves, as `dns.lookup` would.
 */
export class LookupGate {
  private running = 0;
  private readonly queue: Waiter[] = [];
  /** Callers of each name being resolved now, by name and options. */
  private readonly inFlight = new Map<string, Waiter[]>();

  constructor(
    readonly slots: number,
    private readonly options: { timeoutMs?: number; resolve?: ResolveAll; parent?: LookupGate } = {},
  ) {
    if (!Number.isInteger(slots) || slots < 1) throw new RangeError(`A lookup gate needs at least one slot (given ${slots}).`);
  }

  /** A gate that lets at most `slots` of its own lookups through this one at a time (a portal tenant's share, say). */
  narrowed(slots: number): LookupGate {
    return new LookupGate(Math.min(slots, this.slots), { timeoutMs: this.options.timeoutMs, parent: this });
  }

  /** Lookups running or waiting now (for tests and diagnostics). */
  get pending(): number {
    return this.running + this.queue.length;
  }

  readonly resolve: ResolveAll = (hostname, options, callback) => {
    const waiter: Waiter = { hostname, options, callback, answered: false, timer: undefined as unknown as NodeJS.Timeout };
    const timeoutMs = this.options.timeoutMs ?? LOOKUP_TIMEOUT_MS;
    waiter.timer = setTimeout(() => {
      const queued = this.queue.indexOf(waiter);
      if (queued >= 0) this.queue.splice(queued, 1);
      const error: NodeJS.ErrnoException = new Error(`no answer from DNS within ${timeoutMs / 1000} s`);
      error.code = 'ETIMEOUT';
      this.answer(waiter, error, []);
    }, timeoutMs);
    const sharing = this.inFlight.get(keyOf(waiter));
    if (sharing) sharing.push(waiter);
    else if (this.running < this.slots) this.start(waiter);
    else this.queue.push(waiter);
  };

  private start(first: Waiter): void {
    const key = keyOf(first);
    const callers = [first];
    this.inFlight.set(key, callers);
    this.running += 1;
    const through = this.options.parent?.resolve ?? this.options.resolve ?? systemResolveAll;
    through(first.hostname, first.options, (err, addresses) => {
      this.inFlight.delete(key);
      this.running -= 1;
      for (const waiter of callers) this.answer(waiter, err, addresses);
      this.next();
    });
  }

  /** Starts queued lookups while slots are free; a queued caller whose name is being resolved joins that lookup. */
  private next(): void {
    while (this.running < this.slots && this.queue.length > 0) {
      const waiter = this.queue.shift()!;
      const sharing = this.inFlight.get(keyOf(waiter));
      if (sharing) sharing.push(waiter);
      else this.start(waiter);
    }
  }

  private answer(waiter: Waiter, err: NodeJS.ErrnoException | null, addresses: LookupAddress[]): void {
    if (waiter.answered) return;
    waiter.answered = true;
    clearTimeout(waiter.timer);
    waiter.callback(err, addresses);
  }
}

const keyOf = (waiter: Waiter) => `${waiter.options.family ?? 0} ${waiter.options.hints ?? 0} ${waiter.hostname}`;

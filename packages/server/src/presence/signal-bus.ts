import { randomUUID } from 'node:crypto';
import { HeraldError } from '@herald/protocol';
import type { BusState } from '../bus/types.js';
import type { BusTransport, TransportHandler } from '../bus/transport.js';
import { transportFor } from '../bus/create.js';
import { withTimeout } from '../bus/health.js';

export type SignalListener = (body: unknown) => void;

/**
 * Topic keys of messages outside the log. Herald channel names cannot hold
 * `#` or `!`, so these never share a wire topic with a channel's events.
 */
export const channelSignalKey = (channel: string): string => `#${channel}`;
export const PRESENCE_SIGNAL_KEY = '!presence';

/** A send that has not answered after this resolves anyway: signals are at most once. */
const SEND_TIMEOUT_MS = 1000;
/** How long start-up waits for the link; the event bus has already waited for the same server. */
const CONNECT_TIMEOUT_MS = 1000;

interface Wire {
  /** The sending bus, so it skips its own messages when the transport echoes them. */
  n: string;
  /** The topic key. */
  t: string;
  b: unknown;
}

/**
 * Messages that are not events and never touch the log: presence changes,
 * ephemeral publishes, direct messages. Listeners on this node are called
 * synchronously by `publish`; the other nodes get the message through a
 * transport of its own (the same kind and server as the event bus, its own
 * connections, so neither can hold the other up). Delivery to other nodes is
 * at most once and has no log to fall back on: while the link is down they
 * miss these messages, and presence resynchronises when it returns.
 */
export class SignalBus {
  readonly id = randomUUID();
  state: BusState;
  private readonly listeners = new Map<string, Set<SignalListener>>();
  private readonly stateListeners = new Set<(state: BusState) => void>();

  private constructor(
    private readonly transport: BusTransport | undefined,
    private readonly onError: (error: unknown) => void,
  ) {
    this.state = transport ? 'down' : 'up';
  }

  /** In-process only without a `bus.url`; otherwise connected to the same kind of server as the event bus. */
  static async create(url: string | undefined, onError: (error: unknown) => void): Promise<SignalBus> {
    return url ? SignalBus.over(transportFor(url), onError) : new SignalBus(undefined, onError);
  }

  /** Over a transport of the caller's (tests use an in-memory one). */
  static async over(transport: BusTransport, onError: (error: unknown) => void): Promise<SignalBus> {
    const bus = new SignalBus(transport, onError);
    const handler: TransportHandler = {
      message: (_scope, message) => bus.receive(message),
      state: (state) => bus.setState(state),
      error: onError,
    };
    await bus.transport!.start(handler, CONNECT_TIMEOUT_MS);
    return bus;
  }

  /** True when the other nodes hear this bus (or there are none). */
  get clustered(): boolean {
    return this.transport !== undefined;
  }

  /** The largest message the wire carries; a bigger one is refused before anyone gets it. */
  get maxMessageBytes(): number {
    return this.transport?.maxMessageBytes ?? Number.POSITIVE_INFINITY;
  }

  /** Calls this node's listeners of `key` now, then sends to the other nodes; never fails for the link's sake. */
  async publish(key: string, body: unknown): Promise<void> {
    let wire: string | undefined;
    if (this.transport) {
      wire = JSON.stringify({ n: this.id, t: key, b: body } satisfies Wire);
      if (Buffer.byteLength(wire) > this.transport.maxMessageBytes) {
        throw new HeraldError('payload_too_large', `The message is over the ${this.transport.maxMessageBytes} bytes the cluster bus carries.`);
      }
    }
    this.deliver(key, body);
    if (!this.transport || wire === undefined || this.state !== 'up') return;
    try {
      await withTimeout(this.transport.send({ channel: key }, wire), SEND_TIMEOUT_MS, 'signal send');
    } catch (error) {
      this.onError(error);
    }
  }

  subscribe(key: string, listener: SignalListener): () => void {
    let set = this.listeners.get(key);
    if (!set) {
      set = new Set();
      this.listeners.set(key, set);
      this.transport?.subscribe({ channel: key }).catch(this.onError);
    }
    const entry: SignalListener = (body) => listener(body);
    set.add(entry);
    return () => {
      if (!set.delete(entry) || set.size > 0 || this.listeners.get(key) !== set) return;
      this.listeners.delete(key);
      this.transport?.unsubscribe({ channel: key });
    };
  }

  onStateChange(listener: (state: BusState) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  async close(): Promise<void> {
    this.listeners.clear();
    this.stateListeners.clear();
    await this.transport?.close();
  }

  private deliver(key: string, body: unknown): void {
    const set = this.listeners.get(key);
    if (!set) return;
    for (const listener of set) {
      try {
        listener(body);
      } catch (error) {
        this.onError(error);
      }
    }
  }

  private receive(raw: string): void {
    let wire: Partial<Wire>;
    try {
      wire = JSON.parse(raw) as Partial<Wire>;
    } catch {
      return this.onError(new Error('ignored a malformed signal'));
    }
    if (typeof wire !== 'object' || wire === null || typeof wire.n !== 'string' || typeof wire.t !== 'string') return;
    if (wire.n === this.id) return;
    this.deliver(wire.t, wire.b);
  }

  private setState(state: BusState): void {
    if (state === this.state) return;
    this.state = state;
    for (const listener of this.stateListeners) listener(state);
  }
}

import type { GapInfo, HeraldEvent } from '@herald/protocol';

export type TransportName = 'websocket' | 'sse' | 'poll';

export interface TransportEnd {
  /** The credential was refused: refresh it before trying again. */
  auth?: boolean;
  reason: string;
}

/** What a transport reports to the client. */
export interface TransportHandlers {
  open(): void;
  event(event: HeraldEvent): void;
  gap(gap: GapInfo): void;
  /**
   * The channel's epoch, learned on connecting. True when it differs from the one the client saw
   * before: the position was reset to the start of the new history, so the transport must not
   * resume from the old one.
   */
  epoch(channel: string, epoch: string): boolean;
  /** A channel subscribed without a position is live from `head` on. */
  live(channel: string, head: number): void;
  /** The server refused one channel (not the connection). */
  refused(channel: string, code: string, message: string): void;
  /** Called once; the transport is finished and the client decides what comes next. */
  end(end: TransportEnd): void;
}

export interface TransportContext {
  /** `http(s)://host:port`, no trailing slash. */
  url: string;
  token: string | undefined;
  /** Each channel's position: the last seq the app has seen; undefined for "from now on". */
  positions: ReadonlyMap<string, number | undefined>;
  /** Milliseconds without a sign of life before the connection counts as dead. */
  heartbeatTimeoutMs: number;
  fetch: typeof fetch;
  WebSocket: typeof WebSocket | undefined;
}

/** One way of getting events; each lives in a file of its own. */
export interface Transport {
  readonly name: TransportName;
  start(): void;
  /** A channel was added (its position is in the context) or removed. */
  channelsChanged(): void;
  close(): void;
}

export type TransportFactory = (ctx: TransportContext, handlers: TransportHandlers) => Transport;

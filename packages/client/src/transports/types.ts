import type { ClientOp, DirectMessage, EphemeralMessage, GapInfo, HeraldEvent, PresenceAction, PresenceMember, ServerOp } from '@herald/protocol';

export type TransportName = 'websocket' | 'sse' | 'poll';

export interface TransportEnd {
  /** The credential was refused: refresh it before trying again. */
  auth?: boolean;
  /** The server said it is going away (a restart or a shutdown): a failure while it still answers is that, not the transport's. */
  goingAway?: boolean;
  /** The server refused the request in a way the same request will meet again (see HttpStatusError.refusal). */
  refused?: { status: number; code: string; message: string };
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
  /** WebSocket only: the channel's presence set was joined, as `client`, with these members (itself included). */
  presence(channel: string, client: string, members: PresenceMember[]): void;
  /** WebSocket only: a member joined or left a set this connection belongs to. */
  presenceChange(channel: string, action: PresenceAction, member: PresenceMember): void;
  /** An ephemeral publish: no seq, moves no position. */
  ephemeral(message: EphemeralMessage): void;
  /** WebSocket only: a direct message to this connection. */
  message(message: DirectMessage): void;
  /** Called once; the transport is finished and the client decides what comes next. */
  end(end: TransportEnd): void;
}

export interface TransportContext {
  /** `http(s)://host:port`, no trailing slash. */
  url: string;
  token: string | undefined;
  /** Each channel's position: the last seq the app has seen; undefined for "from now on". */
  positions: ReadonlyMap<string, number | undefined>;
  /** Channels whose presence set to join, with the `info` to join with. */
  presence: ReadonlyMap<string, { info?: unknown }>;
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
  /** WebSocket only: subscribe to the channel again, from its position, because its presence wish changed. */
  resubscribe?(channel: string): void;
  /** WebSocket only: sends an op with a fresh `ref` and resolves with the `ack` or `error` that answers it. */
  request?(op: DistributiveOmit<Extract<ClientOp, { ref?: string }>, 'ref'>): Promise<ServerOp>;
  close(): void;
}

export type TransportFactory = (ctx: TransportContext, handlers: TransportHandlers) => Transport;

/** Omit over each member of a union, so the union survives. */
export type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

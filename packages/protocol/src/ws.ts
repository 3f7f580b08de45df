import type { ErrorCode } from './errors.js';
import type { GapInfo } from './events.js';
import type { DirectMessage, EphemeralMessage, PresenceAction, PresenceMember } from './presence.js';

/** WebSocket frames are JSON text with an `op` field. */
export type ClientOp =
  | { op: 'auth'; token: string }
  /** `presence`: join the channel's presence set (on a `channels.presence` channel), with `info` of at most 1 KiB. */
  | { op: 'subscribe'; channel: string; after?: number; ref?: string; presence?: { info?: unknown } }
  | { op: 'unsubscribe'; channel: string; ref?: string }
  /** `traceparent`: an optional W3C trace context, kept as the event's `meta.traceparent`. */
  | { op: 'publish'; channel: string; type?: string; data: unknown; meta?: Record<string, unknown>; id?: string; ref: string; traceparent?: string }
  /** Not logged: to the channel's current subscribers only, acknowledged by an `ack` without `seq`. */
  | { op: 'publish'; channel: string; type?: string; data: unknown; ref: string; ephemeral: true }
  /** A direct message to one connection (`to`, a `client` id) of the channel's presence set. */
  | { op: 'send'; channel: string; to: string; data: unknown; ref: string }
  | { op: 'ping' };

export type ServerOp =
  /** `presence` when the subscribe joined the presence set: this connection's `client` id and every member, itself included. */
  | { op: 'subscribed'; channel: string; ref?: string; seq: number; epoch: string; presence?: { client: string; members: PresenceMember[] } }
  | { op: 'unsubscribed'; channel: string; ref?: string }
  | { op: 'event'; channel: string; seq: number; id: string; type: string; data: unknown; time: string; meta?: Record<string, unknown> }
  | { op: 'ack'; ref: string; seq: number; id: string }
  /** The answer to an ephemeral publish or a `send`: accepted, nothing logged. */
  | { op: 'ack'; ref: string }
  | { op: 'presence'; channel: string; action: PresenceAction; member: PresenceMember }
  | ({ op: 'ephemeral' } & EphemeralMessage)
  | ({ op: 'message' } & DirectMessage)
  | ({ op: 'gap' } & GapInfo)
  | { op: 'error'; ref?: string; code: ErrorCode; message: string }
  | { op: 'authenticated' }
  | { op: 'pong' };

/** WebSocket close codes Herald uses (RFC 6455 §7.4.1 and the IANA registry). */
export const CloseCodes = {
  goingAway: 1001,
  policyViolation: 1008,
  messageTooBig: 1009,
  tryAgainLater: 1013,
} as const;

const str = { type: 'string' } as const;
const seq = { type: 'integer', minimum: 0 } as const;
const memberSchema = { type: 'object', required: ['client', 'sub', 'info'], properties: { client: str, sub: str, info: {} } } as const;
const frame = <Op extends string>(op: Op, description: string, properties: Record<string, unknown>, required: readonly string[] = []) =>
  ({
    type: 'object',
    description,
    required: ['op', ...required],
    properties: { op: { const: op }, ...properties },
  }) as const;

/**
 * JSON schemas of every WebSocket frame, one per `op`, for the OpenAPI
 * document's components (`WsClient…` and `WsServer…`). Keyed by op, so a new
 * op without a schema fails to compile.
 */
export const WS_CLIENT_FRAME_SCHEMAS = {
  auth: frame(
    'auth',
    'Authenticates an anonymous socket (within ws.authTimeout), or replaces the credential of an authenticated one: subscriptions the new credential may not read end with `unsubscribed`.',
    { token: str },
    ['token'],
  ),
  subscribe: frame(
    'subscribe',
    'Follows a channel from `after` (a seq), or live when absent; with `presence`, also joins its presence set.',
    { channel: str, after: seq, ref: str, presence: { type: 'object', properties: { info: { description: 'JSON of at most 1 KiB.' } }, additionalProperties: false } },
    ['channel'],
  ),
  unsubscribe: frame('unsubscribe', 'Stops following a channel.', { channel: str, ref: str }, ['channel']),
  publish: frame(
    'publish',
    'Appends an event; answered by `ack` (or `error`) with the same `ref`. With `ephemeral: true`, nothing is logged: the current subscribers get an `ephemeral` frame.',
    {
      channel: str,
      type: str,
      data: {},
      meta: { type: 'object', description: 'Your own metadata, stored and sent with the event as HTTP publishes keep it (not with `ephemeral`).' },
      id: str,
      ref: str,
      traceparent: { type: 'string', description: 'W3C trace context, kept as meta.traceparent.' },
      ephemeral: { type: 'boolean', description: 'Fan out to current subscribers only: no seq, no log entry, no id.' },
    },
    ['channel', 'data', 'ref'],
  ),
  send: frame(
    'send',
    "A direct message to one member (`to`, its client id) of the channel's presence set; answered by `ack`.",
    { channel: str, to: str, data: {}, ref: str },
    ['channel', 'to', 'data', 'ref'],
  ),
  ping: frame('ping', 'Answered by `pong`.', {}),
} as const satisfies Record<ClientOp['op'], unknown>;

export const WS_SERVER_FRAME_SCHEMAS = {
  subscribed: frame(
    'subscribed',
    "The subscription is in place; the backlog after `after` follows. `presence`: this connection's client id and the members, when it joined.",
    { channel: str, ref: str, seq, epoch: str, presence: { type: 'object', properties: { client: str, members: { type: 'array', items: memberSchema } } } },
    ['channel', 'seq', 'epoch'],
  ),
  unsubscribed: frame('unsubscribed', 'The subscription has ended.', { channel: str, ref: str }, ['channel']),
  event: frame(
    'event',
    'One event of a subscribed channel, in seq order.',
    { channel: str, seq, id: str, type: str, data: {}, time: str, meta: { type: 'object', additionalProperties: true } },
    ['channel', 'seq', 'id', 'type', 'time'],
  ),
  ack: frame('ack', 'A publish is durable (`seq`, `id`), or an ephemeral publish or `send` was accepted (neither).', { ref: str, seq, id: str }, ['ref']),
  presence: frame(
    'presence',
    'A member joined or left a presence set this connection belongs to.',
    { channel: str, action: { enum: ['join', 'leave'] }, member: memberSchema },
    ['channel', 'action', 'member'],
  ),
  ephemeral: frame('ephemeral', 'An ephemeral publish: no seq, no id, not in the log.', { channel: str, type: str, data: {}, time: str }, ['channel', 'type', 'time']),
  message: frame(
    'message',
    'A direct message to this connection.',
    { channel: str, from: { type: 'object', required: ['client', 'sub'], properties: { client: str, sub: str } }, data: {} },
    ['channel', 'from'],
  ),
  gap: frame('gap', 'History between `after` and `oldest` was trimmed.', { channel: str, after: seq, oldest: seq }, ['channel', 'after', 'oldest']),
  error: frame('error', 'An op failed; `ref` names it when it had one.', { ref: str, code: str, message: str }, ['code', 'message']),
  authenticated: frame('authenticated', 'The `auth` frame was accepted.', {}),
  pong: frame('pong', 'The answer to `ping`.', {}),
} as const satisfies Record<ServerOp['op'], unknown>;

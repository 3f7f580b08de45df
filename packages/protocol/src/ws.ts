import type { ErrorCode } from './errors.js';
import type { GapInfo } from './events.js';

/** WebSocket frames are JSON text with an `op` field. */
export type ClientOp =
  | { op: 'auth'; token: string }
  | { op: 'subscribe'; channel: string; after?: number; ref?: string }
  | { op: 'unsubscribe'; channel: string; ref?: string }
  /** `traceparent`: an optional W3C trace context, kept as the event's `meta.traceparent`. */
  | { op: 'publish'; channel: string; type?: string; data: unknown; id?: string; ref: string; traceparent?: string }
  | { op: 'ping' };

export type ServerOp =
  | { op: 'subscribed'; channel: string; ref?: string; seq: number; epoch: string }
  | { op: 'unsubscribed'; channel: string; ref?: string }
  | { op: 'event'; channel: string; seq: number; id: string; type: string; data: unknown; time: string; meta?: Record<string, unknown> }
  | { op: 'ack'; ref: string; seq: number; id: string }
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
  auth: frame('auth', 'Authenticates an anonymous socket (within ws.authTimeout).', { token: str }, ['token']),
  subscribe: frame('subscribe', 'Follows a channel from `after` (a seq), or live when absent.', { channel: str, after: seq, ref: str }, ['channel']),
  unsubscribe: frame('unsubscribe', 'Stops following a channel.', { channel: str, ref: str }, ['channel']),
  publish: frame(
    'publish',
    'Appends an event; answered by `ack` (or `error`) with the same `ref`.',
    { channel: str, type: str, data: {}, id: str, ref: str, traceparent: { type: 'string', description: 'W3C trace context, kept as meta.traceparent.' } },
    ['channel', 'data', 'ref'],
  ),
  ping: frame('ping', 'Answered by `pong`.', {}),
} as const satisfies Record<ClientOp['op'], unknown>;

export const WS_SERVER_FRAME_SCHEMAS = {
  subscribed: frame('subscribed', 'The subscription is in place; the backlog after `after` follows.', { channel: str, ref: str, seq, epoch: str }, ['channel', 'seq', 'epoch']),
  unsubscribed: frame('unsubscribed', 'The subscription has ended.', { channel: str, ref: str }, ['channel']),
  event: frame(
    'event',
    'One event of a subscribed channel, in seq order.',
    { channel: str, seq, id: str, type: str, data: {}, time: str, meta: { type: 'object', additionalProperties: true } },
    ['channel', 'seq', 'id', 'type', 'time'],
  ),
  ack: frame('ack', 'A publish is durable.', { ref: str, seq, id: str }, ['ref', 'seq', 'id']),
  gap: frame('gap', 'History between `after` and `oldest` was trimmed.', { channel: str, after: seq, oldest: seq }, ['channel', 'after', 'oldest']),
  error: frame('error', 'An op failed; `ref` names it when it had one.', { ref: str, code: str, message: str }, ['code', 'message']),
  authenticated: frame('authenticated', 'The `auth` frame was accepted.', {}),
  pong: frame('pong', 'The answer to `ping`.', {}),
} as const satisfies Record<ServerOp['op'], unknown>;
